package fileversion

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestCheck(t *testing.T) {
	f := Format{Name: "thing.db", Current: 2, Reads: []int{1, 2}}
	for _, tc := range []struct {
		name    string
		found   []byte
		fresh   bool
		want    int
		wantErr []string // substrings of the error; nil: no error
	}{
		{"new file", nil, true, 2, nil},
		{"written before versions", nil, false, 1, nil},
		{"current", []byte("2"), false, 2, nil},
		{"older, still read", []byte("1"), false, 1, nil},
		{"newer", []byte("3"), false, 0, []string{"thing.db /d/thing.db", "format version 3", "reads versions 1, 2", "newer watchfed"}},
		{"not a number", []byte("v2"), false, 0, []string{"thing.db /d/thing.db", `unknown format version "v2"`, "reads versions 1, 2"}},
		{"zero", []byte("0"), false, 0, []string{`unknown format version "0"`}},
		{"leading zero", []byte("02"), false, 0, []string{`unknown format version "02"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := f.Check("/d/thing.db", tc.found, tc.fresh)
			if tc.wantErr == nil {
				if err != nil || v != tc.want {
					t.Fatalf("got %d, %v; want %d", v, err, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrUnreadable) {
				t.Fatalf("got %d, %v; want ErrUnreadable", v, err)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

// TestCheckBolt: a file without a stamp gets the version it was read as;
// a stamped file is left as it is.
func TestCheckBolt(t *testing.T) {
	f := Format{Name: "thing.db", Current: 2, Reads: []int{1, 2}}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "x.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check := func(fresh bool) (v int, stamp string, err error) {
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("meta"))
			if err != nil {
				return err
			}
			v, err = f.CheckBolt(b, []byte("format"), "x.db", fresh)
			stamp = string(b.Get([]byte("format")))
			return err
		})
		return v, stamp, err
	}
	if v, stamp, err := check(false); err != nil || v != 1 || stamp != "1" {
		t.Fatalf("unstamped file: %d %q %v; want 1 stamped \"1\"", v, stamp, err)
	}
	if v, stamp, err := check(true); err != nil || v != 1 || stamp != "1" {
		t.Fatalf("stamped file: %d %q %v; want its stamp kept", v, stamp, err)
	}
}
