package replication

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
)

// TestStateHashAndBarrier: a barrier is applied without changing anything
// but the applied index; two FSMs that applied the same log hash the same,
// and differ as soon as one applied more.
func TestStateHashAndBarrier(t *testing.T) {
	barrier := barrierData(t)
	a, b := newTestFSM(t, nil), newTestFSM(t, nil)
	for _, f := range []*FSM{a, b} {
		res := f.Apply(&raft.Log{Index: 3, Type: raft.LogCommand, Data: barrier}).(ApplyResult)
		if res.Err != nil {
			t.Fatalf("barrier rejected: %v", res.Err)
		}
	}
	ia, ha, err := a.StateHash()
	if err != nil {
		t.Fatal(err)
	}
	ib, hb, _ := b.StateHash()
	if ia != 3 || ib != 3 || !bytes.Equal(ha, hb) {
		t.Fatalf("same log, states differ: %d %x / %d %x", ia, ha, ib, hb)
	}
	if last, _ := a.LastEntry(3); last != 0 {
		t.Fatalf("a barrier was stored as an entry (last entry %d)", last)
	}
	b.Apply(&raft.Log{Index: 4, Type: raft.LogCommand, Data: barrier})
	ib, hb, _ = b.StateHash()
	if ib != 4 || bytes.Equal(ha, hb) {
		t.Fatalf("more applied, same hash: %d %x", ib, hb)
	}
}
