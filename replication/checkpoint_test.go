package replication

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
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

// report is agency's signed report of sum at the checkpoint at, signed by
// signer.
func (l *protoLog) report(agency, signer string, at uint64, sum []byte) *peerpb.Command {
	c := &peerpb.Checkpoint{Index: at, StateHash: sum, Agency: agency}
	c.Signature = ed25519.Sign(l.keys[signer], CheckpointMessage(c))
	return &peerpb.Command{Command: &peerpb.Command_Checkpoint{Checkpoint: c}}
}

// join adds a joined voter to the log.
func (l *protoLog) join(agency string) {
	_, l.keys[agency], _ = ed25519.GenerateKey(rand.Reader)
	m := &pb.Member{Agency: agency, Address: agency + ":1", CaCert: []byte("ca"), SigningKey: l.keys[agency].Public().(ed25519.PublicKey), SealingKey: []byte("k"), Voter: true}
	l.add(memberCmd(&peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: m}}))
	l.add(memberCmd(&peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: m}}))
}

// invite adds an invited agency (not joined, no vote) to the log: a member
// whose registry entry a test tampers with, so that the voters' reports
// still verify on the tampered state.
func (l *protoLog) invite(agency string) {
	m := &pb.Member{Agency: agency, Address: agency + ":1", CaCert: []byte("ca")}
	l.add(memberCmd(&peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: m}}))
}

// checkpointFSM is a new FSM of a binary supporting protocols 1 and
// ProtocolCheckpoints that rebuilds a damaged state from l.
func checkpointFSM(t *testing.T, l *protoLog) *FSM {
	t.Helper()
	f := newTestFSM(t, nil, 1, ProtocolCheckpoints)
	f.rebuild = &rebuildSource{snaps: raft.NewInmemSnapshotStore(), logs: l}
	return f
}

// tamperKey is tamper on the value of key.
func tamperKey(t *testing.T, f *FSM, bucket, key []byte) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		v := b.Get(key)
		if v == nil {
			t.Fatalf("no %s in %s to tamper with", key, bucket)
		}
		v = bytes.Clone(val(tx, bucket, key, v))
		v[len(v)-1] ^= 0xff
		return put(b, key, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointDetectsAndRepairsTampering: at protocol 4 a checkpoint's
// take has every FSM hash its state before it, in the applying transaction
// (a batch that holds entries before and after it hashes the same as one
// entry at a time); the voters report their hashes, signed, and the report
// with which a majority agree decides it. An FSM whose stored state was
// tampered with disagrees, sets its state aside, rebuilds it from the log
// and agrees again; one whose log itself says otherwise stays diverged and
// says why. Before protocol 4 a checkpoint is rejected.
func TestCheckpointDetectsAndRepairsTampering(t *testing.T) {
	l := newProtoLog(t)
	l.invite("DD")
	early := l.add(take())
	l.add(l.announcement("AA", "AA", 1, ProtocolCheckpoints))
	l.add(l.announcement("BB", "BB", 1, ProtocolCheckpoints))
	l.add(activation(ProtocolCheckpoints))
	l.add(barrierCmd())
	leader, batched, tampered := checkpointFSM(t, l), checkpointFSM(t, l), checkpointFSM(t, l)
	if res := applyAll(leader, l.logs); !errors.Is(res[early-1].Err, ErrRejected) {
		t.Fatalf("checkpoint before protocol 4: %v, want rejected", res[early-1].Err)
	}
	applyAll(tampered, l.logs)
	tamperKey(t, tampered, bucketMembers, []byte("DD"))

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
	if r := leader.CheckpointReport("AA"); r == nil || r.Index != at || !bytes.Equal(r.StateHash, sum) {
		t.Fatalf("report due from AA: %v", r)
	}

	// AA and BB (both voters) report the same hash: decided at BB's report.
	first := l.add(l.report("AA", "AA", at, sum))
	cmp := l.add(l.report("BB", "BB", at, sum))
	for name, f := range map[string]*FSM{"leader": leader, "batched": batched, "tampered": tampered} {
		for i, res := range applyAll(f, l.logs[first-1:]) {
			if res.Err != nil {
				t.Fatalf("%s: report %d: %v", name, i, res.Err)
			}
		}
	}
	if r := leader.CheckpointReport("AA"); r != nil {
		t.Fatalf("a report is still due once decided: %v", r)
	}
	if ck := batched.Checkpoints(); ck.LastIndex != cmp || ck.Disagreements != 0 || ck.Diverged != "" {
		t.Fatalf("batched FSM after the reports: %+v", ck)
	}
	ck := tampered.Checkpoints()
	if ck.LastIndex != cmp || ck.Disagreements != 1 || ck.Diverged != "" {
		t.Fatalf("tampered FSM after the reports: %+v, want one disagreement, repaired", ck)
	}
	_, want, _ := leader.StateHash()
	if _, got, _ := tampered.StateHash(); !bytes.Equal(got, want) {
		t.Fatalf("repaired state hashes %x, the leader's %x", got, want)
	}
	if tampered.Applied() != cmp {
		t.Fatalf("repaired FSM applied %d, want %d", tampered.Applied(), cmp)
	}

	// A majority on a hash no rebuild can reach (what the log itself
	// says): diverged, with the reason.
	tk2 := l.add(take())
	bad := bytes.Repeat([]byte{7}, 32)
	l.add(l.report("AA", "AA", tk2-1, bad))
	last := l.add(l.report("BB", "BB", tk2-1, bad))
	applyAll(tampered, l.logs[tk2-1:])
	ck = tampered.Checkpoints()
	if ck.LastIndex != last || ck.Disagreements != 2 || ck.Diverged == "" {
		t.Fatalf("after an unreachable hash: %+v, want diverged", ck)
	}
	t.Logf("diverged: %s", ck.Diverged)
}

// TestCheckpointMajority: the reference is the hash a majority of the
// voters report, not the leader's. With three voters, a leader whose state
// was damaged reports another hash than its two followers: the followers
// agree and stay whole; the leader's FSM disagrees and rebuilds. Reports
// that are forged, of a non-voter or a stranger, repeated, of an old
// checkpoint, or late are rejected by every FSM alike.
func TestCheckpointMajority(t *testing.T) {
	l := threeVoterCheckpointLog(t)
	leader, b, c := checkpointFSM(t, l), checkpointFSM(t, l), checkpointFSM(t, l)
	fsms := map[string]*FSM{"AA (leader, damaged)": leader, "BB": b, "CC": c}
	for name, f := range fsms {
		for i, res := range applyAll(f, l.logs) {
			if res.Err != nil {
				t.Fatalf("%s: entry %d: %v", name, i+1, res.Err)
			}
		}
	}
	tamperKey(t, leader, bucketMembers, []byte("DD"))
	tk := l.add(take())
	for _, f := range fsms {
		applyAll(f, l.logs[tk-1:])
	}
	at, good := b.Taken()
	if _, lsum := leader.Taken(); bytes.Equal(lsum, good) {
		t.Fatal("the damaged leader hashes as its followers")
	}
	_, lsum := leader.Taken()

	refused := []struct {
		name string
		cmd  *peerpb.Command
		want string
	}{
		{"forged by the leader for BB", l.report("BB", "AA", at, lsum), "signature does not verify"},
		{"a stranger", l.report("ZZ", "AA", at, lsum), "not a joined voter"},
		{"an old checkpoint", l.report("BB", "BB", at-1, good), "not the current checkpoint"},
		{"a short hash", l.report("BB", "BB", at, good[:8]), "hash of 8 bytes"},
	}
	for _, r := range refused {
		l.add(r.cmd)
	}
	l.add(l.report("AA", "AA", at, lsum))
	dup := l.add(l.report("AA", "AA", at, lsum))
	l.add(l.report("BB", "BB", at, good))
	decide := l.add(l.report("CC", "CC", at, good))
	late := l.add(l.report("CC", "CC", at, good))
	for name, f := range fsms {
		res := applyAll(f, l.logs[tk:])
		for i, r := range refused {
			if !errors.Is(res[i].Err, ErrRejected) || !strings.Contains(res[i].Err.Error(), r.want) {
				t.Fatalf("%s: report %s: %v, want rejected: %s", name, r.name, res[i].Err, r.want)
			}
		}
		if err := res[dup-tk-1].Err; !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "reported already") {
			t.Fatalf("%s: a repeated report: %v", name, err)
		}
		if err := res[late-tk-1].Err; !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "already decided") {
			t.Fatalf("%s: a report after the decision: %v", name, err)
		}
	}
	for name, f := range map[string]*FSM{"BB": b, "CC": c} {
		if ck := f.Checkpoints(); ck.LastIndex != decide || ck.Disagreements != 0 || ck.Diverged != "" {
			t.Fatalf("honest follower %s: %+v, want agreed at %d", name, ck, decide)
		}
	}
	if ck := leader.Checkpoints(); ck.LastIndex != decide || ck.Disagreements != 1 || ck.Diverged != "" {
		t.Fatalf("damaged leader: %+v, want one disagreement, repaired", ck)
	}
	_, want, _ := b.StateHash()
	for name, f := range fsms {
		if _, got, _ := f.StateHash(); !bytes.Equal(got, want) {
			t.Fatalf("%s hashes %x after the checkpoint, BB %x", name, got, want)
		}
	}
}

// compactedLog is a log whose entries before first are gone, as after raft
// compacted it behind a snapshot.
type compactedLog struct {
	*protoLog
	first uint64
}

func (l compactedLog) GetLog(i uint64, out *raft.Log) error {
	if i < l.first {
		return raft.ErrLogNotFound
	}
	return l.protoLog.GetLog(i, out)
}

// TestCheckpointRepairImpossibleKeepsState: a member disagrees with a
// checkpoint, and no snapshot and log reach the checkpoint's index any more
// (the log was compacted, no snapshot at or before it is kept). It is
// diverged and says why, but keeps the state it had at the index raft
// handed it: a state left empty or half rebuilt would apply the next
// entries past a gap, and disagree at every checkpoint after.
func TestCheckpointRepairImpossibleKeepsState(t *testing.T) {
	l := threeVoterCheckpointLog(t)
	f := newTestFSM(t, nil, 1, ProtocolCheckpoints)
	f.rebuild = &rebuildSource{snaps: raft.NewInmemSnapshotStore(), logs: compactedLog{protoLog: l, first: 3}}
	applyAll(f, l.logs)
	tamperKey(t, f, bucketMembers, []byte("DD"))
	tk := l.add(take())
	applyAll(f, l.logs[tk-1:])
	at, own := f.Taken()
	good := bytes.Repeat([]byte{1}, 32) // the others' hash: not this member's
	first := l.add(l.report("AA", "AA", at, good))
	decide := l.add(l.report("BB", "BB", at, good))
	for i, res := range applyAll(f, l.logs[first-1:]) {
		if res.Err != nil {
			t.Fatalf("report %d: %v", i, res.Err)
		}
	}
	if f.Applied() != decide {
		t.Fatalf("applied %d after the failed rebuild, want %d (the index raft handed it)", f.Applied(), decide)
	}
	if at2, own2 := f.Taken(); at2 != at || !bytes.Equal(own2, own) {
		t.Fatalf("the state after the failed rebuild took %d %x, before it %d %x: not the state it had", at2, own2, at, own)
	}
	ck := f.Checkpoints()
	if ck.LastIndex != decide || ck.Disagreements != 1 || !strings.Contains(ck.Diverged, "cannot rebuild") {
		t.Fatalf("after a disagreement no rebuild can mend: %+v, want one disagreement, diverged: cannot rebuild", ck)
	}
	// The next entries apply where they belong.
	next := l.add(barrierCmd())
	if res := applyAll(f, l.logs[next-1:]); res[0].Err != nil || f.Applied() != next {
		t.Fatalf("the next entry: %v, applied %d, want %d", res[0].Err, f.Applied(), next)
	}
	// A later checkpoint at which the majority's hash is this member's
	// shows it whole again.
	tk2 := l.add(take())
	applyAll(f, l.logs[tk2-1:])
	at2, own2 := f.Taken()
	first2 := l.add(l.report("AA", "AA", at2, own2))
	decide2 := l.add(l.report("BB", "BB", at2, own2))
	applyAll(f, l.logs[first2-1:])
	if ck := f.Checkpoints(); ck.LastIndex != decide2 || ck.Disagreements != 1 || ck.Diverged != "" {
		t.Fatalf("after an agreeing checkpoint: %+v, want whole again", ck)
	}
}

// threeVoterCheckpointLog is a log of three voters (AA, BB, CC) and an
// invited DD, every voter announcing protocol 4, activated, then a barrier.
func threeVoterCheckpointLog(t *testing.T) *protoLog {
	l := newProtoLog(t)
	l.join("CC")
	l.invite("DD")
	l.add(l.announcement("AA", "AA", 1, ProtocolCheckpoints))
	l.add(l.announcement("BB", "BB", 1, ProtocolCheckpoints))
	// CC's announcement, with its own joined index.
	a := &peerpb.ProtocolAnnouncement{Agency: "CC", JoinedIndex: 6, Sequence: 1, Versions: []uint32{1, ProtocolCheckpoints}}
	a.Signature = ed25519.Sign(l.keys["CC"], AnnouncementMessage(a))
	l.add(announce(a))
	l.add(activation(ProtocolCheckpoints))
	l.add(barrierCmd())
	return l
}
