package replication

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// sendStub is a transport whose snapshot sends wait for release.
type sendStub struct {
	raft.Transport
	started, release chan struct{}
}

func (s sendStub) InstallSnapshot(raft.ServerID, raft.ServerAddress, *raft.InstallSnapshotRequest, *raft.InstallSnapshotResponse, io.Reader) error {
	s.started <- struct{}{}
	<-s.release
	return nil
}

type preVoteStub struct{ sendStub }

func (preVoteStub) RequestPreVote(raft.ServerID, raft.ServerAddress, *raft.RequestPreVoteRequest, *raft.RequestPreVoteResponse) error {
	return nil
}

// TestSnapshotDeferredWhileSending: raft's snapshot (which compacts the log)
// is refused while a snapshot is being sent, and taken again once it is
// sent; the transport raft gets offers pre-vote exactly when the one under
// it does.
func TestSnapshotDeferredWhileSending(t *testing.T) {
	for _, tc := range []struct {
		name    string
		preVote bool
	}{{"plain transport", false}, {"pre-vote transport", true}} {
		t.Run(tc.name, func(t *testing.T) {
			fsm := newTestFSM(t, nil)
			stub := sendStub{started: make(chan struct{}), release: make(chan struct{})}
			var under raft.Transport = stub
			if tc.preVote {
				under = preVoteStub{stub}
			}
			rfsm, trans := deferSnapshotsWhileSending(fsm, under)
			if _, ok := trans.(raft.WithPreVote); ok != tc.preVote {
				t.Fatalf("transport offers pre-vote: %v, want %v", ok, tc.preVote)
			}
			if _, ok := rfsm.(raft.BatchingFSM); !ok {
				t.Fatal("raft's FSM lost ApplyBatch")
			}

			snap, err := rfsm.Snapshot()
			if err != nil {
				t.Fatalf("snapshot with no send under way: %v", err)
			}
			snap.Release()

			done := make(chan error, 1)
			go func() {
				done <- trans.InstallSnapshot("peer", "addr", &raft.InstallSnapshotRequest{}, &raft.InstallSnapshotResponse{}, strings.NewReader(""))
			}()
			<-stub.started
			if _, err := rfsm.Snapshot(); !errors.Is(err, errSnapshotDeferred) {
				t.Fatalf("snapshot during a send: err %v, want deferred", err)
			}
			close(stub.release)
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("send did not return")
			}
			snap, err = rfsm.Snapshot()
			if err != nil {
				t.Fatalf("snapshot after the send: %v", err)
			}
			snap.Release()
		})
	}
}
