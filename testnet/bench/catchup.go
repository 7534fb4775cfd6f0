package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// CatchUp is the time a new member took to catch up on a federation's log.
type CatchUp struct {
	Entries     int    // records the federation held
	CommitIndex uint64 // the leader's commit index when the member joined
	// Applied: until the newcomer's raft had applied up to CommitIndex.
	Applied time.Duration
	// Readable: until the newcomer could read the last record (the origin
	// granted it the history and it opened every body).
	Readable time.Duration
	// Snapshot reports whether the newcomer installed a snapshot (the log
	// before it had been compacted away).
	Snapshot bool
	// FillRate is the rate at which the entries were written (64 publishers,
	// snapshots being taken meanwhile): for information.
	FillRate float64
}

// compactingRaft compacts the log often, so that a newcomer to a federation
// holding CatchUpEntries records must install a snapshot, as it would after
// months of operation under the defaults.
func compactingRaft() *raft.Config {
	c := Raft()
	c.SnapshotThreshold = 1024
	c.SnapshotInterval = time.Second
	c.TrailingLogs = 256
	return c
}

// catchUp fills a federation with cfg.CatchUpEntries records, waits until
// the log before them is compacted, then adds a fourth member and times it.
func catchUp(ctx context.Context, dir string, cfg Config) (*CatchUp, error) {
	cfg.progress("watchfed catch-up: starting 3 nodes")
	l, err := start(ctx, dir, compactingRaft())
	if err != nil {
		return nil, err
	}
	defer l.Close()
	leader := l.Nodes[0]
	cfg.progress("watchfed catch-up: writing %d records with 64 publishers", cfg.CatchUpEntries)
	conns, err := dialN(leader, 8)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		fillErr error
		mu      sync.Mutex
		lastID  string // the record committed last
		lastIdx uint64
	)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t0 := time.Now()
	for c := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fctx.Err() == nil {
				i := next.Add(1)
				if i > int64(cfg.CatchUpEntries) {
					return
				}
				id, idx, err := create(fctx, conns[c%len(conns)], int(i), cfg.ValueSize)
				if err != nil {
					errOnce.Do(func() { fillErr = err; cancel() })
					return
				}
				mu.Lock()
				if idx > lastIdx {
					lastID, lastIdx = id, idx
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if fillErr != nil {
		return nil, fmt.Errorf("fill: %w", fillErr)
	}
	cu := &CatchUp{Entries: cfg.CatchUpEntries, FillRate: float64(cfg.CatchUpEntries) / time.Since(t0).Seconds()}

	conn := conns[0]
	fed := pb.NewFederationServiceClient(conn)
	// Wait until the leader's snapshot lets raft compact the start of the log.
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		st, err := fed.GetStatus(ctx, &pb.GetStatusRequest{})
		if err != nil {
			return false, err
		}
		return st.SnapshotIndex > compactingRaft().TrailingLogs+1, nil
	}); err != nil {
		return nil, fmt.Errorf("leader took no snapshot: %w", err)
	}
	st, err := fed.GetStatus(ctx, &pb.GetStatusRequest{})
	if err != nil {
		return nil, err
	}
	cu.CommitIndex = st.CommitIndex
	cfg.progress("watchfed catch-up: %d records up to log index %d; adding a fourth member", cu.Entries, cu.CommitIndex)

	start := time.Now()
	actx, acancel := context.WithTimeout(ctx, 5*time.Minute)
	defer acancel()
	ln, err := l.Add(actx)
	if err != nil {
		return nil, fmt.Errorf("add member: %w", err)
	}
	nc, err := ln.Dial()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	nfed, nshared := pb.NewFederationServiceClient(nc), pb.NewSharedServiceClient(nc)
	var applied, readable bool
	err = waitFor(actx, 5*time.Minute, func() (bool, error) {
		if !applied {
			st, err := nfed.GetStatus(actx, &pb.GetStatusRequest{})
			if err != nil {
				return false, err
			}
			if st.AppliedIndex >= cu.CommitIndex {
				applied, cu.Applied, cu.Snapshot = true, time.Since(start), st.SnapshotIndex > 0
			}
		}
		if !readable {
			if _, err := nshared.GetShared(actx, &pb.GetSharedRequest{Id: lastID}); err == nil {
				readable, cu.Readable = true, time.Since(start)
			}
		}
		return applied && readable, nil
	})
	if err != nil {
		return nil, fmt.Errorf("newcomer did not catch up (applied %v, readable %v): %w", applied, readable, err)
	}
	return cu, nil
}

// waitFor polls cond until it holds, fails, or the deadline passes.
func waitFor(ctx context.Context, d time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil && ctx.Err() == nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
