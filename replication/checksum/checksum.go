// Package checksum owns the CRC32C (Castagnoli) that every value stored in
// a node's bbolt files (the replicated state fsm.db, the record store
// node.db) carries, checked on every read, and the error that names a
// damaged value's file, bucket and key. bbolt checks its meta pages only: a
// flipped byte in a data page would otherwise be read back as if written.
//
// A value is stored as the value followed by the big-endian CRC32C of its
// key and value, so a value that moved to another key fails as well. The
// format stamp (meta/format) stays bare: it is read before the reader knows
// whether values are framed.
package checksum

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// Size is the number of bytes the checksum adds to a value.
const Size = 4

var table = crc32.MakeTable(crc32.Castagnoli)

// ErrDamaged marks a value whose checksum does not match (DamageError is one).
var ErrDamaged = errors.New("checksum mismatch")

// DamageError names a damaged value: the file, the bucket and the key.
type DamageError struct {
	File, Bucket string
	Key          []byte
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("%s: bucket %s, key %s: %v (the value was damaged on disk)", e.File, e.Bucket, ShowKey(e.Key), ErrDamaged)
}

// Is makes errors.Is(err, ErrDamaged) hold.
func (e *DamageError) Is(target error) bool { return target == ErrDamaged }

// ShowKey prints a key readably: quoted (with escapes) if it is mostly
// printable text, such as an entry id and its version, hex if not.
func ShowKey(k []byte) string {
	printable := 0
	for _, c := range k {
		if c >= 0x20 && c < 0x7f {
			printable++
		}
	}
	if utf8.Valid(k) && printable*2 >= len(k) && len(k) > 0 {
		return strconv.Quote(string(k))
	}
	return fmt.Sprintf("0x%x", k)
}

func sum(k, v []byte) uint32 {
	// The key's length prefix (a uvarint) goes through the table a byte at a
	// time, as crc32.Update would: a slice holding it escapes (Update calls
	// through a function value), an allocation on every value read or written.
	crc := ^uint32(0)
	n := uint64(len(k))
	for ; n >= 0x80; n >>= 7 {
		crc = table[byte(crc)^(byte(n)|0x80)] ^ crc>>8
	}
	crc = table[byte(crc)^byte(n)] ^ crc>>8
	c := crc32.Update(^crc, table, k)
	return crc32.Update(c, table, v)
}

// Seal returns v framed with its checksum under key k.
func Seal(k, v []byte) []byte { return AppendSealed(make([]byte, 0, len(v)+Size), k, v) }

// AppendSealed appends v framed under key k to dst: Seal into a buffer the
// caller keeps.
func AppendSealed(dst, k, v []byte) []byte {
	dst = append(dst, v...)
	return binary.BigEndian.AppendUint32(dst, sum(k, v))
}

// Open returns the value inside framed, stored under key k of bucket in
// file: a sub-slice of framed (valid as long as framed is), or a
// *DamageError. A nil framed (no such key) is nil, nil.
func Open(file string, bucket, k, framed []byte) ([]byte, error) {
	if framed == nil {
		return nil, nil
	}
	if len(framed) < Size {
		return nil, &DamageError{File: file, Bucket: string(bucket), Key: bytes.Clone(k)}
	}
	v := framed[:len(framed)-Size]
	if binary.BigEndian.Uint32(framed[len(v):]) != sum(k, v) {
		return nil, &DamageError{File: file, Bucket: string(bucket), Key: bytes.Clone(k)}
	}
	return v, nil
}

// Bare reports whether key k of bucket is stored without a checksum: the
// format stamp, meta/format.
func Bare(bucket, k []byte) bool {
	return string(bucket) == "meta" && string(k) == "format"
}

// A reader deep inside a bbolt transaction that meets a damaged value
// panics with it (MustOpen, MustGet) rather than return an error through
// every caller, and the transaction's entry point turns the panic back into
// the error (Catch, Recovered): bbolt rolls back a transaction that panics,
// so nothing is written or decided on damaged bytes.

// damagePanic carries a damaged value's error up to Catch or Recovered.
type damagePanic struct{ err error }

// MustOpen is Open that panics on damage, for Catch or Recovered to turn
// back into the error.
func MustOpen(tx *bolt.Tx, bucket, k, framed []byte) []byte {
	v, err := Open(tx.DB().Path(), bucket, k, framed)
	if err != nil {
		panic(damagePanic{err})
	}
	return v
}

// MustGet is Get that panics on damage, as MustOpen.
func MustGet(tx *bolt.Tx, bucket, k []byte) []byte {
	b := tx.Bucket(bucket)
	if b == nil {
		return nil
	}
	return MustOpen(tx, bucket, k, b.Get(k))
}

// Catch, deferred, turns a damage panic into *err; any other panic goes on.
func Catch(err *error) {
	if p := recover(); p != nil {
		*err = Recovered(p)
	}
}

// Recovered is the damage a recovered panic p carried; any other panic
// goes on.
func Recovered(p any) error {
	d, ok := p.(damagePanic)
	if !ok {
		panic(p)
	}
	return d.err
}

// Get reads key k of bucket in tx, checked: nil if the bucket or key is absent.
func Get(tx *bolt.Tx, bucket, k []byte) ([]byte, error) {
	b := tx.Bucket(bucket)
	if b == nil {
		return nil, nil
	}
	return Open(tx.DB().Path(), bucket, k, b.Get(k))
}

// Put stores v framed under key k of b.
func Put(b *bolt.Bucket, k, v []byte) error { return b.Put(k, Seal(k, v)) }

// Verify checks every value of every bucket in tx, returning the first
// damage. A value in a nested bucket (fsm.db keeps a large command in one
// of its own) is framed with its key in that bucket and named by the
// top-level bucket's name.
func Verify(tx *bolt.Tx) error {
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return verifyBucket(tx, name, b) })
}

func verifyBucket(tx *bolt.Tx, name []byte, b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				return verifyBucket(tx, name, nb)
			}
			return nil
		}
		if Bare(name, k) {
			return nil
		}
		_, err := Open(tx.DB().Path(), name, k, v)
		return err
	})
}

// Upgrade frames every bare value of every top-level bucket in tx (a file
// written before checksums), in the caller's write transaction.
func Upgrade(tx *bolt.Tx) error {
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		type kv struct{ k, v []byte }
		var all []kv
		err := b.ForEach(func(k, v []byte) error {
			if v != nil && !Bare(name, k) {
				all = append(all, kv{bytes.Clone(k), bytes.Clone(v)})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range all {
			if err := Put(b, e.k, e.v); err != nil {
				return fmt.Errorf("upgrade %s: bucket %s: %w", tx.DB().Path(), name, err)
			}
		}
		return nil
	})
}
