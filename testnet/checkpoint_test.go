package testnet

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/replication/checksum"
)

func ckStatus(t *testing.T, ln *LocalNode) *pb.GetStatusResponse {
	t.Helper()
	st, err := pb.NewFederationServiceClient(conn(t, ln)).GetStatus(context.Background(), &pb.GetStatusRequest{WithStateHash: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitProtocol waits until every member of l applies protocol v or later.
// A federation of this release activates its newest protocol on its own,
// shortly after it formed: tests of a later protocol's rules wait for it.
func waitProtocol(t *testing.T, l *Local, v uint32) {
	t.Helper()
	waitFor(t, fmt.Sprintf("protocol %d active on every member", v), func() bool {
		for _, ln := range l.Nodes {
			if ckStatus(t, ln).Protocol < v {
				return false
			}
		}
		return true
	})
}

// TestCheckpointRepairsATamperedMember: once protocol 4 is active the leader
// commits checkpoints while entries flow. A stopped follower's fsm.db edited
// (one byte of a stored value, its checksum made anew) disagrees with the next checkpoint; the node
// rebuilds its state from snapshot and log and reaches its partners' state
// hash, and its status says so: state_hash, last_checkpoint_index, one
// disagreement, not diverged.
func TestCheckpointRepairsATamperedMember(t *testing.T) {
	if !replication.Contiguous(replication.SupportedProtocols(), 1, replication.ProtocolCheckpoints) {
		t.Skipf("protocol %d (checkpoints) is activated only once this binary supports every version below it; it supports %v",
			replication.ProtocolCheckpoints, replication.SupportedProtocols())
	}
	l := startLocal(t, 3)
	waitProtocol(t, l, replication.ProtocolCheckpoints)
	// a leads, b follows: the tampered member is stopped and restarted,
	// which a leader would not survive as leader (a damaged leader is in
	// replication's TestCheckpointMajority: the majority's hash decides).
	a, b := l.Nodes[0], l.Nodes[1]
	for _, ln := range l.Nodes {
		if ckStatus(t, ln).Role == "leader" {
			a = ln
		}
	}
	for _, ln := range l.Nodes {
		if ln != a {
			b = ln
		}
	}
	for i := range 5 {
		add(t, a, fmt.Sprintf("Checkpoint Target %d", i))
	}
	waitFor(t, "the partner holds the 5 entries", func() bool { return len(shared(t, b)) == 5 })
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(b.Dir, "raft", "fsm.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		// An edit with its checksum made anew: the checksums catch a
		// damaged value, only a checkpoint catches a deliberate edit.
		bk := tx.Bucket([]byte("entries"))
		k, v := bk.Cursor().First()
		bare, err := checksum.Open("fsm.db", []byte("entries"), k, v)
		if err != nil {
			return err
		}
		bare = bytes.Clone(bare)
		bare[len(bare)-1] ^= 0x01
		return checksum.Put(bk, k, bare)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := l.Restart(ctx, b); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		st := ckStatus(t, b)
		if st.CheckpointDisagreements > 0 {
			if st.Diverged || st.LastCheckpointIndex == 0 {
				t.Fatalf("after the disagreement: diverged %v (%s), last checkpoint %d", st.Diverged, st.DivergedReason, st.LastCheckpointIndex)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint disagreement within 60s: %+v", st)
		}
		add(t, a, fmt.Sprintf("Checkpoint Activity %d", i)) // checkpoints follow activity
		time.Sleep(200 * time.Millisecond)                  // pacing the writes, not a synchronisation
	}
	waitFor(t, "both members hold the same state at the same index", func() bool {
		sa, sb := ckStatus(t, a), ckStatus(t, b)
		return sa.StateHashIndex == sb.StateHashIndex && bytes.Equal(sa.StateHash, sb.StateHash) && len(sa.StateHash) == 32
	})
	if st := ckStatus(t, a); st.CheckpointDisagreements != 0 || st.Diverged {
		t.Fatalf("the untouched member: %d disagreements, diverged %v", st.CheckpointDisagreements, st.Diverged)
	}
	if n := len(shared(t, b)); n < 5 {
		t.Fatalf("the repaired member serves %d shared entries", n)
	}
}
