// Package logstore is raft's log and stable store on bbolt, in one file.
//
// It replaces raft-boltdb, whose v2 does not build with raft v1.8 (go-metrics
// compat), and it batches: StoreLogs writes a whole AppendEntries batch in one
// fsynced transaction.
//
// It also keeps the applied mark: the state machine's last applied index,
// noted after each apply and written with the next batch. Applied means
// committed, so the mark is a durable lower bound of the commit index, which
// raft itself does not persist: up to it, a restart may replay the log into
// a state machine that lost its unsynced writes.
//
// A follower's log suffix that conflicts with the leader's is cut in the same
// transaction that stores the leader's entries: see DeleteRange.
package logstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/boltcheck"
	"github.com/watchfed/watchfed/replication/fileversion"
)

var (
	bucketLogs   = []byte("logs")
	bucketStable = []byte("stable")
	keyApplied   = []byte("watchfed.applied") // beside raft's own stable keys
	keyFormat    = []byte("watchfed.format")
	// ErrKeyNotFound is what raft expects from a stable store for a missing key.
	ErrKeyNotFound = errors.New("not found")
)

// format is the layout of raft.db: its buckets and how an entry is encoded
// (encode, decode). A change to either gets a new version.
var format = fileversion.Format{Name: "raft log", Current: 1, Reads: []int{1}}

// Store implements raft.LogStore and raft.StableStore.
type Store struct {
	db      *bolt.DB
	applied atomic.Uint64 // noted, maybe not yet written
	// cut: entries from here on are cut with the next StoreLogs; 0 if
	// none. Only raft's main loop cuts and stores; others only read.
	cut atomic.Uint64

	path string
	// full is the last write's full-disk error, nil once a write succeeds;
	// onFull is told of each change (diskfull.go).
	full    atomic.Pointer[error]
	onFull  atomic.Pointer[func(error)]
	closing chan struct{}
	stop    sync.Once
}

// Open opens or creates the file; another process holding it is an error
// within a second, not a hang.
func Open(path string) (*Store, error) {
	if err := boltcheck.Verify(path); err != nil {
		return nil, fmt.Errorf("open raft log: %w", err)
	}
	_, statErr := os.Stat(path)
	fresh := errors.Is(statErr, os.ErrNotExist)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open raft log %s: in use by another process", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketLogs); err != nil {
			return err
		}
		stable, err := tx.CreateBucketIfNotExists(bucketStable)
		if err != nil {
			return err
		}
		_, err = format.CheckBolt(stable, keyFormat, path, fresh)
		return err
	})
	if errors.Is(err, fileversion.ErrUnreadable) {
		db.Close()
		return nil, err // names the file already
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init raft log %s: %w", path, err)
	}
	return &Store{db: db, path: path, closing: make(chan struct{})}, nil
}

// Close writes the applied mark and closes the file.
func (s *Store) Close() error {
	s.Stopping()
	err := s.db.Update(s.writeApplied)
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// NoteApplied records that the state machine applied up to index; the mark
// is written with the next StoreLogs or at Close.
func (s *Store) NoteApplied(index uint64) {
	for {
		cur := s.applied.Load()
		if index <= cur || s.applied.CompareAndSwap(cur, index) {
			return
		}
	}
}

// Applied returns the written applied mark: every index up to it is
// committed. 0 if none was written.
func (s *Store) Applied() (uint64, error) {
	v, err := s.GetUint64(keyApplied)
	if errors.Is(err, ErrKeyNotFound) {
		return 0, nil
	}
	return v, err
}

func (s *Store) writeApplied(tx *bolt.Tx) error {
	b := tx.Bucket(bucketStable)
	a := s.applied.Load()
	if a == 0 {
		return nil
	}
	if old := b.Get(keyApplied); len(old) == 8 && binary.BigEndian.Uint64(old) >= a {
		return nil
	}
	return b.Put(keyApplied, key(a))
}

// FirstIndex returns the first stored index, 0 if none.
func (s *Store) FirstIndex() (uint64, error) {
	first, _, err := s.stored()
	return first, err
}

// LastIndex returns the last stored index, 0 if none.
func (s *Store) LastIndex() (uint64, error) {
	if cut := s.cut.Load(); cut > 0 {
		return cut - 1, nil
	}
	_, last, err := s.stored()
	return last, err
}

// stored returns the first and last index in the file, 0 and 0 if none.
func (s *Store) stored() (first, last uint64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLogs).Cursor()
		if k, _ := c.First(); k != nil {
			first = binary.BigEndian.Uint64(k)
		}
		if k, _ := c.Last(); k != nil {
			last = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return first, last, err
}

// GetLog reads one entry.
func (s *Store) GetLog(index uint64, out *raft.Log) error {
	if cut := s.cut.Load(); cut > 0 && index >= cut {
		return raft.ErrLogNotFound
	}
	return s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLogs).Get(key(index))
		if v == nil {
			return raft.ErrLogNotFound
		}
		out.Index = index
		return decode(v, out)
	})
}

// StoreLog stores one entry.
func (s *Store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores a batch in one transaction, with the cut DeleteRange left
// pending. If it fails, the cut is dropped too: the log is as it was before
// the cut, which is what raft then believes.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	cut := s.cut.Load()
	defer s.cut.Store(0)
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLogs)
		if cut > 0 {
			if err := deleteFrom(b.Cursor(), cut, math.MaxUint64); err != nil {
				return fmt.Errorf("cut log from %d: %w", cut, err)
			}
		}
		for _, l := range logs {
			if err := b.Put(key(l.Index), encode(l)); err != nil {
				return fmt.Errorf("store log %d: %w", l.Index, err)
			}
		}
		return s.writeApplied(tx)
	})
}

// DeleteRange removes entries min..max inclusive.
//
// Raft cuts a follower's conflicting suffix (min past the first entry, max
// the last) only to store the leader's entries at once. That cut is left
// pending and made in StoreLogs' transaction: if the cut were committed
// and the store then failed (a full disk), raft would keep believing its
// old last index, ask for entries that are gone, and refuse every append
// until restarted (hashicorp/raft#163, the TODO in appendEntries). Reads
// see the pending cut.
func (s *Store) DeleteRange(min, max uint64) error {
	first, last, err := s.stored()
	if err != nil {
		return err
	}
	if min > first && max >= last {
		if cut := s.cut.Load(); cut == 0 || min < cut {
			s.cut.Store(min)
		}
		return nil
	}
	return s.update(func(tx *bolt.Tx) error { return deleteFrom(tx.Bucket(bucketLogs).Cursor(), min, max) })
}

func deleteFrom(c *bolt.Cursor, min, max uint64) error {
	for k, _ := c.Seek(key(min)); k != nil && binary.BigEndian.Uint64(k) <= max; k, _ = c.Next() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// Set stores a stable key. On a full disk it waits for space (see
// setRetry): raft panics when it cannot save its term.
func (s *Store) Set(k, v []byte) error {
	return s.retryFull(func() error {
		return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketStable).Put(k, v) })
	})
}

// Get reads a stable key; ErrKeyNotFound if absent.
func (s *Store) Get(k []byte) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketStable).Get(k)
		if v == nil {
			return ErrKeyNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// SetUint64 stores a stable counter.
func (s *Store) SetUint64(k []byte, v uint64) error { return s.Set(k, key(v)) }

// GetUint64 reads a stable counter; ErrKeyNotFound if absent.
func (s *Store) GetUint64(k []byte) (uint64, error) {
	v, err := s.Get(k)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("stable key %q: %d bytes, want 8", k, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func key(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }

// encode: term(8) type(1) appended_at unix nanos(8) len(data)(4) data len(ext)(4) ext.
// The index is the key.
func encode(l *raft.Log) []byte {
	b := make([]byte, 0, 25+len(l.Data)+len(l.Extensions))
	b = binary.BigEndian.AppendUint64(b, l.Term)
	b = append(b, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Extensions)))
	return append(b, l.Extensions...)
}

func decode(b []byte, l *raft.Log) error {
	bad := errors.New("corrupt raft log entry")
	if len(b) < 21 {
		return bad
	}
	l.Term = binary.BigEndian.Uint64(b)
	l.Type = raft.LogType(b[8])
	if at := int64(binary.BigEndian.Uint64(b[9:])); at != 0 {
		l.AppendedAt = time.Unix(0, at)
	} else {
		l.AppendedAt = time.Time{}
	}
	b = b[17:]
	n := int(binary.BigEndian.Uint32(b))
	b = b[4:]
	if len(b) < n+4 {
		return bad
	}
	l.Data = append([]byte(nil), b[:n]...)
	b = b[n:]
	m := int(binary.BigEndian.Uint32(b))
	b = b[4:]
	if len(b) != m {
		return bad
	}
	l.Extensions = nil
	if m > 0 {
		l.Extensions = append([]byte(nil), b...)
	}
	return nil
}
