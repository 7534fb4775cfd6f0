package logstore

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/fileversion"
)

// TestFormatVersion: raft.db is opened at every version this binary reads
// (one written before versions existed is version 1, and stamped), and a
// newer or unknown version is refused, naming the file, the version found
// and the versions read.
func TestFormatVersion(t *testing.T) {
	for _, tc := range []struct {
		name    string
		exists  bool
		stamp   []byte
		wantErr []string
	}{
		{name: "new file"},
		{name: "current version", exists: true, stamp: []byte("1")},
		{name: "written before versions", exists: true},
		{name: "newer version", exists: true, stamp: []byte("2"), wantErr: []string{"raft log ", "raft.db: format version 2", "reads version 1"}},
		{name: "unknown version", exists: true, stamp: []byte("1.5"), wantErr: []string{"raft log ", `unknown format version "1.5"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "raft.db")
			if tc.exists { // a log holding entry 5, as an older binary left it
				s, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.StoreLog(&raft.Log{Index: 5, Term: 1, Type: raft.LogCommand, Data: []byte("x")}); err != nil {
					t.Fatal(err)
				}
				if err := s.db.Update(func(tx *bolt.Tx) error {
					b := tx.Bucket(bucketStable)
					if tc.stamp == nil {
						return b.Delete(keyFormat)
					}
					return b.Put(keyFormat, tc.stamp)
				}); err != nil {
					t.Fatal(err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Open(path)
			if tc.wantErr != nil {
				if err == nil {
					s.Close()
					t.Fatal("opened a raft log of a version this binary does not read")
				}
				if !errors.Is(err, fileversion.ErrUnreadable) {
					t.Fatalf("error %v, want ErrUnreadable", err)
				}
				for _, sub := range append(tc.wantErr, path) {
					if !strings.Contains(err.Error(), sub) {
						t.Errorf("error %q lacks %q", err, sub)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if stamp, err := s.Get(keyFormat); err != nil || string(stamp) != "1" {
				t.Fatalf("format stamp %q (%v), want \"1\"", stamp, err)
			}
			if last, _ := s.LastIndex(); tc.exists && last != 5 {
				t.Fatalf("last index %d, want the stored 5", last)
			}
		})
	}
}
