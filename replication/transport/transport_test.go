package transport

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestSplit: a batch beyond the budget is cut into parts of consecutive
// entries, each continuing the log where the previous one ended; nothing is
// lost, reordered or sent twice, and small batches go whole.
func TestSplit(t *testing.T) {
	tr := &Transport{cfg: Config{MaxMessage: 4000}} // budget 3,000 bytes
	batch := func(sizes ...int) *raft.AppendEntriesRequest {
		req := &raft.AppendEntriesRequest{Term: 3, PrevLogEntry: 10, PrevLogTerm: 2, LeaderCommitIndex: 12}
		for i, n := range sizes {
			req.Entries = append(req.Entries, &raft.Log{Index: uint64(11 + i), Term: 3, Data: make([]byte, n)})
		}
		return req
	}
	for _, tc := range []struct {
		name  string
		req   *raft.AppendEntriesRequest
		parts int
	}{
		{"heartbeat", batch(), 1},
		{"fits", batch(100, 100, 100), 1},
		{"one oversized entry goes alone", batch(10_000), 1},
		{"cut in three", batch(1000, 1000, 1000, 1000, 1000, 1000), 3},
		{"oversized entry between small ones", batch(100, 10_000, 100), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := tr.split(tc.req)
			if len(parts) != tc.parts {
				t.Fatalf("%d parts, want %d", len(parts), tc.parts)
			}
			prev, prevTerm, next := tc.req.PrevLogEntry, tc.req.PrevLogTerm, 0
			for i, p := range parts {
				if p.PrevLogEntry != prev || p.PrevLogTerm != prevTerm {
					t.Fatalf("part %d continues after %d/%d, want %d/%d", i, p.PrevLogEntry, p.PrevLogTerm, prev, prevTerm)
				}
				if p.Term != tc.req.Term || p.LeaderCommitIndex != tc.req.LeaderCommitIndex {
					t.Fatalf("part %d lost the header", i)
				}
				if len(p.Entries) > 1 && entriesSize(p.Entries) > tr.budget() {
					t.Fatalf("part %d holds %d bytes, budget %d", i, entriesSize(p.Entries), tr.budget())
				}
				for _, e := range p.Entries {
					if e != tc.req.Entries[next] {
						t.Fatalf("part %d: entry %d out of order", i, e.Index)
					}
					next++
					prev, prevTerm = e.Index, e.Term
				}
			}
			if next != len(tc.req.Entries) {
				t.Fatalf("%d of %d entries sent", next, len(tc.req.Entries))
			}
		})
	}
}

// TestMerge: requests are stored together only when the second continues the
// first exactly, from the same leader in the same term, and then as one
// request with every entry and the latest commit index.
func TestMerge(t *testing.T) {
	hdr := raft.RPCHeader{ProtocolVersion: 3, ID: []byte("L"), Addr: []byte("l:1")}
	req := func(term, prev, prevTerm uint64, commit uint64, entries ...uint64) *raft.AppendEntriesRequest {
		r := &raft.AppendEntriesRequest{RPCHeader: hdr, Term: term, PrevLogEntry: prev, PrevLogTerm: prevTerm, LeaderCommitIndex: commit}
		for _, i := range entries {
			r.Entries = append(r.Entries, &raft.Log{Index: i, Term: term})
		}
		return r
	}
	other := req(3, 12, 3, 11, 13)
	other.ID = []byte("M")
	for _, tc := range []struct {
		name    string
		a, b    *raft.AppendEntriesRequest
		ok      bool
		entries []uint64
	}{
		{"continues", req(3, 10, 2, 9, 11, 12), req(3, 12, 3, 11, 13), true, []uint64{11, 12, 13}},
		{"after an empty one", req(3, 12, 3, 9), req(3, 12, 3, 11, 13, 14), true, []uint64{13, 14}},
		{"an empty one after", req(3, 10, 2, 9, 11, 12), req(3, 12, 3, 12), true, []uint64{11, 12}},
		{"gap", req(3, 10, 2, 9, 11, 12), req(3, 13, 3, 11, 14), false, nil},
		{"overlap", req(3, 10, 2, 9, 11, 12), req(3, 11, 3, 11, 12), false, nil},
		{"new term", req(3, 10, 2, 9, 11, 12), req(4, 12, 3, 11, 13), false, nil},
		{"previous term differs", req(3, 10, 2, 9, 11, 12), req(3, 12, 2, 11, 13), false, nil},
		{"another leader", req(3, 10, 2, 9, 11, 12), other, false, nil},
		{"a broken read", req(3, 10, 2, 9, 11, 12), nil, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tc.a.Entries)
			ok := continues(tc.a, tc.b)
			if ok != tc.ok {
				t.Fatalf("continues %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			m := joined([]*raft.AppendEntriesRequest{tc.a, tc.b})
			if len(tc.a.Entries) != before {
				t.Fatal("the first request was modified")
			}
			var got []uint64
			for _, e := range m.Entries {
				got = append(got, e.Index)
			}
			if !slices.Equal(got, tc.entries) {
				t.Fatalf("entries %v, want %v", got, tc.entries)
			}
			if m.PrevLogEntry != tc.a.PrevLogEntry || m.PrevLogTerm != tc.a.PrevLogTerm || m.Term != tc.a.Term {
				t.Fatal("the merged request does not start where the first did")
			}
			if m.LeaderCommitIndex != max(tc.a.LeaderCommitIndex, tc.b.LeaderCommitIndex) {
				t.Fatalf("commit index %d", m.LeaderCommitIndex)
			}
		})
	}
}

// TestPipelineStoresQueuedRequestsTogether: requests that queue on a
// follower while raft stores an earlier one reach raft as one request, and
// the leader still gets one successful answer per request, in order.
func TestPipelineStoresQueuedRequestsTogether(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	follower, p := pipelinePair(t)

	const n = 5
	reqs := make([]*raft.AppendEntriesRequest, n+1)
	send := func(i uint64) {
		reqs[i] = appendRequest(i, []byte{byte(i)})
		if _, err := p.AppendEntries(reqs[i], &raft.AppendEntriesResponse{}); err != nil {
			t.Fatal(err)
		}
	}
	next := func() raft.RPC {
		select {
		case rpc := <-follower.Consumer():
			return rpc
		case <-ctx.Done():
			t.Fatal("no request reached raft")
			return raft.RPC{}
		}
	}
	indexes := func(rpc raft.RPC) []uint64 {
		var out []uint64
		for _, e := range rpc.Command.(*raft.AppendEntriesRequest).Entries {
			out = append(out, e.Index)
		}
		return out
	}

	send(1)
	first := next() // raft is "storing" entry 1 until it answers
	for i := uint64(2); i <= n; i++ {
		send(i)
	}
	for follower.readAhead.Load() < n-1 {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d requests arrived", follower.readAhead.Load(), n-1)
		case <-time.After(5 * time.Millisecond): // polling a condition with a deadline
		}
	}
	if got := indexes(first); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("first request holds %v", got)
	}
	first.Respond(&raft.AppendEntriesResponse{Term: 2, LastLog: 1, Success: true}, nil)
	merged := next()
	if got := indexes(merged); !slices.Equal(got, []uint64{2, 3, 4, 5}) {
		t.Fatalf("queued requests reached raft as %v, want one request of 2..5", got)
	}
	if r := merged.Command.(*raft.AppendEntriesRequest); r.PrevLogEntry != 1 || r.LeaderCommitIndex != n-1 {
		t.Fatalf("merged request after %d with commit %d", r.PrevLogEntry, r.LeaderCommitIndex)
	}
	merged.Respond(&raft.AppendEntriesResponse{Term: 2, LastLog: n, Success: true}, nil)

	for i := uint64(1); i <= n; i++ {
		select {
		case f := <-p.Consumer():
			if f.Error() != nil || f.Request() != reqs[i] || !f.Response().Success {
				t.Fatalf("answer %d: err %v, success %v, own request %v", i, f.Error(), f.Response().Success, f.Request() == reqs[i])
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d answers", i-1, n)
		}
	}
}

// pipelinePair starts a follower's transport on a gRPC server on loopback and
// opens a pipeline to it from a leader's; the test plays raft on both sides.
func pipelinePair(t *testing.T) (follower *Transport, p raft.AppendPipeline) {
	t.Helper()
	follower, leader, addr := transportPair(t, nil)
	p, err := leader.AppendEntriesPipeline("F", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return follower, p
}

// transportPair starts a follower's transport (taking snapshots as accept
// says) on a gRPC server on loopback, and a leader's transport to call it.
func transportPair(t *testing.T, accept func(int64) error) (follower, leader *Transport, addr raft.ServerAddress) {
	t.Helper()
	const maxMsg = 64 << 20
	dial := func(_ context.Context, target string) (*grpc.ClientConn, error) {
		return grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(maxMsg)))
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = raft.ServerAddress(lis.Addr().String())
	follower, err = New(Config{LocalAddr: addr, Dial: dial, MaxMessage: maxMsg, AcceptSnapshot: accept})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(maxMsg))
	follower.Register(srv)
	go srv.Serve(lis)
	// The tests hold a request unanswered, as a stalled disk would: the
	// leader's response watchdog (10 s by default) must not break the
	// pipeline first when the run is slow (-race on a loaded machine).
	leader, err = New(Config{LocalAddr: "leader", Dial: dial, MaxMessage: maxMsg, Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		leader.Close()
		follower.Close()
		srv.Stop()
	})
	return follower, leader, addr
}

// appendRequest is the leader's request carrying entry i of term 2.
func appendRequest(i uint64, data []byte) *raft.AppendEntriesRequest {
	return &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("L"), Addr: []byte("leader")}, Term: 2,
		PrevLogEntry: i - 1, PrevLogTerm: 2, LeaderCommitIndex: i - 1, Entries: []*raft.Log{{Index: i, Term: 2, Data: data}}}
}

// TestPipelineReadAheadBounded: while raft is stuck on one request (a
// stalled disk), the follower reads no more than its read-ahead bound of the
// leader's stream, and delivers all of it, in order, once raft goes on.
func TestPipelineReadAheadBounded(t *testing.T) {
	// 36 MiB through gRPC: seconds normally, far longer under -race on a
	// loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	follower, p := pipelinePair(t)
	const n, size = 12, 3 << 20
	bound := int64(readAheadBytes/size + 1)
	sent := make(chan error, 1)
	go func() {
		for i := uint64(1); i <= n; i++ {
			if _, err := p.AppendEntries(appendRequest(i, make([]byte, size)), &raft.AppendEntriesResponse{}); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	var stuck raft.RPC
	select {
	case stuck = <-follower.Consumer():
	case <-ctx.Done():
		t.Fatal("no request reached raft")
	}
	for follower.readAhead.Load() < bound {
		select {
		case <-ctx.Done():
			t.Fatalf("read ahead %d, want %d", follower.readAhead.Load(), bound)
		case <-time.After(5 * time.Millisecond): // polling a condition with a deadline
		}
	}
	// Observed for a while: the rest stays in the leader's stream.
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; time.Sleep(10 * time.Millisecond) {
		if got := follower.readAhead.Load(); got > bound {
			t.Fatalf("a stalled follower read %d requests of %d MiB ahead, bound %d", got, size>>20, bound)
		}
	}
	next := uint64(1)
	for rpc := stuck; ; {
		req := rpc.Command.(*raft.AppendEntriesRequest)
		for _, e := range req.Entries {
			if e.Index != next {
				t.Fatalf("entry %d reached raft, want %d", e.Index, next)
			}
			next++
		}
		rpc.Respond(&raft.AppendEntriesResponse{Term: 2, LastLog: next - 1, Success: true}, nil)
		if next > n {
			break
		}
		select {
		case rpc = <-follower.Consumer():
		case <-ctx.Done():
			t.Fatalf("entries up to %d reached raft, want %d", next-1, n)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

// TestEncodeOneBuffer: a batch of large entries is encoded into the buffer
// allocated for it, not one grown by doubling (about twice the batch
// allocated, and the batch copied a dozen times).
func TestEncodeOneBuffer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries int
		size    int
	}{
		{"one small", 1, 600},
		{"bulk", 8, 1 << 20},
		{"many small", 256, 700},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("n1"), Addr: []byte("127.0.0.1:1")}, Term: 3, PrevLogEntry: 9, PrevLogTerm: 3, LeaderCommitIndex: 9}
			for i := range tc.entries {
				req.Entries = append(req.Entries, &raft.Log{Index: uint64(10 + i), Term: 3, Type: raft.LogCommand, Data: make([]byte, tc.size), AppendedAt: time.Now()})
			}
			b, err := encode(req)
			if err != nil {
				t.Fatal(err)
			}
			if cap(b) < len(b) || cap(b) > encodedSize(req) {
				t.Fatalf("encoded %d bytes into a buffer of %d: grown past the %d allowed", len(b), cap(b), encodedSize(req))
			}
			var got raft.AppendEntriesRequest
			if err := decode(b, &got); err != nil || len(got.Entries) != tc.entries || len(got.Entries[tc.entries-1].Data) != tc.size {
				t.Fatalf("decoded %d entries (err %v)", len(got.Entries), err)
			}
		})
	}
}
