package replication

import (
	"bytes"
	"io"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	"github.com/watchfed/watchfed/replication/checksum"
	"github.com/watchfed/watchfed/replication/fileversion"
)

// beforeNested is fsm.db's format as a binary before format 3 judges it
// (the release before 0e05785): what a member on it accepts as a snapshot.
var beforeNested = fileversion.Format{Name: "fsm.db", Current: 2, Reads: []int{1, 2}}

// largePublication is a publication of AA of a fresh entry whose body is
// over logNestMin (a body of 20 KB of ciphertext for BB).
func (l *protoLog) largePublication() *peerpb.Command {
	return l.publicationOf(&peerpb.PublicationBody{Origin: "AA", Envelopes: []*peerpb.Envelope{{
		Header: &peerpb.EnvelopeHeader{EntryId: "AA/" + ulid.Make().String(), Version: 1, Origin: "AA", Recipients: []string{"BB"}},
		Bodies: []*peerpb.Body{{Recipients: []string{"BB"}, Keys: []*peerpb.WrappedKey{{Recipient: "BB", Epoch: 1}},
			Ciphertext: bytes.Repeat([]byte{0xab}, 20<<10)}}}}})
}

// layoutLog is a federation's log across the switch: AA and BB join and
// announce versions, AA publishes two large publications, the leader
// activates activate, and AA publishes two more. pubs are the
// publications' indexes, act the activation's.
func layoutLog(t *testing.T, versions []uint32, activate uint32) (l *protoLog, pubs []uint64, act uint64) {
	l = newProtoLog(t)
	l.add(l.announcement("AA", "AA", versions...))
	l.add(l.announcement("BB", "BB", versions...))
	pubs = append(pubs, l.add(l.largePublication()), l.add(l.largePublication()))
	act = l.add(activation(activate))
	pubs = append(pubs, l.add(l.largePublication()), l.add(l.largePublication()))
	return l, pubs, act
}

// layout is what a test sees of an FSM's file: its format stamp and which
// log keys hold a nested bucket.
type layout struct {
	stamp  string
	nested []uint64
}

func layoutOf(t *testing.T, f *FSM) layout {
	t.Helper()
	var out layout
	f.mu.RLock()
	defer f.mu.RUnlock()
	err := f.db.View(func(tx *bolt.Tx) error {
		out.stamp = string(tx.Bucket(bucketMeta).Get(keyFormat))
		return tx.Bucket(bucketLog).ForEach(func(k, v []byte) error {
			if v == nil {
				out.nested = append(out.nested, u64(k))
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// imageStamp is the format stamp of a snapshot image, as a binary opening
// it reads it, and whether every value of it verifies.
func imageStamp(t *testing.T, image []byte) (stamp []byte, verified error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.bin")
	if err := writeSync(path, image); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		stamp = bytes.Clone(tx.Bucket(bucketMeta).Get(keyFormat))
		verified = checksum.Verify(tx)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return stamp, verified
}

func mustApply(t *testing.T, f *FSM, logs []*raft.Log) {
	t.Helper()
	for _, r := range applyAll(f, logs) {
		if r.Err != nil {
			t.Fatalf("entry %d: %v", r.Index, r.Err)
		}
	}
}

func stateHash(t *testing.T, f *FSM) []byte {
	t.Helper()
	_, sum, err := f.StateHash()
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestLayoutFollowsProtocol: fsm.db, and so every raft snapshot of it,
// stays at format 2, every command flat, until the activation of
// ProtocolNestedLog is applied: a member on a binary that reads formats 1
// and 2 only can take a snapshot of it all along. The activation stamps
// format 3 in its own transaction (so a command applied after it in the
// same batch is already nested), and only commands applied after it are
// nested. Where the protocol activated is an earlier one (a brand-new
// federation goes to the newest at once: 1 to 6), the layout is the same.
func TestLayoutFollowsProtocol(t *testing.T) {
	all := SupportedProtocols()
	for _, tc := range []struct {
		name     string
		versions []uint32 // announced by both members
		activate uint32
		batch    bool // the whole log applied in one transaction
		after    layout
	}{
		{name: "protocol 5 activated", versions: all[:5], activate: ProtocolAnchors, after: layout{stamp: "2"}},
		{name: "protocol 6 activated", versions: all, activate: ProtocolNestedLog, after: layout{stamp: "3", nested: []uint64{10, 11}}},
		{name: "protocol 6 activated in one batch", versions: all, activate: ProtocolNestedLog, batch: true, after: layout{stamp: "3", nested: []uint64{10, 11}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, pubs, act := layoutLog(t, tc.versions, tc.activate)
			if want := []uint64{7, 8, 10, 11}; !slices.Equal(pubs, want) || act != 9 {
				t.Fatalf("log of publications %v, activation %d; the cases want %v, 9", pubs, act, want)
			}
			f := newTestFSM(t, verifyEd25519)
			if got := layoutOf(t, f); got.stamp != "2" {
				t.Fatalf("a new fsm.db is stamped %q, want \"2\"", got.stamp)
			}
			if !tc.batch {
				mustApply(t, f, l.logs[:act-1])
				if got := layoutOf(t, f); got.stamp != "2" || len(got.nested) != 0 {
					t.Fatalf("before the activation: %+v, want format 2, nothing nested", got)
				}
				stamp, verified := imageStamp(t, snapshotImage(t, f))
				if _, err := beforeNested.Check("state.bin", stamp, false); err != nil || verified != nil {
					t.Fatalf("a snapshot before the activation: %v, %v; want one a binary before format 3 takes", err, verified)
				}
				mustApply(t, f, l.logs[act-1:])
			} else {
				for _, r := range f.ApplyBatch(l.logs) {
					if r.(ApplyResult).Err != nil {
						t.Fatalf("entry %d: %v", r.(ApplyResult).Index, r.(ApplyResult).Err)
					}
				}
			}
			got := layoutOf(t, f)
			if got.stamp != tc.after.stamp || !slices.Equal(got.nested, tc.after.nested) {
				t.Fatalf("after the activation of protocol %d: format %s, nested %v; want format %s, nested %v",
					tc.activate, got.stamp, got.nested, tc.after.stamp, tc.after.nested)
			}
			stamp, verified := imageStamp(t, snapshotImage(t, f))
			_, err := beforeNested.Check("state.bin", stamp, false)
			if verified != nil || (err == nil) != (tc.after.stamp == "2") {
				t.Fatalf("snapshot after the activation: stamp %s, verify %v, a binary before format 3: %v", stamp, verified, err)
			}
			es, err := f.Entries(0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var idx []uint64
			for _, e := range es {
				if len(e.Body.GetEnvelopes()[0].GetBodies()[0].GetCiphertext()) != 20<<10 {
					t.Errorf("entry %d read back without its body", e.Index)
				}
				idx = append(idx, e.Index)
			}
			if !slices.Equal(idx, pubs) {
				t.Fatalf("entries %v, want %v", idx, pubs)
			}
		})
	}
}

// TestLayoutAcrossRestartAndRestore: the format follows the applied
// state, not the binary or the way the state got there. An FSM closed
// before the activation reopens at format 2 and one closed after it at 3;
// a snapshot taken before the activation restores at format 2 (on an FSM
// at format 3 too) and moves to 3 when the activation is replayed; one
// taken after it restores at 3 (on an FSM at format 2 too). Every way ends
// in the same state hash, the same layout, and a file whose checksums
// verify.
func TestLayoutAcrossRestartAndRestore(t *testing.T) {
	all := SupportedProtocols()
	l, _, act := layoutLog(t, all, ProtocolNestedLog)
	want := layout{stamp: "3", nested: []uint64{10, 11}}

	dir := t.TempDir()
	path := filepath.Join(dir, "fsm.db")
	// One node applies the log with a restart either side of the activation.
	ref := openTestFSM(t, path, verifyEd25519)
	mustApply(t, ref, l.logs[:act-1])
	before := snapshotImage(t, ref)
	ref.Close()
	ref = openTestFSM(t, path, verifyEd25519)
	if got := layoutOf(t, ref); got.stamp != "2" {
		t.Fatalf("reopened before the activation at format %s, want 2", got.stamp)
	}
	mustApply(t, ref, l.logs[act-1:act])
	ref.Close()
	ref = openTestFSM(t, path, verifyEd25519)
	if got := layoutOf(t, ref); got.stamp != "3" {
		t.Fatalf("reopened after the activation at format %s, want 3", got.stamp)
	}
	after := snapshotImage(t, ref)
	mustApply(t, ref, l.logs[act:])
	defer ref.Close()
	if got := layoutOf(t, ref); got.stamp != want.stamp || !slices.Equal(got.nested, want.nested) {
		t.Fatalf("after a restart either side of the activation: %+v, want %+v", got, want)
	}
	wantHash := stateHash(t, ref)

	restore := func(t *testing.T, f *FSM, image []byte, stamp string) {
		t.Helper()
		if err := f.Restore(io.NopCloser(bytes.NewReader(image))); err != nil {
			t.Fatal(err)
		}
		if got := layoutOf(t, f); got.stamp != stamp || len(got.nested) != 0 {
			t.Fatalf("restored: %+v, want format %s, nothing nested", got, stamp)
		}
	}
	for _, tc := range []struct {
		name  string
		upTo  uint64 // what the FSM applied before the restore
		image []byte
		stamp string // the restored file's
	}{
		{name: "a snapshot from before the activation, on a new FSM", image: before, stamp: "2"},
		{name: "a snapshot from before the activation, on an FSM at format 3", upTo: act, image: before, stamp: "2"},
		{name: "a snapshot from after the activation, on a new FSM", image: after, stamp: "3"},
		{name: "a snapshot from after the activation, on an FSM at format 2", upTo: act - 2, image: after, stamp: "3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFSM(t, verifyEd25519)
			mustApply(t, f, l.logs[:tc.upTo])
			restore(t, f, tc.image, tc.stamp)
			mustApply(t, f, l.logs[f.Applied():])
			if got := layoutOf(t, f); got.stamp != want.stamp || !slices.Equal(got.nested, want.nested) {
				t.Fatalf("restored and replayed: %+v, want %+v", got, want)
			}
			if got := stateHash(t, f); !bytes.Equal(got, wantHash) {
				t.Fatalf("state hash %x, want %x", got, wantHash)
			}
			if err := f.view(checksum.Verify); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLayoutStateHashAcrossFormats: the same log applied by a member that
// activated ProtocolNestedLog (commands nested) and one that has the same
// state but stores every command flat (its file kept at format 2, as a
// member restored from a format 2 image and not yet past the activation
// would) hashes the same: the checkpoint compares of members in different
// layouts agree.
func TestLayoutStateHashAcrossFormats(t *testing.T) {
	all := SupportedProtocols()
	l, _, _ := layoutLog(t, all, ProtocolNestedLog)
	nested := newTestFSM(t, verifyEd25519)
	flat := newTestFSM(t, verifyEd25519)
	mustApply(t, nested, l.logs)
	mustApply(t, flat, l.logs)
	// flat's file with every command moved back flat, at format 2, as a
	// member restored from a format 2 image before the activation holds it.
	if err := unnestLog(flat.db, unnestBatchBytes); err != nil {
		t.Fatal(err)
	}
	if a, b := layoutOf(t, nested), layoutOf(t, flat); len(a.nested) != 2 || len(b.nested) != 0 || a.stamp == b.stamp {
		t.Fatalf("layouts %+v and %+v, want one nested at format 3 and one flat at 2", a, b)
	}
	if a, b := stateHash(t, nested), stateHash(t, flat); !bytes.Equal(a, b) {
		t.Fatalf("state hash nested %x, flat %x", a, b)
	}
	var (
		ha, hb []byte
		err    error
	)
	_ = nested.view(func(tx *bolt.Tx) error { ha, err = contentHash(tx); return err })
	_ = flat.view(func(tx *bolt.Tx) error { hb, err = contentHash(tx); return err })
	if !bytes.Equal(ha, hb) {
		t.Fatalf("checkpoint hash nested %x, flat %x", ha, hb)
	}
}

// TestProtocolNestedLogActivated: protocol 6 is activated like any other,
// once every joined member announced it, and straight from 1 in a
// brand-new federation whose members all run this binary; a federation
// with a member that announced only up to 5 (the release before) stays
// below it.
func TestProtocolNestedLogActivated(t *testing.T) {
	all := SupportedProtocols()
	for _, tc := range []struct {
		name   string
		aa, bb []uint32
		want   uint32
	}{
		{"every member on this binary", all, all, ProtocolNestedLog},
		{"a member on the release before", all, all[:5], ProtocolAnchors},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newProtoLog(t)
			l.add(l.announcement("AA", "AA", tc.aa...))
			l.add(l.announcement("BB", "BB", tc.bb...))
			f := newTestFSM(t, verifyEd25519)
			mustApply(t, f, l.logs)
			v, ok := f.ProtocolToActivate()
			if !ok || v != tc.want {
				t.Fatalf("to activate: %d %v, want %d", v, ok, tc.want)
			}
			idx := l.add(activation(v))
			mustApply(t, f, l.logs[idx-1:])
			wantStamp := map[bool]string{true: "3", false: "2"}[v >= ProtocolNestedLog]
			if got := layoutOf(t, f); got.stamp != wantStamp || f.Protocol().Active != v {
				t.Fatalf("after activating %d: protocol %d, format %s; want format %s", v, f.Protocol().Active, got.stamp, wantStamp)
			}
		})
	}
}

// TestLayoutUnnested: a file stamped 3 while its state is before protocol
// 6, with commands nested (as a binary between 0e05785 and the rule that
// the format follows the protocol left it), is stored flat again and
// stamped 2 at open, whatever the number of transactions the move takes:
// the same entries, the same state hash, every checksum verifying, and
// snapshots a member on the release before takes.
func TestLayoutUnnested(t *testing.T) {
	all := SupportedProtocols()
	for _, tc := range []struct {
		name     string
		maxBytes int // unnestLog's batch; 0: as open does it
	}{
		{name: "at open"},
		{name: "one command a transaction", maxBytes: 1},
		{name: "two commands a transaction", maxBytes: logNestMin + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, pubs, _ := layoutLog(t, all[:5], ProtocolAnchors)
			path := filepath.Join(t.TempDir(), "fsm.db")
			f := openTestFSM(t, path, verifyEd25519)
			formatNestedFile(t, f.db) // as a binary of 0e05785 stamped it at open
			mustApply(t, f, l.logs)
			if got := layoutOf(t, f); got.stamp != "3" || !slices.Equal(got.nested, pubs) {
				t.Fatalf("before: %+v, want format 3 with %v nested", got, pubs)
			}
			wantHash := stateHash(t, f)
			if tc.maxBytes > 0 {
				if err := unnestLog(f.db, tc.maxBytes); err != nil {
					t.Fatal(err)
				}
			}
			f.Close()
			f = openTestFSM(t, path, verifyEd25519)
			defer f.Close()
			if got := layoutOf(t, f); got.stamp != "2" || len(got.nested) != 0 {
				t.Fatalf("after: %+v, want format 2, nothing nested", got)
			}
			if got := stateHash(t, f); !bytes.Equal(got, wantHash) {
				t.Fatalf("state hash %x, want %x", got, wantHash)
			}
			if err := f.view(checksum.Verify); err != nil {
				t.Fatal(err)
			}
			es, err := f.Entries(0, 100)
			if err != nil || len(es) != len(pubs) {
				t.Fatalf("entries: %d, %v; want %d", len(es), err, len(pubs))
			}
			stamp, verified := imageStamp(t, snapshotImage(t, f))
			if _, err := beforeNested.Check("state.bin", stamp, false); err != nil || verified != nil {
				t.Fatalf("snapshot: %v, %v; want one a binary before format 3 takes", err, verified)
			}
		})
	}
}
