package replication

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
)

// GetLog reads the log as a rebuild does.
func (l *protoLog) GetLog(i uint64, out *raft.Log) error {
	if i == 0 || i > uint64(len(l.logs)) {
		return raft.ErrLogNotFound
	}
	*out = *l.logs[i-1]
	return nil
}

func take() *peerpb.Command {
	return &peerpb.Command{Command: &peerpb.Command_Checkpoint{Checkpoint: &peerpb.Checkpoint{}}}
}

func compare(at uint64, sum []byte) *peerpb.Command {
	return &peerpb.Command{Command: &peerpb.Command_Checkpoint{Checkpoint: &peerpb.Checkpoint{Index: at, StateHash: sum}}}
}

// tamper changes the last byte of the first value of a bucket of the FSM's
// file behind its back and seals it with a fresh checksum, as a deliberate
// edit of fsm.db would (the checksums catch damage, not edits).
func tamper(t *testing.T, f *FSM, bucket []byte) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		k, v := b.Cursor().First()
		if k == nil {
			t.Fatalf("nothing in %s to tamper with", bucket)
		}
		v = bytes.Clone(val(tx, bucket, k, v))
		v[len(v)-1] ^= 0xff
		return put(b, k, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointDetectsAndRepairsTampering: at protocol 4 a checkpoint's
// take has every FSM hash its state before it, in the applying transaction
// (a batch that holds entries before and after it hashes the same as one
// entry at a time); the compare carries the leader's hash. An FSM whose
// stored state was tampered with disagrees, sets its state aside, rebuilds
// it from the log and agrees again; one whose log itself says otherwise
// stays diverged and says why. Before protocol 4 a checkpoint is rejected.
func TestCheckpointDetectsAndRepairsTampering(t *testing.T) {
	l := newProtoLog(t)
	early := l.add(take())
	l.add(l.announcement("AA", "AA", 1, ProtocolCheckpoints))
	l.add(l.announcement("BB", "BB", 1, ProtocolCheckpoints))
	l.add(activation(ProtocolCheckpoints))
	l.add(barrierCmd())
	supported := []uint32{1, ProtocolCheckpoints}
	open := func() *FSM {
		f := openSupporting(t, filepath.Join(t.TempDir(), "fsm.db"), supported...)
		t.Cleanup(func() { f.Close() })
		f.rebuild = &rebuildSource{snaps: raft.NewInmemSnapshotStore(), logs: l}
		return f
	}
	leader, batched, tampered := open(), open(), open()
	if res := applyAll(leader, l.logs); !errors.Is(res[early-1].Err, ErrRejected) {
		t.Fatalf("checkpoint before protocol 4: %v, want rejected", res[early-1].Err)
	}
	applyAll(tampered, l.logs)
	tamper(t, tampered, bucketMembers)

	// The take, with entries before and after it in one batch for batched.
	before := l.add(barrierCmd())
	tk := l.add(take())
	l.add(barrierCmd())
	applyAll(leader, l.logs[before-1:])
	batched.ApplyBatch(l.logs)
	applyAll(tampered, l.logs[before-1:])
	at, sum := leader.Taken()
	if at != tk-1 || len(sum) != 32 {
		t.Fatalf("leader took %d %x, want at %d", at, sum, tk-1)
	}
	if bat, bsum := batched.Taken(); bat != at || !bytes.Equal(bsum, sum) {
		t.Fatalf("batched FSM took %d %x, the leader %d %x", bat, bsum, at, sum)
	}
	if _, tsum := tampered.Taken(); bytes.Equal(tsum, sum) {
		t.Fatal("the tampered state hashes as the leader's")
	}

	cmp := l.add(compare(at, sum))
	for name, f := range map[string]*FSM{"leader": leader, "batched": batched, "tampered": tampered} {
		if res := applyAll(f, l.logs[cmp-1:]); res[0].Err != nil {
			t.Fatalf("%s: compare: %v", name, res[0].Err)
		}
	}
	if ck := batched.Checkpoints(); ck.LastIndex != cmp || ck.Disagreements != 0 || ck.Diverged != "" {
		t.Fatalf("batched FSM after the compare: %+v", ck)
	}
	ck := tampered.Checkpoints()
	if ck.LastIndex != cmp || ck.Disagreements != 1 || ck.Diverged != "" {
		t.Fatalf("tampered FSM after the compare: %+v, want one disagreement, repaired", ck)
	}
	_, want, _ := leader.StateHash()
	if _, got, _ := tampered.StateHash(); !bytes.Equal(got, want) {
		t.Fatalf("repaired state hashes %x, the leader's %x", got, want)
	}
	if tampered.Applied() != cmp {
		t.Fatalf("repaired FSM applied %d, want %d", tampered.Applied(), cmp)
	}

	// A compare whose hash no rebuild can reach (a leader that says
	// otherwise): diverged, with the reason.
	tk2 := l.add(take())
	bad := l.add(compare(tk2-1, bytes.Repeat([]byte{7}, 32)))
	applyAll(tampered, l.logs[tk2-1:])
	ck = tampered.Checkpoints()
	if ck.LastIndex != bad || ck.Disagreements != 2 || ck.Diverged == "" {
		t.Fatalf("after an unreachable hash: %+v, want diverged", ck)
	}
	t.Logf("diverged: %s", ck.Diverged)
}
