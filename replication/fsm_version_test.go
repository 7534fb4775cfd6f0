package replication

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/checksum"
	"github.com/watchfed/watchfed/replication/fileversion"
)

// writeStateFile makes a bbolt file holding a meta bucket with the applied
// index 7 (with its checksum from format 2) and, unless stamp is nil, the
// format version stamp.
func writeStateFile(t *testing.T, path string, stamp []byte) {
	t.Helper()
	writeStateFileAt(t, path, stamp, 0)
}

// writeStateFileAt is writeStateFile with the active protocol (0: none
// recorded, protocol 1).
func writeStateFileAt(t *testing.T, path string, stamp []byte, protocol uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		sums := string(stamp) == "2" || string(stamp) == "3"
		values := [][2][]byte{{keyApplied, be64(7)}}
		if protocol > 0 {
			values = append(values, [2][]byte{keyProtocol, be64(protocol)}, [2][]byte{keyProtocolIdx, be64(5)})
		}
		for _, kv := range values {
			v := kv[1]
			if sums {
				v = checksum.Seal(kv[0], v)
			}
			if err := meta.Put(kv[0], v); err != nil {
				return err
			}
		}
		if stamp != nil {
			return meta.Put(keyFormat, stamp)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func storedFormat(t *testing.T, f *FSM) string {
	t.Helper()
	var v []byte
	f.mu.RLock()
	defer f.mu.RUnlock()
	_ = f.db.View(func(tx *bolt.Tx) error { v = bytes.Clone(tx.Bucket(bucketMeta).Get(keyFormat)); return nil })
	return string(v)
}

// TestFSMFormatVersion: fsm.db is opened at every version this binary reads
// (one written before versions existed is version 1; version 1 is upgraded
// to 2, its values given checksums), and a newer or unknown version is
// refused at start, naming the file, the version found and the versions
// read. The version follows the replicated state, not the binary: a new
// file, or one of version 1 or 2, stays at 2 (what a binary before format 3
// reads) unless its state is at protocol ProtocolNestedLog, and a file of
// version 3 goes back to 2 unless it is (TestLayoutUnnested).
func TestFSMFormatVersion(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stamp    []byte // nil: no file (new) or no stamp (old file)
		protocol uint64 // the state's active protocol (0: 1)
		exists   bool
		applied  uint64
		want     string // the stamp after open
		wantErr  []string
	}{
		{name: "new file", applied: 0, want: "2"},
		{name: "version 3", stamp: []byte("3"), protocol: ProtocolNestedLog, exists: true, applied: 7, want: "3"},
		{name: "version 3 before protocol 6, stamped 2", stamp: []byte("3"), protocol: ProtocolAnchors, exists: true, applied: 7, want: "2"},
		{name: "version 3 at protocol 1, stamped 2", stamp: []byte("3"), exists: true, applied: 7, want: "2"},
		{name: "version 2 stays 2", stamp: []byte("2"), protocol: ProtocolAnchors, exists: true, applied: 7, want: "2"},
		{name: "version 2 at protocol 6, stamped 3", stamp: []byte("2"), protocol: ProtocolNestedLog, exists: true, applied: 7, want: "3"},
		{name: "version 1, upgraded to 2", stamp: []byte("1"), exists: true, applied: 7, want: "2"},
		{name: "version 1 at protocol 6, upgraded to 3", stamp: []byte("1"), protocol: ProtocolNestedLog, exists: true, applied: 7, want: "3"},
		{name: "written before versions", exists: true, applied: 7, want: "2"},
		{name: "newer version", stamp: []byte("4"), exists: true, wantErr: []string{"fsm.db ", "fsm.db: format version 4", "reads versions 1, 2, 3"}},
		{name: "unknown version", stamp: []byte("two"), exists: true, wantErr: []string{"fsm.db ", `unknown format version "two"`, "reads versions 1, 2, 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fsm.db")
			if tc.exists {
				writeStateFileAt(t, path, tc.stamp, tc.protocol)
			}
			f, err := OpenFSM(path, nil)
			if tc.wantErr != nil {
				if err == nil {
					f.Close()
					t.Fatal("opened a file of a version this binary does not read")
				}
				if !errors.Is(err, fileversion.ErrUnreadable) {
					t.Fatalf("error %v, want ErrUnreadable", err)
				}
				for _, s := range append(tc.wantErr, path) {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Applied() != tc.applied {
				t.Errorf("applied %d, want %d", f.Applied(), tc.applied)
			}
			if got := storedFormat(t, f); got != tc.want {
				t.Errorf("format stamp %q, want %q", got, tc.want)
			}
			if tc.protocol > 0 {
				if st := f.Protocol(); uint64(st.Active) != tc.protocol {
					t.Errorf("protocol %d after open, want %d", st.Active, tc.protocol)
				}
			}
		})
	}
}

// TestSnapshotFormatVersion: a snapshot (an image of fsm.db) of a version
// this binary does not read is refused before anything is replaced; one of
// version 1, or from before versions existed, is restored and upgraded to
// version 2; the restored file is at 3 where the image's state is at
// protocol 6, else at 2.
func TestSnapshotFormatVersion(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stamp    []byte
		protocol uint64
		want     string
		wantErr  string
	}{
		{name: "version 3", stamp: []byte("3"), protocol: ProtocolNestedLog, want: "3"},
		{name: "version 2", stamp: []byte("2"), protocol: ProtocolAnchors, want: "2"},
		{name: "version 2 at protocol 6", stamp: []byte("2"), protocol: ProtocolNestedLog, want: "3"},
		{name: "version 3 before protocol 6", stamp: []byte("3"), protocol: ProtocolAnchors, want: "2"},
		{name: "version 1", stamp: []byte("1"), want: "2"},
		{name: "written before versions", want: "2"},
		{name: "newer version", stamp: []byte("4"), wantErr: "fsm.db in the snapshot being restored: format version 4; this binary reads versions 1, 2, 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFSM(t, nil)
			image := filepath.Join(t.TempDir(), "image.db")
			writeStateFileAt(t, image, tc.stamp, tc.protocol)
			b, err := os.ReadFile(image)
			if err != nil {
				t.Fatal(err)
			}
			err = f.Restore(io.NopCloser(bytes.NewReader(b)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("restore: %v, want %q", err, tc.wantErr)
				}
				if f.Applied() != 0 {
					t.Fatalf("a refused snapshot replaced the state (applied %d)", f.Applied())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Applied() != 7 || storedFormat(t, f) != tc.want {
				t.Fatalf("restored: applied %d, format %q; want 7, %q", f.Applied(), storedFormat(t, f), tc.want)
			}
		})
	}
}

// TestSnapshotFormatCheckedAtStart: a raft snapshot kept beside fsm.db, of
// a version this binary does not read, stops the node at start naming it
// (raft would otherwise pass over it for an older one); one of a version it
// reads, or from before versions, does not.
func TestSnapshotFormatCheckedAtStart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stamp   []byte
		wantErr string
	}{
		{name: "current version", stamp: []byte("3")},
		{name: "version 2", stamp: []byte("2")},
		{name: "version 1", stamp: []byte("1")},
		{name: "written before versions"},
		{name: "newer version", stamp: []byte("4"), wantErr: "state.bin: format version 4; this binary reads versions 1, 2, 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			snap := filepath.Join(dir, "snapshots", "2-40-1700000000000")
			if err := os.MkdirAll(snap, 0o700); err != nil {
				t.Fatal(err)
			}
			writeStateFile(t, filepath.Join(snap, "state.bin"), tc.stamp)
			f, err := OpenFSM(filepath.Join(dir, "fsm.db"), nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				f.Close()
				return
			}
			if err == nil {
				f.Close()
				t.Fatal("started beside a snapshot this binary does not read")
			}
			if !errors.Is(err, fileversion.ErrUnreadable) || !strings.Contains(err.Error(), "fsm.db in snapshot "+snap) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q, want one naming the snapshot and %q", err, tc.wantErr)
			}
		})
	}
}
