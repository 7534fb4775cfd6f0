package replication

import bolt "go.etcd.io/bbolt"

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
const logNestMin = 16 << 10

// putLog stores the command raw at index in the log bucket.
func putLog(tx *bolt.Tx, index uint64, raw []byte) error {
	b, k := tx.Bucket(bucketLog), be64(index)
	if len(raw) < logNestMin {
		return put(b, k, raw)
	}
	nb, err := b.CreateBucketIfNotExists(k)
	if err != nil {
		return err
	}
	return put(nb, k, raw)
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
