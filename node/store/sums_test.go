package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/checksum"
)

// TestDamagedValue: a value of node.db damaged on disk (a byte flipped,
// its checksum left as it was) does not stop the store from opening, but
// every read that meets it is refused with an error naming the file, the
// bucket and the key; reads of other values go on; Damaged reports it; a
// write that would read it changes nothing; audit verify names the event;
// and a backup refuses to carry it away.
func TestDamagedValue(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		bucket []byte
		key    []byte
		read   func(s *Store) error
	}{
		{"record version", bucketVersions, versionKey("DEV/a", 1), func(s *Store) error { _, err := s.Current(ctx, "DEV/a"); return err }},
		{"current pointer", bucketCurrent, []byte("DEV/a"), func(s *Store) error { _, _, err := s.List(ctx, ListOptions{}); return err }},
		{"audit event", bucketAudit, be64(1), func(s *Store) error { _, err := s.ListAudit(ctx, 0, 10); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, path := open(t)
			mustPut(t, s, version("DEV/a", 1, t0, "Alpha", 1))
			mustPut(t, s, version("DEV/b", 1, t0, "Beta", 1))
			s.Close()
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(tc.bucket)
				v := bytes.Clone(b.Get(tc.key))
				v[0] ^= 0x04
				return b.Put(tc.key, v)
			})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			s, err = Open(path, Options{})
			if err != nil {
				t.Fatalf("a damaged value stopped the store from opening: %v", err)
			}
			defer s.Close()
			want := (&checksum.DamageError{File: path, Bucket: string(tc.bucket), Key: tc.key}).Error()
			if d := s.Damaged(); d == nil || d.Error() != want {
				t.Fatalf("damaged: %v, want %q", d, want)
			}
			if err := tc.read(s); !errors.Is(err, checksum.ErrDamaged) || err.Error() != want {
				t.Fatalf("read of the damaged value: %v, want %q", err, want)
			}
			if r, err := s.Current(ctx, "DEV/b"); err != nil || r.Subject.Name != "Beta" {
				t.Fatalf("read of an intact record: %v %v", r, err)
			}
			if _, err := s.Backup(&bytes.Buffer{}); !errors.Is(err, checksum.ErrDamaged) {
				t.Fatalf("backup of a damaged store: %v", err)
			}
			if bytes.Equal(tc.bucket, bucketAudit) {
				res, err := s.VerifyAudit(ctx)
				if err != nil || res.OK || res.FirstBrokenSeq != 1 || !strings.Contains(res.Reason, want) {
					t.Fatalf("audit verify over a damaged event: %+v %v", res, err)
				}
				return
			}
			_, err = s.Put(ctx, version("DEV/a", 2, t0, "Alpha 2", 1), ev("put"))
			if !errors.Is(err, checksum.ErrDamaged) {
				t.Fatalf("a write over a damaged record: %v", err)
			}
		})
	}
}
