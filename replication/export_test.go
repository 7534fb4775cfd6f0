package replication

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
