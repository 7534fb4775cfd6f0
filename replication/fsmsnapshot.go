package replication

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/boltcheck"
	"github.com/watchfed/watchfed/replication/checksum"
	"github.com/watchfed/watchfed/replication/diskfull"
)

// Snapshots of the FSM for raft: a read transaction's copy of the bbolt
// file, and Restore, which replaces the file with one.

// Snapshot implements raft.FSM: a consistent copy of the bbolt file.
// Refused while halted: raft would then compact the log up to its own
// applied index, past the entries this FSM has not applied.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	if f.halt != nil {
		f.mu.RUnlock()
		return nil, fmt.Errorf("no snapshot while halted at entry %d: %w", f.halt.Index, f.halt)
	}
	if f.stall != nil {
		f.mu.RUnlock()
		return nil, fmt.Errorf("no snapshot while stalled at entry %d: %w", f.stall.index, f.stall.err)
	}
	tx, err := f.db.Begin(false)
	f.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	s := &fsmSnapshot{tx: tx, fsm: f}
	f.snapMu.Lock()
	if f.snaps == nil {
		f.snaps = map[*fsmSnapshot]bool{}
	}
	f.snaps[s] = true
	f.snapMu.Unlock()
	return s, nil
}

// fsmSnapshot holds a read transaction until it is persisted or released.
type fsmSnapshot struct {
	fsm        *FSM
	mu         sync.Mutex
	tx         *bolt.Tx
	persisting bool
	released   bool
}

// Persist writes the copy and ends the read transaction at once: raft's
// RecoverCluster never calls Release, and an open transaction would block
// closing the file.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	s.mu.Lock()
	if s.released {
		s.mu.Unlock()
		sink.Cancel()
		return errors.New("persist fsm snapshot: abandoned, the state was restored from another snapshot")
	}
	s.persisting = true
	s.mu.Unlock()
	// A snapshot is checked whole before it is written: it is what a
	// partner installs, and what this node rebuilds from.
	err := checksum.Verify(s.tx)
	if err == nil {
		if s.fsm.log != nil {
			s.fsm.log.Info("raft snapshot of the replicated state", "id", sink.ID(), "applied", u64(get(s.tx, bucketMeta, keyApplied)))
		}
		_, err = s.tx.WriteTo(sink)
	} else {
		s.fsm.noteDamage(err)
	}
	s.Release()
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("persist fsm snapshot: %w", err)
	}
	return sink.Close()
}

// Release ends the read transaction; a second call is harmless.
func (s *fsmSnapshot) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return
	}
	_ = s.tx.Rollback()
	s.released = true
	s.fsm.snapMu.Lock()
	delete(s.fsm.snaps, s)
	s.fsm.snapMu.Unlock()
}

// abandonSnapshots releases the snapshots taken and not being persisted,
// before Restore closes the file. raft may hold one while its snapshot
// goroutine waits for the main loop, which waits for this Restore: closing
// the file under an open transaction would wait forever.
func (f *FSM) abandonSnapshots() {
	f.snapMu.Lock()
	var open []*fsmSnapshot
	for s := range f.snaps {
		open = append(open, s)
	}
	f.snapMu.Unlock()
	for _, s := range open {
		s.mu.Lock()
		if !s.persisting && !s.released { // one being written ends on its own
			_ = s.tx.Rollback()
			s.released = true
		}
		s.mu.Unlock()
	}
	f.snapMu.Lock()
	for s := range f.snaps {
		if s.released {
			delete(f.snaps, s)
		}
	}
	f.snapMu.Unlock()
}

// Restore implements raft.FSM: the snapshot replaces the bbolt file whole.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp := f.path + ".restore"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		os.Remove(tmp) // give back the space a full disk lacks
		return fmt.Errorf("restore fsm: %w", diskfull.Wrap(tmp, err))
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(tmp)
		return diskfull.Wrap(tmp, err)
	}
	out.Close()
	// Check the snapshot opens as a bbolt file, of a format this binary
	// reads, before replacing anything.
	if err := boltcheck.VerifyWith(tmp, checkImageSums); err != nil {
		return fmt.Errorf("restore fsm: snapshot is not a valid state file: %w", err)
	}
	if err := checkImage(tmp, "in the snapshot being restored"); err != nil {
		return fmt.Errorf("restore fsm: %w", err)
	}
	if err := f.checkImageProtocol(tmp); err != nil {
		return fmt.Errorf("restore fsm: %w", err)
	}
	f.abandonSnapshots()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.db.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(f.path)); err != nil {
		return err
	}
	if err := f.open(); err != nil {
		return err
	}
	if f.log != nil {
		f.log.Info("replicated state restored from a raft snapshot", "applied", f.applied)
	}
	if f.noteApplied != nil {
		f.noteApplied(f.applied)
	}
	close(f.changed)
	f.changed = make(chan struct{})
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
