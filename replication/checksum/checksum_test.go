package checksum

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestOpen(t *testing.T) {
	sealed := Seal([]byte("k1"), []byte("value"))
	flip := func(i int) []byte { b := bytes.Clone(sealed); b[i] ^= 0x01; return b }
	for _, tc := range []struct {
		name   string
		key    []byte
		framed []byte
		want   []byte // nil with damaged false: absent
		damage bool
	}{
		{"intact", []byte("k1"), sealed, []byte("value"), false},
		{"absent", []byte("k1"), nil, nil, false},
		{"empty value", []byte("k1"), Seal([]byte("k1"), nil), []byte{}, false},
		{"value byte flipped", []byte("k1"), flip(0), nil, true},
		{"checksum byte flipped", []byte("k1"), flip(len(sealed) - 1), nil, true},
		{"value under another key", []byte("k2"), sealed, nil, true},
		{"shorter than a checksum", []byte("k1"), []byte{1, 2}, nil, true},
		{"bare value", []byte("k1"), []byte("value"), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Open("/d/x.db", []byte("bkt"), tc.key, tc.framed)
			if tc.damage {
				var d *DamageError
				if !errors.As(err, &d) || !errors.Is(err, ErrDamaged) {
					t.Fatalf("got %q, %v; want damage", v, err)
				}
				for _, s := range []string{"/d/x.db", "bucket bkt", "key " + ShowKey(tc.key), "checksum mismatch"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				return
			}
			if err != nil || !bytes.Equal(v, tc.want) || (tc.want == nil) != (v == nil) {
				t.Fatalf("got %q, %v; want %q", v, err, tc.want)
			}
		})
	}
}

func TestShowKey(t *testing.T) {
	if got := ShowKey([]byte("DE-BAFA/01J")); got != `"DE-BAFA/01J"` {
		t.Errorf("text key shown as %s", got)
	}
	if got := ShowKey([]byte{0, 0, 0, 7}); got != "0x00000007" {
		t.Errorf("binary key shown as %s", got)
	}
	if got := ShowKey(append([]byte("DE-BAFA/01J\x00"), 0, 0, 0, 0, 0, 0, 0, 2)); got != `"DE-BAFA/01J\x00\x00\x00\x00\x00\x00\x00\x00\x02"` {
		t.Errorf("entry key shown as %s", got)
	}
}

// TestUpgradeAndVerify: a file of bare values is framed by Upgrade (the
// format stamp left bare), then verifies; a value damaged afterwards is
// found by Verify, named.
func TestUpgradeAndVerify(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "x.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket([]byte("meta"))
		data, _ := tx.CreateBucket([]byte("data"))
		if err := meta.Put([]byte("format"), []byte("1")); err != nil {
			return err
		}
		for _, k := range []string{"a", "b", "c"} {
			if err := data.Put([]byte(k), []byte("v-"+k)); err != nil {
				return err
			}
		}
		if Verify(tx) == nil {
			t.Error("bare values verified")
		}
		return Upgrade(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := Verify(tx); err != nil {
			t.Fatalf("upgraded file: %v", err)
		}
		if got := tx.Bucket([]byte("meta")).Get([]byte("format")); string(got) != "1" {
			t.Errorf("format stamp framed: %q", got)
		}
		if v, err := Get(tx, []byte("data"), []byte("b")); err != nil || string(v) != "v-b" {
			t.Errorf("get b: %q %v", v, err)
		}
		raw := bytes.Clone(tx.Bucket([]byte("data")).Get([]byte("b")))
		raw[0] ^= 0x80
		return tx.Bucket([]byte("data")).Put([]byte("b"), raw)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(Verify)
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), `bucket data, key "b"`) {
		t.Fatalf("damage after upgrade: %v", err)
	}
}

// TestMustGetCatch: a damaged value read with MustGet inside a bbolt
// transaction comes back from it as the error (Catch); an intact one reads;
// another panic is not swallowed.
func TestMustGetCatch(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "x.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bucket := []byte("b")
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucket)
		if err != nil {
			return err
		}
		if err := Put(b, []byte("good"), []byte("v")); err != nil {
			return err
		}
		return b.Put([]byte("bad"), []byte("no checksum here"))
	}); err != nil {
		t.Fatal(err)
	}
	read := func(k string) (v []byte, err error) {
		defer Catch(&err)
		err = db.View(func(tx *bolt.Tx) error {
			v = bytes.Clone(MustGet(tx, bucket, []byte(k)))
			return nil
		})
		return v, err
	}
	for _, tc := range []struct {
		key    string
		want   string
		damage bool
	}{{"good", "v", false}, {"bad", "", true}, {"absent", "", false}} {
		v, err := read(tc.key)
		if errors.Is(err, ErrDamaged) != tc.damage || string(v) != tc.want {
			t.Errorf("%s: %q, %v", tc.key, v, err)
		}
	}
	defer func() {
		if p := recover(); p != "other" {
			t.Errorf("another panic came out as %v", p)
		}
	}()
	func() {
		var err error
		defer Catch(&err)
		panic("other")
	}()
}

// TestSumFormat pins the checksum to its definition (CRC-32C of the key's
// length as a uvarint, the key, the value): files written before must still
// open. Keys of 127 and 128 bytes take a one- and a two-byte prefix.
func TestSumFormat(t *testing.T) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	for _, tc := range []struct {
		name string
		k, v []byte
	}{
		{"empty", nil, nil},
		{"short", []byte("DE-BAFA/x"), []byte("value")},
		{"127", bytes.Repeat([]byte{'k'}, 127), []byte{0, 1, 2}},
		{"128", bytes.Repeat([]byte{'k'}, 128), []byte{0, 1, 2}},
		{"20000", bytes.Repeat([]byte{0xff}, 20000), bytes.Repeat([]byte{7}, 5000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := crc32.Update(0, tab, binary.AppendUvarint(nil, uint64(len(tc.k))))
			want = crc32.Update(want, tab, tc.k)
			want = crc32.Update(want, tab, tc.v)
			if got := sum(tc.k, tc.v); got != want {
				t.Fatalf("sum = %08x, want %08x", got, want)
			}
		})
	}
}

func BenchmarkSum(b *testing.B) {
	k, v := []byte("entries/DE-BAFA-000123/00000001"), bytes.Repeat([]byte{1}, 64)
	b.ReportAllocs()
	for b.Loop() {
		sum(k, v)
	}
}
