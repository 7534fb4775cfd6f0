package boltcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// sample makes a bbolt file with a few buckets and enough data for several pages.
func sample(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"a", "b"} {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for i := 0; i < 2000; i++ {
				if err := b.Put(fmt.Appendf(nil, "key-%06d", i), []byte(strings.Repeat("v", 100))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// overwrite puts garbage at off in the file.
func overwrite(t *testing.T, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, n)
	for i := range junk {
		junk[i] = byte(0xA5 ^ i)
	}
	if _, err := f.WriteAt(junk, off); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	page := int64(os.Getpagesize())
	cases := []struct {
		name    string
		damage  func(t *testing.T, path string)
		corrupt bool
	}{
		{"intact", func(*testing.T, string) {}, false},
		{"missing file", func(t *testing.T, p string) { os.Remove(p) }, false},
		{"both meta pages", func(t *testing.T, p string) { overwrite(t, p, 0, int(2*page)) }, true},
		{"truncated", func(t *testing.T, p string) { os.Truncate(p, 3*page) }, true},
		{"tree pages", func(t *testing.T, p string) {
			st, _ := os.Stat(p)
			for off := 4 * page; off < st.Size(); off += 7 * page {
				overwrite(t, p, off, 64) // page headers: ids, flags, counts
			}
		}, true},
		{"garbage file", func(t *testing.T, p string) { os.WriteFile(p, []byte("not a database at all"), 0o600) }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := sample(t)
			tc.damage(t, p)
			err := Verify(p)
			if !tc.corrupt {
				if err != nil {
					t.Fatalf("intact file refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
				t.Fatalf("damage not reported as corrupt with the file name: %v", err)
			}
		})
	}
}
