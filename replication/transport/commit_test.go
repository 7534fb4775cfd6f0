package transport

import (
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// appliedFSM records the indexes raft applies.
type appliedFSM struct {
	mu      sync.Mutex
	indexes []uint64
}

func (f *appliedFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.indexes = append(f.indexes, l.Index)
	return nil
}

func (f *appliedFSM) applied() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.indexes)
}

func (*appliedFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, raft.ErrNothingNewToSnapshot }
func (*appliedFSM) Restore(io.ReadCloser) error         { return nil }

// TestFollowerCommitsOnlyWhatTheLeaderSent: a follower whose log holds
// entries of an earlier leader past what the new leader's request carries
// (written by the old leader, never committed, and not yet found to
// conflict) must not apply them when the request's commit index reaches
// past them. hashicorp/raft sets the commit index to min(leaderCommit, its
// own last index) rather than min(leaderCommit, the request's last entry)
// as the Raft paper says, so the transport clamps the commit index to what
// the request carries, which the follower has checked against the leader.
// Such a follower applies entries the federation never committed and
// skips the committed ones: its state differs until a checkpoint rebuilds
// it (issue 17's disagreements).
func TestFollowerCommitsOnlyWhatTheLeaderSent(t *testing.T) {
	follower, p := pipelinePair(t)
	store := raft.NewInmemStore()
	// Index 1: the configuration (term 1). 2-3: committed, term 1, shared
	// with the new leader. 4-6: the old leader's, term 1, never committed;
	// the new leader (term 2) has other entries from 4 on.
	conf := raft.Configuration{Servers: []raft.Server{
		{ID: "F", Address: follower.LocalAddr(), Suffrage: raft.Voter},
		{ID: "L", Address: "leader", Suffrage: raft.Voter},
	}}
	logs := []*raft.Log{{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(conf)}}
	for i := uint64(2); i <= 6; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte{byte(i)}})
	}
	if err := store.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := store.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		t.Fatal(err)
	}
	cfg := raft.DefaultConfig()
	cfg.LocalID = "F"
	cfg.HeartbeatTimeout = time.Hour // a follower that waits for its leader
	cfg.ElectionTimeout = time.Hour
	cfg.LeaderLeaseTimeout = time.Hour
	cfg.LogLevel = "error"
	fsm := &appliedFSM{}
	r, err := raft.NewRaft(cfg, fsm, store, store, raft.NewInmemSnapshotStore(), follower)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown().Error() })

	// The new leader's request carries entries 2-3 (they match), with its
	// commit index at 6 (its own entries 4-6, of term 2, are committed).
	req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("L"), Addr: []byte("leader")}, Term: 2,
		PrevLogEntry: 1, PrevLogTerm: 1, LeaderCommitIndex: 6,
		Entries: []*raft.Log{logs[1], logs[2]}}
	f, err := p.AppendEntries(req, &raft.AppendEntriesResponse{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	if !f.Response().Success {
		t.Fatalf("the follower refused the request: %+v", f.Response())
	}
	// The request is answered once its commit index is set; the FSM
	// applies in order, after it.
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Contains(fsm.applied(), 3) {
		if time.Now().After(deadline) {
			t.Fatalf("entry 3 not applied within 30s: %v", fsm.applied())
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	if got := fsm.applied(); slices.ContainsFunc(got, func(i uint64) bool { return i > 3 }) {
		t.Fatalf("the follower applied %v: entries past the request's last (3), the old leader's, never committed", got)
	}
	if r.AppliedIndex() != 3 {
		t.Fatalf("applied index %d, want 3", r.AppliedIndex())
	}
}
