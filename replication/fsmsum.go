package replication

import (
	"errors"

	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/checksum"
	"github.com/watchfed/watchfed/replication/fileversion"
)

// Every value in fsm.db carries a CRC32C (format 2, package checksum),
// checked on every read. A read that meets a damaged value panics with it
// (checksum.MustOpen), which the FSM's entry points turn back into an error
// (checksum.Catch): a bbolt transaction that panics is rolled back, so an
// apply that read damage changes nothing, and no verdict is ever reached
// on damaged bytes (a reader that took a damaged member for a missing one
// would reject what every other FSM accepts). The apply path then rebuilds
// the state from snapshot and log (repairDamageLocked); a read returns the
// error, which names the file, bucket and key.

// formatSums is the first fsm.db format whose values carry checksums.
const formatSums = 2

// formatNested is the first fsm.db format that may keep a command of the
// log in a nested bucket (fsmlog.go).
const formatNested = 3

// val checks a value read from bucket at key k (nil: absent) and returns it bare.
func val(tx *bolt.Tx, bucket, k, framed []byte) []byte {
	return checksum.MustOpen(tx, bucket, k, framed)
}

// get reads key k of bucket, checked (nil if the bucket or key is absent).
func get(tx *bolt.Tx, bucket, k []byte) []byte { return checksum.MustGet(tx, bucket, k) }

// put stores v under key k of b with its checksum.
func put(b *bolt.Bucket, k, v []byte) error { return checksum.Put(b, k, v) }

// forEach calls fn with every key and checked value of bucket.
func forEach(tx *bolt.Tx, bucket []byte, fn func(k, v []byte) error) error {
	b := tx.Bucket(bucket)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error { return fn(k, val(tx, bucket, k, v)) })
}

// view is f.db.View with damage returned as an error, and noted: the next
// apply rebuilds the state before it applies anything (f.mu is held).
func (f *FSM) view(fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if isDamage(err) {
			f.noteDamage(err)
		}
	}()
	defer checksum.Catch(&err)
	return f.db.View(fn)
}

// noteDamage has the next apply rebuild the state.
func (f *FSM) noteDamage(err error) { f.damagedBy.CompareAndSwap(nil, &err) }

// update is db.Update with damage returned as an error (the transaction
// rolled back).
func update(db *bolt.DB, fn func(*bolt.Tx) error) (err error) {
	defer checksum.Catch(&err)
	return db.Update(fn)
}

// upgradeSums frames the values of a format 1 file, in the opening transaction.
func upgradeSums(tx *bolt.Tx) error {
	if err := checksum.Upgrade(tx); err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyFormat, fileversion.Stamp(formatSums))
}

// imageFormat is the format version of a state file or image in tx.
func imageFormat(tx *bolt.Tx) int {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return fileversion.Unversioned
	}
	v, err := fsmFormat.Check("", meta.Get(keyFormat), false)
	if err != nil {
		return 0
	}
	return v
}

// imageGet reads key k of bucket in a state image of any format this
// binary reads: checked if the image carries checksums.
func imageGet(tx *bolt.Tx, bucket, k []byte) ([]byte, error) {
	b := tx.Bucket(bucket)
	if b == nil {
		return nil, nil
	}
	if imageFormat(tx) < formatSums {
		return b.Get(k), nil
	}
	return checksum.Open(tx.DB().Path(), bucket, k, b.Get(k))
}

// checkImageSums reads every value of a state file or image (format 2 and
// later: checking each checksum), for boltcheck.VerifyWith.
func checkImageSums(tx *bolt.Tx) error {
	if imageFormat(tx) >= formatSums {
		return checksum.Verify(tx)
	}
	return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
		return b.ForEach(func(_, _ []byte) error { return nil })
	})
}

// isDamage reports whether err is a checksum mismatch.
func isDamage(err error) bool { return errors.Is(err, checksum.ErrDamaged) }
