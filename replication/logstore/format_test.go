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

// TestFormatVersion: the raft log is opened at every version this binary
// reads (version 1, the bbolt raft.db, by migrating it), and a newer or
// unknown version, in wal/wal-meta.db or in the raft.db marker, is refused
// naming the file, the version found and the versions read.
func TestFormatVersion(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string // stamped; "" leaves the log as written
		stamp   []byte
		wantErr []string
	}{
		{name: "new log"},
		{name: "current version", file: "wal/wal-meta.db", stamp: []byte("2")},
		{name: "newer version", file: "wal/wal-meta.db", stamp: []byte("3"), wantErr: []string{"raft log ", "wal-meta.db: format version 3", "reads version 2", "newer watchfed"}},
		{name: "unknown version", file: "wal/wal-meta.db", stamp: []byte("2.5"), wantErr: []string{"raft log ", `unknown format version "2.5"`}},
		{name: "newer marker", file: "raft.db", stamp: []byte("3"), wantErr: []string{"raft log ", "raft.db: format version 3", "reads version 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.StoreLog(&raft.Log{Index: 5, Term: 1, Type: raft.LogCommand, Data: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tc.file)
			if tc.file != "" {
				stamp(t, path, tc.stamp)
			}
			s, err = Open(dir, Options{})
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
			if stamp, err := s.Get(keyFormat); err != nil || string(stamp) != "2" {
				t.Fatalf("format stamp %q (%v), want \"2\"", stamp, err)
			}
			if last, _ := s.LastIndex(); last != 5 {
				t.Fatalf("last index %d, want the stored 5", last)
			}
		})
	}
}

// stamp writes a format version into the bbolt file at path.
func stamp(t *testing.T, path string, v []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketStable).Put(keyFormat, v) }); err != nil {
		t.Fatal(err)
	}
}
