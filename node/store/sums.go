package store

import (
	"errors"

	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/checksum"
	"github.com/watchfed/watchfed/replication/fileversion"
)

// Every value in node.db carries a CRC32C (format 2, package checksum),
// checked on every read. A read that meets a damaged value panics with it
// (checksum.MustOpen), which the store's entry points (view, update, call) turn
// back into an error naming the file, bucket and key: a write transaction
// that read damage is rolled back, and nothing decoded from damaged bytes
// is served. The store remembers the first damage (Damaged) for /readyz.
// Unlike the replicated state, node.db is the agency's own and has no
// other copy to rebuild from: restore it from a backup.

// formatSums is the first node.db format whose values carry checksums.
const formatSums = 2

// catch, deferred, turns a damage panic (checksum.MustOpen) into *err and
// notes the damage; any other panic goes on.
func (s *Store) catch(err *error) {
	if p := recover(); p != nil {
		*err = checksum.Recovered(p)
		s.noteDamage(*err)
	}
}

// noteDamage keeps the first damage a read met.
func (s *Store) noteDamage(err error) {
	if errors.Is(err, checksum.ErrDamaged) {
		s.damaged.CompareAndSwap(nil, &err)
	}
}

// Damaged is the first damaged value a read of this store met (naming the
// file, bucket and key), nil if none.
func (s *Store) Damaged() error {
	if e := s.damaged.Load(); e != nil {
		return *e
	}
	return nil
}

// view is db.View with damage returned as an error.
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer s.catch(&err)
	return s.db.View(fn)
}

// call runs one writer's function in a shared write transaction, damage
// returned as its error.
func (s *Store) call(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer s.catch(&err)
	return fn(tx)
}

// val checks a value read from bucket at key k (nil: absent) and returns it bare.
func val(tx *bolt.Tx, bucket, k, framed []byte) []byte {
	return checksum.MustOpen(tx, bucket, k, framed)
}

// get reads key k of bucket, checked (nil if absent).
func get(tx *bolt.Tx, bucket, k []byte) []byte { return checksum.MustGet(tx, bucket, k) }

// put stores v under key k of b with its checksum.
func put(b *bolt.Bucket, k, v []byte) error { return checksum.Put(b, k, v) }

// upgradeSums frames the values of a format 1 file, in the opening transaction.
func upgradeSums(tx *bolt.Tx) error {
	if err := checksum.Upgrade(tx); err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyFormat, fileversion.Stamp(formatSums))
}

// verifySums reads every value of the file at open (checking each checksum
// from format 2), for boltcheck.VerifyWith; the first damaged value goes to
// *found, and the walk goes on (pages must all be sound).
func verifySums(path string, found *error) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		var stamp []byte
		if meta := tx.Bucket(bucketMeta); meta != nil {
			stamp = meta.Get(keyFormat)
		}
		v, err := format.Check("", stamp, false)
		sums := err == nil && v >= formatSums
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if !sums || v == nil || checksum.Bare(name, k) || *found != nil {
					return nil
				}
				_, *found = checksum.Open(path, name, k, v)
				return nil
			})
		})
	}
}
