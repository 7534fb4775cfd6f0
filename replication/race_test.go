//go:build race

package replication

// raceSlowdown stretches the test federations' raft timeouts under the race
// detector, which slows every goroutine several times over: with the plain
// timeouts a leader on a loaded machine loses its lease between heartbeats
// and a write fails with "not the leader".
const raceSlowdown = 4
