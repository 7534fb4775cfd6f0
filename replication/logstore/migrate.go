package logstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/boltcheck"
	"github.com/watchfed/watchfed/replication/fileversion"
)

// Releases before raft-wal kept the raft log in raft.db, a bbolt file
// (format version 1): entries in bucket "logs" keyed by big-endian index,
// raft's stable keys and the applied mark in bucket "stable". At start such
// a file is copied into wal/ (entries, then stable keys, each write
// fsynced), a key in wal-meta.db says the copy is whole, and then raft.db
// is moved aside to raft.db.pre-wal and replaced by a marker: a bbolt file
// holding only the version stamp 2, which older binaries refuse naming the
// version instead of starting on an empty log. A start that finds raft.db
// and a wal/ without that key redoes the copy from the start; one that
// finds the key only finishes the move.

const (
	legacyFile = "raft.db"
	asideFile  = "raft.db.pre-wal"
)

var (
	bucketLegacyLogs = []byte("logs")
	keyMigrated      = []byte("watchfed.migrated")
)

// migrate moves a version 1 raft.db in dir into wal/, if there is one.
func (s *Store) migrate(dir string) error {
	legacy := filepath.Join(dir, legacyFile)
	if _, err := os.Stat(legacy); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	old, err := openLegacy(legacy)
	if err != nil || old == nil {
		return err // nil, nil: the marker
	}
	defer old.Close()
	done, err := s.copied()
	if err != nil {
		return err
	}
	n := 0
	if !done {
		if n, err = s.copyLegacy(old, legacy); err != nil {
			return fmt.Errorf("migrate the raft log %s to %s: %w", legacy, s.dir, err)
		}
	}
	old.Close()
	aside := filepath.Join(dir, asideFile)
	if err := os.Rename(legacy, aside); err != nil {
		return fmt.Errorf("migrate the raft log: %w", err)
	}
	if err := markDir(dir); err != nil {
		return err
	}
	if s.log != nil {
		s.log.Warn("migrated the raft log from bbolt to raft-wal: the old file is kept aside; remove it once this node runs well",
			"from", legacy, "to", s.dir, "entries", n, "kept_as", aside)
	}
	return nil
}

// openLegacy opens raft.db read-only if it is a version 1 raft log; nil if
// it is the marker.
func openLegacy(path string) (*bolt.DB, error) {
	if err := boltcheck.Verify(path); err != nil {
		return nil, fmt.Errorf("open raft log: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open raft log %s: in use by another process", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", path, err)
	}
	var stamp []byte
	db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketStable); b != nil {
			stamp = bytes.Clone(b.Get(keyFormat))
		}
		return nil
	})
	switch {
	case bytes.Equal(stamp, fileversion.Stamp(format.Current)):
		db.Close()
		return nil, nil
	case stamp == nil || bytes.Equal(stamp, fileversion.Stamp(1)):
		return db, nil
	}
	db.Close()
	_, err = format.Check(path, stamp, false)
	return nil, err
}

// copied reports whether wal/ holds a whole copy of raft.db; a partial one
// is removed.
func (s *Store) copied() (bool, error) {
	if _, err := os.Stat(filepath.Join(s.dir, metaFile)); errors.Is(err, os.ErrNotExist) {
		return false, os.RemoveAll(s.dir)
	}
	meta, err := openMeta(s.dir)
	if err != nil {
		return false, err
	}
	v, err := meta.GetStable(keyMigrated)
	meta.Close()
	if err != nil || v != nil {
		return v != nil, err
	}
	if s.log != nil {
		s.log.Warn("an earlier migration of the raft log stopped before the end: starting it again", "dir", s.dir)
	}
	return false, os.RemoveAll(s.dir)
}

// copyLegacy copies entries and stable keys into a new wal/ and returns how
// many entries it copied.
func (s *Store) copyLegacy(old *bolt.DB, legacy string) (int, error) {
	if err := s.open(); err != nil {
		return 0, err
	}
	defer s.closeFiles()
	n := 0
	const chunk = 1024
	batch := make([]*raft.Log, 0, chunk)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := s.wal.StoreLogs(batch); err != nil {
			return s.noteFull(err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	err := old.View(func(tx *bolt.Tx) error {
		logs := tx.Bucket(bucketLegacyLogs)
		if logs == nil {
			return nil
		}
		var prev uint64
		c := logs.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			idx := binary.BigEndian.Uint64(k)
			if prev > 0 && idx != prev+1 {
				return fmt.Errorf("%s: entry %d follows %d", legacy, idx, prev)
			}
			prev = idx
			l := &raft.Log{Index: idx}
			if err := decodeLegacy(v, l); err != nil {
				return fmt.Errorf("%w: entry %d in %s: %v", ErrDamaged, idx, legacy, err)
			}
			if batch = append(batch, sealed(l)); len(batch) == chunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		stable := tx.Bucket(bucketStable)
		if stable == nil {
			return nil
		}
		return stable.ForEach(func(k, v []byte) error {
			if bytes.Equal(k, keyFormat) {
				return nil
			}
			return s.noteFull(s.meta.SetStable(bytes.Clone(k), bytes.Clone(v)))
		})
	})
	if err != nil {
		return n, err
	}
	return n, s.noteFull(s.meta.SetStable(keyMigrated, []byte(legacy)))
}

// decodeLegacy reads a version 1 entry: term(8) type(1) appended_at unix
// nanos(8) len(data)(4) data len(ext)(4) ext; the index is the key.
func decodeLegacy(b []byte, l *raft.Log) error {
	bad := errors.New("corrupt raft log entry")
	if len(b) < 21 {
		return bad
	}
	l.Term = binary.BigEndian.Uint64(b)
	l.Type = raft.LogType(b[8])
	if at := int64(binary.BigEndian.Uint64(b[9:])); at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	b = b[17:]
	n := int(binary.BigEndian.Uint32(b))
	b = b[4:]
	if len(b) < n+4 {
		return bad
	}
	l.Data = bytes.Clone(b[:n])
	b = b[n:]
	m := int(binary.BigEndian.Uint32(b))
	b = b[4:]
	if len(b) != m {
		return bad
	}
	if m > 0 {
		l.Extensions = bytes.Clone(b)
	}
	return nil
}

// markDir makes raft.db the marker (a bbolt file holding only the version
// stamp) unless it is one already, so that an older binary started on this
// directory refuses it, naming the version, rather than start on an empty
// log of its own beside the replicated state.
func markDir(dir string) error {
	path := filepath.Join(dir, legacyFile)
	if _, err := os.Stat(path); err == nil {
		return nil // the marker: openLegacy moved any other away
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("mark %s: %w", dir, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketStable)
		if err != nil {
			return err
		}
		return b.Put(keyFormat, fileversion.Stamp(format.Current))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("mark %s for older binaries: %w", dir, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
