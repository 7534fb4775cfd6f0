package replication

import (
	"errors"
	"io"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// While this node sends a snapshot to a member (a newcomer, or one that fell
// behind), raft's own snapshots wait. A snapshot is followed by a compaction
// of the log up to TrailingLogs before it; the member installing the one
// being sent needs the log from just after it, so a compaction during the
// send (the catch-up's own grants fill the log meanwhile) made it install a
// second, newer snapshot: a 100,000-record catch-up then took two installs
// instead of one, at random, and a member on a slow link could be sent stale
// snapshots for as long as its transfer outlasted the compaction cadence.
// raft tries again at its next snapshot interval.

// errSnapshotDeferred is raft's snapshot refused while a send is under way.
var errSnapshotDeferred = errors.New("snapshot deferred: a snapshot is being sent to a member, which needs the log after it")

// snapshotSends counts this node's snapshot sends in flight.
type snapshotSends struct{ n atomic.Int32 }

// deferringFSM is the FSM as raft sees it: its snapshots wait for the sends.
type deferringFSM struct {
	*FSM
	sends *snapshotSends
}

func (f deferringFSM) Snapshot() (raft.FSMSnapshot, error) {
	if f.sends.n.Load() > 0 {
		return nil, errSnapshotDeferred
	}
	return f.FSM.Snapshot()
}

// countingTransport counts the snapshot sends through it.
type countingTransport struct {
	raft.Transport
	sends *snapshotSends
}

func (t countingTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	t.sends.n.Add(1)
	defer t.sends.n.Add(-1)
	return t.Transport.InstallSnapshot(id, target, args, resp, data)
}

// Close closes the transport under it, as raft would close it unwrapped.
func (t countingTransport) Close() error {
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// countingPreVoteTransport is countingTransport over a transport with
// pre-vote: raft uses pre-vote only when the transport it holds offers it.
type countingPreVoteTransport struct{ countingTransport }

func (t countingPreVoteTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.Transport.(raft.WithPreVote).RequestPreVote(id, target, args, resp)
}

// deferSnapshotsWhileSending returns the FSM and transport to give raft.
func deferSnapshotsWhileSending(fsm *FSM, trans raft.Transport) (raft.FSM, raft.Transport) {
	s := &snapshotSends{}
	t := countingTransport{Transport: trans, sends: s}
	if _, ok := trans.(raft.WithPreVote); ok {
		return deferringFSM{FSM: fsm, sends: s}, countingPreVoteTransport{t}
	}
	return deferringFSM{FSM: fsm, sends: s}, t
}
