package replication

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestVoteGate: a restored node refuses every vote while it is behind, and
// passes votes once the gate opens; other requests always pass.
func TestVoteGate(t *testing.T) {
	_, trans := raft.NewInmemTransport("restored")
	src := make(chan raft.RPC)
	g := &voteGate{Transport: trans, in: src, out: make(chan raft.RPC), stop: make(chan struct{})}
	g.closed.Store(true)
	go g.run()
	defer g.Close()
	send := func(cmd any) (raft.RPCResponse, bool) {
		resp := make(chan raft.RPCResponse, 1)
		go func() { src <- raft.RPC{Command: cmd, RespChan: resp} }()
		select {
		case r := <-resp:
			return r, false
		case rpc := <-g.Consumer():
			rpc.Respond(nil, nil)
			return <-resp, true
		case <-time.After(10 * time.Second):
			t.Fatal("request neither answered nor passed on")
			return raft.RPCResponse{}, false
		}
	}
	if r, passed := send(&raft.RequestVoteRequest{}); passed || !errors.Is(r.Error, errNoVote) {
		t.Fatalf("vote while behind: passed %v, error %v; want refused", passed, r.Error)
	}
	if _, passed := send(&raft.AppendEntriesRequest{}); !passed {
		t.Fatal("append entries held back")
	}
	g.closed.Store(false)
	if _, passed := send(&raft.RequestVoteRequest{}); !passed {
		t.Fatal("vote held back once caught up")
	}
}
