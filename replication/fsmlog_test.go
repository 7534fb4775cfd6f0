package replication

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	"github.com/watchfed/watchfed/replication/checksum"
)

// publicationCommand is an encoded publication command whose body holds n
// envelopes (about 60 bytes each).
func publicationCommand(t *testing.T, n int) []byte {
	t.Helper()
	body := &peerpb.PublicationBody{}
	for i := range n {
		body.Envelopes = append(body.Envelopes, &peerpb.Envelope{Header: &peerpb.EnvelopeHeader{EntryId: fmt.Sprintf("DE-BAFA-%08d", i), Version: 1}})
	}
	b, err := proto.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := proto.Marshal(&peerpb.Command{Command: &peerpb.Command_Publication{Publication: &peerpb.Publication{Origin: "DE-BAFA", Body: b}}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestLogNestedReadsAsFlat: a large command is kept in a bucket nested under
// its key, a small one flat; either way every read gives the command back,
// the state hashes and the checkpoint diff see the state as if every
// command were flat (as a format 2 file holds it), and the checksums of
// nested commands are verified.
func TestLogNestedReadsAsFlat(t *testing.T) {
	small, large := publicationCommand(t, 3), publicationCommand(t, 2000)
	if len(small) >= logNestMin || len(large) < logNestMin {
		t.Fatalf("commands of %d and %d bytes: want one under %d and one over", len(small), len(large), logNestMin)
	}
	cmds := [][]byte{small, large, small, large}
	open := func(nested bool) *FSM {
		f := newTestFSM(t, nil)
		err := update(f.db, func(tx *bolt.Tx) error {
			if nested {
				if err := stampNested(tx); err != nil { // as the activation of ProtocolNestedLog does
					return err
				}
			}
			for i, raw := range cmds {
				idx := uint64(i + 1)
				var err error
				if nested {
					err = f.putLog(tx, idx, raw)
				} else {
					err = put(tx.Bucket(bucketLog), be64(idx), raw) // as format 2 stored every command
				}
				if err != nil {
					return err
				}
			}
			return put(tx.Bucket(bucketMeta), keyApplied, be64(uint64(len(cmds))))
		})
		if err != nil {
			t.Fatal(err)
		}
		f.applied = uint64(len(cmds))
		return f
	}
	flat, nested := open(false), open(true)

	hashes := map[bool][][]byte{}
	for _, f := range []*FSM{flat, nested} {
		isNested := f == nested
		err := f.db.View(func(tx *bolt.Tx) error {
			for i, raw := range cmds {
				k := be64(uint64(i + 1))
				stored := tx.Bucket(bucketLog).Bucket(k) != nil
				if want := isNested && len(raw) >= logNestMin; stored != want {
					t.Errorf("nested %v: command %d (%d bytes) in a nested bucket: %v, want %v", isNested, i+1, len(raw), stored, want)
				}
				if got := getLog(tx, k); !bytes.Equal(got, raw) {
					t.Errorf("nested %v: command %d read back as %d bytes, want %d", isNested, i+1, len(got), len(raw))
				}
			}
			if err := checksum.Verify(tx); err != nil {
				t.Errorf("nested %v: verify: %v", isNested, err)
			}
			sum, err := contentHash(tx)
			hashes[isNested] = append(hashes[isNested], sum)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		_, sum, err := f.StateHash()
		if err != nil {
			t.Fatal(err)
		}
		hashes[isNested] = append(hashes[isNested], sum)
		es, err := f.Entries(0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != len(cmds) {
			t.Fatalf("nested %v: %d entries, want %d", isNested, len(es), len(cmds))
		}
		for i, e := range es {
			if want := map[int]int{0: 3, 1: 2000}[i%2]; e.Index != uint64(i+1) || len(e.Body.GetEnvelopes()) != want {
				t.Errorf("nested %v: entry %d: index %d, %d envelopes; want %d, %d", isNested, i, e.Index, len(e.Body.GetEnvelopes()), i+1, want)
			}
		}
	}
	for i, what := range []string{"checkpoint hash", "state hash"} {
		if !bytes.Equal(hashes[false][i], hashes[true][i]) {
			t.Errorf("%s differs between flat and nested commands", what)
		}
	}
	err := flat.db.View(func(a *bolt.Tx) error {
		return nested.db.View(func(r *bolt.Tx) error {
			if d := diffTx(a, r); len(d) != 0 {
				t.Errorf("the same commands flat and nested differ: %v", d)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}

	// A nested command damaged on disk is found by the checksum, on a read
	// and by a check of the whole file.
	err = nested.db.Update(func(tx *bolt.Tx) error {
		k := be64(2)
		bad := checksum.Seal(k, large)
		bad[100] ^= 1
		return tx.Bucket(bucketLog).Bucket(k).Put(k, bad)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nested.db.View(checksum.Verify); !errors.Is(err, checksum.ErrDamaged) {
		t.Errorf("verify of a damaged nested command: %v, want damage", err)
	}
	if err := nested.view(func(tx *bolt.Tx) error { getLog(tx, be64(2)); return nil }); !errors.Is(err, checksum.ErrDamaged) {
		t.Errorf("read of a damaged nested command: %v, want damage", err)
	}
}

// TestLogNestedWritesOnce: twenty 1.5 MB commands, each applied in a
// transaction of its own, take about their own size in bbolt's page
// buffers. Stored flat, bbolt kept two to four of them in a leaf and wrote
// them all again on each apply (124 MB for 30 MB).
func TestLogNestedWritesOnce(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "fsm.db"), 0o600, &bolt.Options{NoSync: true, InitialMmapSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw := bytes.Repeat([]byte{7}, 1_500_000)
	const n = 20
	f := &FSM{}
	formatNestedFile(t, db)
	for i := range n {
		f.frames.reset()
		err := db.Update(func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucketIfNotExists(bucketLog); err != nil {
				return err
			}
			return f.putLog(tx, uint64(i+1), raw)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	st := db.Stats()
	written, stored := st.TxStats.GetPageAlloc(), int64(n*len(raw))
	if written > stored*5/4 {
		t.Fatalf("%d commands of %d bytes took %d bytes of pages, want at most 1.25 times their %d", n, len(raw), written, stored)
	}
}

// BenchmarkPutLog: one transaction storing a 1.5 MB command in the log
// bucket of a file opened as fsm.db is (no fsync), flat as format 2 stored
// it and as stored now.
func BenchmarkPutLog(b *testing.B) {
	for _, nested := range []bool{false, true} {
		b.Run(map[bool]string{false: "flat", true: "nested"}[nested], func(b *testing.B) {
			db, err := bolt.Open(filepath.Join(b.TempDir(), "fsm.db"), 0o600, &bolt.Options{NoSync: true, NoFreelistSync: true, InitialMmapSize: fsmMmapSize})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			raw := bytes.Repeat([]byte{7}, 1_500_000)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			idx := uint64(0)
			f := &FSM{}
			formatNestedFile(b, db)
			for b.Loop() {
				idx++
				f.frames.reset()
				err := db.Update(func(tx *bolt.Tx) error {
					if _, err := tx.CreateBucketIfNotExists(bucketLog); err != nil {
						return err
					}
					if nested {
						return f.putLog(tx, idx, raw)
					}
					return put(tx.Bucket(bucketLog), be64(idx), raw)
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFramesKept: the buffers large commands are framed in are used once a
// transaction and again in the next; past framesKept in one transaction a
// command gets a fresh one; what was stored reads back whole after the
// buffers were reused.
func TestFramesKept(t *testing.T) {
	f := newTestFSM(t, nil)
	formatNestedFile(t, f.db)
	cmd := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, logNestMin+i) }
	var first [][]byte
	idx := uint64(0)
	for round := range 3 {
		f.frames.reset()
		var used [][]byte
		err := update(f.db, func(tx *bolt.Tx) error {
			for range framesKept + 2 {
				idx++
				if err := f.putLog(tx, idx, cmd(int(idx))); err != nil {
					return err
				}
				nb := tx.Bucket(bucketLog).Bucket(be64(idx))
				used = append(used, nb.Get(be64(idx))) // before the commit: the framed value as put
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(f.frames.bufs) != framesKept {
			t.Fatalf("round %d: %d buffers kept, want %d", round, len(f.frames.bufs), framesKept)
		}
		if round == 0 {
			first = used
			continue
		}
		for i := range used {
			if same, want := &used[i][0] == &first[i][0], i < framesKept; same != want {
				t.Errorf("round %d, command %d: framed in the buffer it had in round 0: %v, want %v", round, i, same, want)
			}
		}
	}
	err := f.db.View(func(tx *bolt.Tx) error {
		for i := uint64(1); i <= idx; i++ {
			if got := getLog(tx, be64(i)); !bytes.Equal(got, cmd(int(i))) {
				t.Errorf("command %d read back as %d bytes, want %d", i, len(got), len(cmd(int(i))))
			}
		}
		return checksum.Verify(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// formatNestedFile gives db the buckets of fsm.db it lacks and stamps it
// format 3, as the activation of ProtocolNestedLog does: putLog nests large
// commands from then on.
func formatNestedFile(t testing.TB, db *bolt.DB) {
	t.Helper()
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketLog} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return stampNested(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
}
