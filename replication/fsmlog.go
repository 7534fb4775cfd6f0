package replication

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/checksum"
	"github.com/watchfed/watchfed/replication/fileversion"
)

// The log bucket (index → command) holds each command of logNestMin bytes
// or more in a bucket of its own, nested under the same key, with the
// command under that key again (format 3). bbolt writes a leaf page whole,
// and keeps at least two and up to four keys in a leaf: stored flat, a
// publication of a bulk import (a MB or more) shared its leaf with the two
// or three before it, and each apply copied, checksummed into page buffers
// and wrote all of them again: 124 MB of page buffers for 20 publications
// of 1.5 MB, and 19 % of the CPU of an import (every member alike). A
// nested bucket's leaf holds its one command; the log bucket's own leaves
// hold the nested buckets' small headers.
//
// What is stored does not change, only where: every read below gives the
// command whichever way it is stored, and the state hashes (contentHash,
// StateHash) hash it as if it were flat, so members whose files are in
// different formats agree.
//
// A binary before format 3 cannot read a nested command, and a raft
// snapshot is a copy of fsm.db: commands are nested only in a file stamped
// 3, which happens when protocol ProtocolNestedLog is activated, once every
// joined member announced it (fsmfile.go). Until then every command is
// stored flat, as format 2 stores it.
const logNestMin = 16 << 10

// ProtocolNestedLog is the protocol version from which fsm.db, and so the
// raft snapshots every member may have to install, may keep a command
// nested (format 3). It changes how the state is stored, not what it is:
// entries apply as under the protocol before.
const ProtocolNestedLog = 6

// putLog stores the command raw at index in the log bucket: nested, framed
// in one of f.frames, if it is large and the file is of format 3.
func (f *FSM) putLog(tx *bolt.Tx, index uint64, raw []byte) error {
	b, k := tx.Bucket(bucketLog), be64(index)
	if len(raw) < logNestMin || imageFormat(tx) < formatNested {
		return put(b, k, raw)
	}
	nb, err := b.CreateBucketIfNotExists(k)
	if err != nil {
		return err
	}
	return nb.Put(k, f.frames.seal(k, raw))
}

// frames are the buffers that large commands are framed in (value and
// checksum, as bbolt stores them) for the transaction being applied, kept
// for the next: a fresh MB buffer a publication, on every member, was
// mostly page faults on this kind of machine (its pages touched for the
// first time), and garbage after the commit. bbolt holds a value put until
// the transaction ends, so a buffer is used once a transaction
// (reset before each) and a transaction that frames more than
// framesKept large commands gets fresh buffers for the rest.
type frames struct {
	bufs [][]byte
	used int
}

const (
	framesKept   = 4
	framesMaxCap = 8 << 20 // larger buffers are not kept
)

// reset makes every kept buffer free again: the transaction that used
// them has ended (committed or rolled back).
func (fr *frames) reset() { fr.used = 0 }

// seal is checksum.Seal(k, v) in a kept buffer, valid until the next reset.
func (fr *frames) seal(k, v []byte) []byte {
	n := len(v) + checksum.Size
	if fr.used >= framesKept || n > framesMaxCap {
		return checksum.Seal(k, v)
	}
	if fr.used == len(fr.bufs) {
		fr.bufs = append(fr.bufs, nil)
	}
	buf := fr.bufs[fr.used]
	if cap(buf) < n {
		buf = make([]byte, 0, min(n+n/4, framesMaxCap))
	}
	buf = checksum.AppendSealed(buf[:0], k, v)
	fr.bufs[fr.used] = buf
	fr.used++
	return buf
}

// stampNested moves the file of tx to format 3, inside the transaction
// that applies the activation of ProtocolNestedLog (or opens a file at that
// protocol): commands stored from then on may be nested.
func stampNested(tx *bolt.Tx) error {
	return tx.Bucket(bucketMeta).Put(keyFormat, fileversion.Stamp(formatNested))
}

// unnestBatchBytes bounds the commands unnestLog moves in one transaction.
const unnestBatchBytes = 64 << 20

// unnestLog stores every nested command of the log bucket flat again, as
// it was (the framed value moves as it is: its checksum covers the key,
// which is the same), and then stamps the file 2. It is for a file stamped
// 3 while its state is before protocol 6: a binary between 0e05785 and
// the rule that the format follows the protocol stamped every file 3 at
// open, and such a file, and its snapshots, would be refused by a member
// on the release before. It moves up to maxBytes of commands a
// transaction, so that a long history does not sit in one transaction's
// memory; a file left between two is still at 3, read as such, and the
// next open goes on.
func unnestLog(db *bolt.DB, maxBytes int) error {
	var from []byte // the first key not yet looked at
	for {
		done := false
		err := update(db, func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketLog)
			var keys [][]byte
			size := 0
			c := b.Cursor()
			k, v := c.First()
			if from != nil {
				k, v = c.Seek(from)
			}
			for ; k != nil && (len(keys) == 0 || size < maxBytes); k, v = c.Next() {
				if v == nil && b.Bucket(k) != nil {
					keys = append(keys, bytes.Clone(k))
					size += len(b.Bucket(k).Get(k))
				}
			}
			if k != nil {
				from = bytes.Clone(k)
			}
			for _, k := range keys {
				// nil (a nested bucket without its command) is put as an
				// empty value: damage, as nestedValue reads it.
				framed := append([]byte{}, b.Bucket(k).Get(k)...)
				if err := b.DeleteBucket(k); err != nil {
					return err
				}
				if err := b.Put(k, framed); err != nil {
					return err
				}
			}
			if k == nil {
				done = true
				return tx.Bucket(bucketMeta).Put(keyFormat, fileversion.Stamp(formatSums))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store the nested commands of the log flat: %w", err)
		}
		if done {
			return nil
		}
	}
}

// getLog is the checked command at log key k (nil if absent).
func getLog(tx *bolt.Tx, k []byte) []byte {
	b := tx.Bucket(bucketLog)
	if b == nil {
		return nil
	}
	return logValue(tx, b, k, b.Get(k))
}

// logValue is the checked command at key k of the log bucket b, given v,
// the value bbolt gave for k (nil for a nested bucket).
func logValue(tx *bolt.Tx, b *bolt.Bucket, k, v []byte) []byte {
	return val(tx, bucketLog, k, nestedValue(b, k, v))
}

// nestedValue is v, or, if k names a bucket nested in b, the framed value
// under k in it: an empty (damaged) value if it has none. Only the log
// bucket nests buckets; in any other, v comes back as it is.
func nestedValue(b *bolt.Bucket, k, v []byte) []byte {
	if v != nil {
		return v
	}
	nb := b.Bucket(k)
	if nb == nil {
		return nil
	}
	if nv := nb.Get(k); nv != nil {
		return nv
	}
	return []byte{} // a nested bucket without its command: damage (checksum.Open)
}

// forEachFramed calls fn with every key of b and its framed value, a
// nested command's as if it were stored flat.
func forEachFramed(b *bolt.Bucket, fn func(k, v []byte) error) error {
	return b.ForEach(func(k, v []byte) error { return fn(k, nestedValue(b, k, v)) })
}
