// Package boltcheck verifies a bbolt file before a node serves from it (the
// replication files, and the node's record store, which may use what
// replication offers: node depends on replication, never the reverse): a
// file whose meta pages or B+tree pages are damaged is refused at start
// with an error that names it, instead of crashing later or serving
// whatever the damaged pages happen to decode to.
package boltcheck

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrCorrupt marks a file that failed the check.
var ErrCorrupt = errors.New("corrupt")

// Verify opens path read-only and reads every bucket, key and value. A
// missing file is fine (it will be created). It takes as long as reading the
// file once.
func Verify(path string) error { return VerifyWith(path, nil) }

// VerifyWith is Verify with check in place of the plain walk: check reads
// what it must (every value, checking each as the file's format says), in
// the same protection against damaged pages. A nil check walks.
func VerifyWith(path string, check func(*bolt.Tx) error) (err error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil // held by another process: the caller's own open says so
	}
	if err != nil {
		return fmt.Errorf("%s is %w: %v; restore it from a backup (watchfed snapshot restore)", path, ErrCorrupt, err)
	}
	defer db.Close()
	// Damaged pages make bbolt panic or fault on an address in its mmap;
	// both must become an error here, in this goroutine.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s is %w: %v; restore it from a backup (watchfed snapshot restore)", path, ErrCorrupt, p)
		}
	}()
	if check == nil {
		check = func(tx *bolt.Tx) error {
			return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walk(b) })
		}
	}
	return db.View(check)
}

func walk(b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				return walk(nb)
			}
		}
		return nil
	})
}
