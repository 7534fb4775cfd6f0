package logstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/boltcheck"
	"github.com/watchfed/watchfed/replication/fileversion"
)

// metaDB is the WAL's meta store (which segments exist) and raft's stable
// store (term, vote), in one bbolt file laid out as raft-wal's own
// (metadb.BoltMetaDB: buckets "wal-meta" and "stable"). Ours because the
// store must close it (WAL.Close leaves it open, and a second open in the
// same process then waits forever), must refuse a file held by another
// process within a second rather than hang, and carries the format version.
type metaDB struct {
	path string
	db   *bolt.DB

	mu    sync.Mutex
	state types.PersistentState // as last loaded or committed: names segment files in messages
}

const metaFile = "wal-meta.db"

var (
	bucketMeta   = []byte("wal-meta")
	bucketStable = []byte("stable")
	keyMeta      = []byte("m")
	keyFormat    = []byte("watchfed.format")
)

// openMeta opens or creates the meta file in dir and checks its format.
func openMeta(dir string) (*metaDB, error) {
	path := filepath.Join(dir, metaFile)
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
	var state types.PersistentState
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		stable, err := tx.CreateBucketIfNotExists(bucketStable)
		if err != nil {
			return err
		}
		if _, err := format.CheckBolt(stable, keyFormat, path, fresh); err != nil {
			return err
		}
		if raw := meta.Get(keyMeta); raw != nil {
			if err := json.Unmarshal(raw, &state); err != nil {
				return fmt.Errorf("%s: segment list: %w: %v", path, ErrDamaged, err)
			}
		}
		return nil
	})
	if errors.Is(err, fileversion.ErrUnreadable) || errors.Is(err, ErrDamaged) {
		db.Close()
		return nil, err // names the file already
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init raft log %s: %w", path, err)
	}
	return &metaDB{path: path, db: db, state: state}, nil
}

// Load returns the segment list (types.MetaStore); the file is open already.
func (m *metaDB) Load(string) (types.PersistentState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state, nil
}

// CommitState replaces the segment list, fsynced.
func (m *metaDB) CommitState(state types.PersistentState) error {
	enc, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("encode segment list: %w", err)
	}
	if err := m.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyMeta, enc) }); err != nil {
		return err
	}
	m.mu.Lock()
	m.state = state
	m.mu.Unlock()
	return nil
}

// GetStable returns a stable value, nil if absent.
func (m *metaDB) GetStable(k []byte) ([]byte, error) {
	var out []byte
	err := m.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketStable).Get(k); v != nil {
			out = append([]byte{}, v...)
		}
		return nil
	})
	return out, err
}

// SetStable stores a stable value, fsynced.
func (m *metaDB) SetStable(k, v []byte) error {
	return m.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketStable).Put(k, v) })
}

// Close closes the file.
func (m *metaDB) Close() error { return m.db.Close() }

// segmentFile names the segment file that holds index i, "" if none does.
func (m *metaDB) segmentFile(dir string, i uint64) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *types.SegmentInfo
	for k := range m.state.Segments {
		s := &m.state.Segments[k]
		if s.BaseIndex <= i && (best == nil || s.BaseIndex > best.BaseIndex) {
			best = s
		}
	}
	if best == nil {
		return ""
	}
	return filepath.Join(dir, segment.FileName(*best))
}
