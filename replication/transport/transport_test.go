package transport

import (
	"testing"

	"github.com/hashicorp/raft"
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
