package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/watchfed/watchfed/policy/seal"
	"github.com/watchfed/watchfed/replication/replicationtest"
	"github.com/watchfed/watchfed/testnet"
)

// The replication floor is the federation's log with nothing of watchfed
// above it: the same hashicorp/raft, raft-wal log store, FSM (which verifies
// each publication with the node's seal.Verify) and gRPC transport under mutual TLS
// 1.3, fed signed publications of one envelope by publishers that call raft
// on the leader directly. No record store, audit chain, sealing, partner
// take-in or screening index, and no client hop. Its rows split the gap
// between watchfed and etcd into what the replication stack costs and what
// watchfed's own work on each record costs.

// FloorSystem and FloorWorkload name the floor's rows.
const (
	FloorSystem   = "raft floor"
	FloorWorkload = "raft Apply of a signed publication, no watchfed work"
)

// floor is a running 3-member raft group of the node's replication parts
// (replicationtest's cluster); the first member's agency publishes
// everything, through whichever member leads (the first, unless leadership
// moved on a loaded machine).
type floor struct {
	c      *replicationtest.Cluster
	origin *replicationtest.Member
	seq    atomic.Int64
	links  *floorLinks // nil on loopback
}

// startFloor starts three members under dir, the first bootstrapping the
// group and inviting the others as voters, and returns once all three are in.
func startFloor(ctx context.Context, dir string, rc *raft.Config) (*floor, error) {
	return startFloorLinked(ctx, dir, rc, 3, 0)
}

// startFloorLinked starts size members whose every connection to another
// goes through a testnet proxy delaying what it carries by delay each way,
// as the WAN rows' agencies are linked (delay 0: loopback, no proxies).
func startFloorLinked(ctx context.Context, dir string, rc *raft.Config, size int, delay time.Duration) (*floor, error) {
	opts := replicationtest.Options{
		Size: size, Dir: dir, Prefix: "FLOOR-", Verify: seal.Verify,
		Raft: func() *raft.Config { return rc }, // Open copies it
	}
	var links *floorLinks
	if delay > 0 {
		links = &floorLinks{delay: delay, by: map[[2]string]*testnet.Link{}}
		opts.Route = links.route
	}
	c, err := replicationtest.Start(ctx, opts)
	if err != nil {
		links.Close()
		return nil, fmt.Errorf("floor: %w", err)
	}
	return &floor{c: c, origin: c.Members[0], links: links}, nil
}

// Close stops every member.
func (f *floor) Close() {
	f.c.Close()
	f.links.Close()
}

// floorLinks are the delaying proxies between the floor's members, one per
// directed pair, made as a member first dials another.
type floorLinks struct {
	delay time.Duration
	mu    sync.Mutex
	by    map[[2]string]*testnet.Link
}

// route is replicationtest's Route: from's connections to target go through
// their link. A link that cannot be made gives an address nobody listens
// on: the dial fails (raft retries) rather than going direct, which would
// show a floor faster than the network its row names.
func (ls *floorLinks) route(from, target string) string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	k := [2]string{from, target}
	if l, ok := ls.by[k]; ok {
		return l.Addr
	}
	l, err := testnet.NewLink(target)
	if err != nil {
		return "127.0.0.1:1" // no route: the dial fails and raft retries
	}
	l.Set(ls.delay, 0)
	ls.by[k] = l
	return l.Addr
}

func (ls *floorLinks) Close() {
	if ls == nil {
		return
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, l := range ls.by {
		l.Close()
	}
}

// publish commits one signed publication of one envelope whose body is
// size bytes, through the leader, and waits until it is applied there.
func (f *floor) publish(ctx context.Context, size int) error {
	i := f.seq.Add(1)
	idx, err := f.c.Apply(ctx, f.origin.Publication(fmt.Sprintf("%s/%d", f.origin.ID, i), 1, size))
	if err != nil {
		return err
	}
	if idx == 0 {
		return errors.New("floor: applied without a log index")
	}
	return nil
}

// floorRow measures n publishers against the floor.
func floorRow(ctx context.Context, f *floor, n int, cfg Config) (Row, error) {
	cfg.progress("%s: %d publishers for %s", FloorSystem, n, cfg.Duration)
	return Load(ctx, FloorSystem, FloorWorkload, n, cfg.Duration, func(ctx context.Context, _ int) error {
		return f.publish(ctx, cfg.ValueSize)
	})
}
