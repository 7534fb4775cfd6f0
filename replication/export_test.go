package replication

import (
	"time"

	"github.com/hashicorp/raft"
)

// What the external tests (package replication_test, which run on
// replicationtest's cluster) read of the replicator's insides.

const RaceSlowdown = raceSlowdown

// Snapshot has raft take a snapshot now.
func Snapshot(r *Replicator) error { return r.raft.Snapshot().Error() }

// Rebuilt says why the FSM was rebuilt at start ("" if it was not).
func Rebuilt(r *Replicator) string { return r.fsm.Rebuilt() }

// FirstIndex is the first index left in the raft log.
func FirstIndex(r *Replicator) (uint64, error) { return r.logs.FirstIndex() }

// OpenMarker is the file that marks the FSM's file open since a boot.
var OpenMarker = openMarker

// AddBehindRegistry adds a non-voter to raft's configuration directly, as a
// command that changed raft without the registry once did.
func AddBehindRegistry(r *Replicator, id, addr string) error {
	return r.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 5*time.Second).Error()
}

// ForgetBodies empties the cache of decoded publication bodies, as a
// restart or a snapshot install leaves it.
func ForgetBodies(r *Replicator) {
	c := &r.fsm.bodies
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order, c.m, c.bytes = nil, nil, 0
}
