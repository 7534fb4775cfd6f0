package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/fileversion"
)

// TestFormatVersion: node.db is opened at every version this binary reads
// (one written before versions existed is version 1; an older version is
// upgraded to the current one, its values given checksums), and a
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
		{name: "current version", exists: true, stamp: []byte("2")},
		{name: "version 1", exists: true, stamp: []byte("1")},
		{name: "written before versions", exists: true},
		{name: "newer version", exists: true, stamp: []byte("3"), wantErr: []string{"node.db: format version 3", "reads versions 1, 2"}},
		{name: "unknown version", exists: true, stamp: []byte("x"), wantErr: []string{`unknown format version "x"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "node.db")
			if tc.exists {
				db, err := bolt.Open(path, 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				err = db.Update(func(tx *bolt.Tx) error {
					meta, err := tx.CreateBucket(bucketMeta)
					if err != nil || tc.stamp == nil {
						return err
					}
					return meta.Put(keyFormat, tc.stamp)
				})
				db.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			s, err := Open(path, Options{})
			if tc.wantErr != nil {
				if err == nil {
					s.Close()
					t.Fatal("opened a node.db of a version this binary does not read")
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
			var stamp string
			_ = s.db.View(func(tx *bolt.Tx) error { stamp = string(tx.Bucket(bucketMeta).Get(keyFormat)); return nil })
			s.Close()
			if stamp != "2" {
				t.Fatalf("format stamp %q, want \"2\"", stamp)
			}
		})
	}
}
