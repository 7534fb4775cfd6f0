package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/watchfed/watchfed/policy/seal"
	"github.com/watchfed/watchfed/replication/replicationtest"
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
}

// startFloor starts three members under dir, the first bootstrapping the
// group and inviting the others as voters, and returns once all three are in.
func startFloor(ctx context.Context, dir string, rc *raft.Config) (*floor, error) {
	c, err := replicationtest.Start(ctx, replicationtest.Options{
		Size: 3, Dir: dir, Prefix: "FLOOR-", Verify: seal.Verify,
		Raft: func() *raft.Config { return rc }, // Open copies it
	})
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	return &floor{c: c, origin: c.Members[0]}, nil
}

// Close stops every member.
func (f *floor) Close() { f.c.Close() }

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
