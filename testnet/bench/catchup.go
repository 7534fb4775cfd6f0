package bench

import (
	"context"
	"fmt"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/testnet"
)

// CatchUp is the time a new member took to catch up on a federation's log.
type CatchUp struct {
	Entries     int    // records the federation held
	CommitIndex uint64 // the leader's commit index when the member joined
	// Applied: until the newcomer's raft had applied up to CommitIndex.
	Applied time.Duration
	// Readable: until the newcomer could read and screen every record: it
	// returns the record committed last and finds it by screening its name,
	// and then lists all Entries records (it takes entries in in log order,
	// and the origin grants the history in the order it first published it,
	// so the last record readable means every earlier one is; the count
	// checks it).
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
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		fillErr  error
		mu       sync.Mutex
		lastID   string // the record committed last
		lastIdx  uint64
		lastName string
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
					lastID, lastIdx, lastName = id, idx, Record(int(i), cfg.ValueSize).Subject.Name
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

	if cfg.CatchUpProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CatchUpProfile); err != nil {
			return nil, fmt.Errorf("catch-up profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	start, cpu0 := time.Now(), processCPU()
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
	nfed, nshared, nscreen := pb.NewFederationServiceClient(nc), pb.NewSharedServiceClient(nc), pb.NewScreeningServiceClient(nc)
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
				sr, err := nscreen.Screen(actx, &pb.ScreenRequest{Name: lastName, Limit: 100})
				if err != nil {
					return false, err
				}
				for _, r := range sr.Results {
					if r.Record.GetId() == lastID && r.Shared {
						readable, cu.Readable = true, time.Since(start)
					}
				}
			}
		}
		return applied && readable, nil
	})
	if err != nil {
		return nil, fmt.Errorf("newcomer did not catch up (applied %v, readable %v): %w", applied, readable, err)
	}
	if cfg.CatchUpProfile != nil {
		pprof.StopCPUProfile()
	}
	cfg.progress("watchfed catch-up: applied in %.1f s, readable in %.1f s, %.2f s of CPU in this process (every node)",
		cu.Applied.Seconds(), cu.Readable.Seconds(), (processCPU() - cpu0).Seconds())
	n, err := countShared(ctx, ln)
	if err != nil {
		return nil, err
	}
	if n < cu.Entries {
		return nil, fmt.Errorf("newcomer reads the last record but lists %d of %d records", n, cu.Entries)
	}
	return cu, nil
}

// countShared counts the shared entries a node can read, page by page.
func countShared(ctx context.Context, ln *testnet.LocalNode) (int, error) {
	conn, err := ln.Dial()
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	n, token := 0, ""
	for {
		resp, err := pb.NewSharedServiceClient(conn).ListShared(ctx, &pb.ListSharedRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			return 0, err
		}
		n += len(resp.Entries)
		if token = resp.NextPageToken; token == "" {
			return n, nil
		}
	}
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
