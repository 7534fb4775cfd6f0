// Package logstore is raft's log and stable store: hashicorp/raft-wal (one
// write and one fsync per append) under a layer that adds what watchfed
// needs of it.
//
//   - Each entry carries a checksum, checked when read: a damaged entry is
//     an error naming the segment file and the entry, never applied
//     (checksum.go).
//   - A full disk is an error saying so; a stable write (term, vote) waits
//     for space instead of failing, since raft panics when it cannot save
//     its term (diskfull.go).
//   - A follower's conflicting suffix is cut only when the leader's entries
//     are stored, and raft's view of the log survives a store that fails
//     after the cut (DeleteRange, StoreLogs).
//   - Entries below FirstIndex are gone to readers, even where raft-wal
//     still holds them (it compacts inside a segment only logically), so a
//     member that lags past the compaction gets a snapshot, as raft means.
//   - The applied mark: the state machine's last applied index, a durable
//     lower bound of the commit index, which raft does not persist. Up to
//     it, a restart replays the log into a state machine that lost its
//     unsynced writes.
//   - The format version, and the move from the bbolt raft.db of earlier
//     releases (migrate.go).
//
// The directory holds wal/ (segment files and wal-meta.db, raft-wal's
// layout) and raft.db, which now only marks the directory for older
// binaries, which refuse it naming the version.
package logstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"

	"github.com/watchfed/watchfed/replication/fileversion"
)

// format is the layout of wal/: raft-wal v0.4.0 segments of entries with
// the checksum trailer, and the stable keys in wal-meta.db. Version 1 was
// the bbolt raft.db (migrate.go).
var format = fileversion.Format{Name: "raft log", Current: 2, Reads: []int{2}}

var (
	keyApplied = []byte("watchfed.applied") // beside raft's own stable keys
	// ErrKeyNotFound is what raft expects from a stable store for a missing key.
	ErrKeyNotFound = errors.New("not found")
)

// SegmentSize is the size of a segment file, preallocated when created: an
// append inside it cannot fail for space. raft-wal's default is 64 MiB.
const SegmentSize = 16 << 20

// Options tune Open; the zero value is fine.
type Options struct {
	Logger      *slog.Logger // the migration's line; nil: none
	SegmentSize int          // 0: SegmentSize
}

// Store implements raft.LogStore, raft.MonotonicLogStore and raft.StableStore.
type Store struct {
	dir     string // wal/
	segSize int
	meta    *metaDB
	log     *slog.Logger

	// wmu serialises writes: raft's main loop stores and cuts, its snapshot
	// loop compacts. mu guards what readers see: the fields below. Writers
	// change them under both, so a writer reads them under wmu alone.
	wmu sync.Mutex
	mu  sync.RWMutex
	wal *wal.WAL // nil when a reopen failed; broken when it must be reopened
	// last is the last index raft believes stored (pending cut aside); 0 if
	// the log is empty.
	last uint64
	// cut: entries from here on are cut with the next StoreLogs; 0 if none.
	cut uint64
	// ghosts are the end of the log as raft believes it (up to last) that
	// the files no longer hold or must not be trusted to: a cut made for an
	// append that then failed. They are written back before the next append
	// unless cut again. Uncommitted by construction (they conflicted with a
	// leader), so a crash that loses them loses nothing committed.
	ghosts []*raft.Log
	broken bool

	applied atomic.Uint64 // noted, maybe not yet written
	written uint64        // the mark last written; under markMu
	markMu  sync.Mutex

	// full is the last write's full-disk error, nil once a write succeeds;
	// onFull is told of each change (diskfull.go).
	full    atomic.Pointer[error]
	onFull  atomic.Pointer[func(error)]
	closing chan struct{}
	stop    sync.Once
	marks   chan struct{} // closed when the mark writer returns
}

// Open opens or creates the raft log in dir (the raft directory): dir/wal/,
// migrated first from dir/raft.db if an earlier release left one. Another
// process holding it is an error within a second, not a hang.
func Open(dir string, o Options) (*Store, error) {
	if o.SegmentSize == 0 {
		o.SegmentSize = SegmentSize
	}
	s := &Store{dir: filepath.Join(dir, "wal"), segSize: o.SegmentSize, log: o.Logger, closing: make(chan struct{}), marks: make(chan struct{})}
	if err := s.migrate(dir); err != nil {
		return nil, err
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	if err := s.verify(); err != nil {
		s.closeFiles()
		return nil, err
	}
	if err := markDir(dir); err != nil {
		s.closeFiles()
		return nil, err
	}
	go s.writeMarks()
	return s, nil
}

// open opens wal/ (creating it) with its meta file.
func (s *Store) open() error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	meta, err := openMeta(s.dir)
	if err != nil {
		return err
	}
	s.meta = meta
	w, err := s.openWAL()
	if err != nil {
		meta.Close()
		return err
	}
	s.wal = w
	s.last, err = w.LastIndex()
	if err != nil {
		s.closeFiles()
		return err
	}
	return nil
}

func (s *Store) openWAL() (*wal.WAL, error) {
	if err := s.sealTail(); err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", s.dir, err)
	}
	w, err := wal.Open(s.dir, wal.WithMetaStore(s.meta), wal.WithSegmentSize(s.segSize), wal.WithSegmentFiler(newFiler(s.dir)),
		wal.WithLogger(hclog.New(&hclog.LoggerOptions{Name: "raft-wal", Level: hclog.Warn, Output: slogWriter{s.log}})))
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", s.dir, s.noteFull(err))
	}
	return w, nil
}

// verify reads every entry once, so that a damaged one stops the start
// naming its file, rather than a replay later.
func (s *Store) verify() error {
	first, err := s.FirstIndex()
	if err != nil {
		return err
	}
	var l raft.Log
	for i := first; first > 0 && i <= s.last; i++ {
		if err := s.GetLog(i, &l); err != nil {
			return fmt.Errorf("check raft log: %w", err)
		}
	}
	return nil
}

func (s *Store) closeFiles() error {
	var err error
	if s.wal != nil {
		err = s.wal.Close()
	}
	if cerr := s.meta.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close writes the applied mark and closes the files.
func (s *Store) Close() error {
	s.Stopping()
	<-s.marks
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err := s.writeMark()
	if cerr := s.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

// IsMonotonic tells raft the log has no gaps: after installing a snapshot
// it empties the log rather than leave entries older than the snapshot.
func (s *Store) IsMonotonic() bool { return true }

// FirstIndex returns the first stored index, 0 if none.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.firstLocked()
}

func (s *Store) firstLocked() (uint64, error) {
	if s.last == 0 {
		return 0, nil
	}
	if s.wal != nil {
		first, err := s.wal.FirstIndex()
		if err != nil || first > 0 {
			return first, err
		}
	}
	if len(s.ghosts) > 0 {
		return s.ghosts[0].Index, nil
	}
	return 0, nil
}

// LastIndex returns the last stored index, 0 if none.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cut > 0 {
		return s.cut - 1, nil
	}
	return s.last, nil
}

// GetLog reads one entry, checked.
func (s *Store) GetLog(index uint64, out *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if index == 0 || index > s.last || (s.cut > 0 && index >= s.cut) {
		return raft.ErrLogNotFound
	}
	if n := len(s.ghosts); n > 0 && index >= s.ghosts[0].Index {
		*out = *s.ghosts[index-s.ghosts[0].Index]
		return nil
	}
	if s.wal == nil {
		return errors.New("raft log: not open (an earlier write failed and reopening it failed)")
	}
	if first, err := s.wal.FirstIndex(); err != nil {
		return err
	} else if index < first {
		return raft.ErrLogNotFound // compacted, even if raft-wal still holds it
	}
	return s.read(s.wal, index, out)
}

// read reads and checks entry index from w.
func (s *Store) read(w *wal.WAL, index uint64, out *raft.Log) (err error) {
	defer func() {
		// raft-wal's decoder slices by lengths read from the file: damage
		// there panics.
		if p := recover(); p != nil {
			err = s.damaged(index, fmt.Errorf("undecodable: %v", p))
		}
	}()
	if err := w.GetLog(index, out); errors.Is(err, raft.ErrLogNotFound) || errors.Is(err, wal.ErrClosed) {
		return err
	} else if err != nil {
		return s.damaged(index, err)
	}
	if out.Index != index {
		return s.damaged(index, fmt.Errorf("holds entry %d", out.Index))
	}
	if err := unseal(out); err != nil {
		return s.damaged(index, err)
	}
	return nil
}

func (s *Store) damaged(index uint64, why error) error {
	file := s.meta.segmentFile(s.dir, index)
	if file == "" {
		file = s.dir
	}
	return fmt.Errorf("%w: entry %d in %s: %v", ErrDamaged, index, file, why)
}

// StoreLog stores one entry.
func (s *Store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores a batch with one append (one fsync), after making the
// pending cut. Whatever fails, the log as raft sees it is either the one
// it asked for or the one before the cut (which raft then still believes):
// never entries gone that raft thinks are there (hashicorp/raft#163).
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	cut := s.cut
	defer func() {
		s.mu.Lock()
		s.cut = 0 // made, or dropped with the failed store
		s.mu.Unlock()
	}()
	// The log raft asks for: what it holds up to from-1, then logs.
	from := logs[0].Index
	if want := s.last + 1; cut > 0 {
		want = cut
		if from != want {
			return fmt.Errorf("store raft log: entry %d after a cut at %d", from, cut)
		}
	} else if s.last > 0 && from != want {
		return fmt.Errorf("store raft log: entry %d after %d", from, s.last)
	}
	if err := s.repair(); err != nil {
		return err
	}
	// keep: the files must hold entries up to keep and no more before the
	// append (raft's view, minus ghosts, minus what is cut).
	keep := min(from-1, s.last)
	if len(s.ghosts) > 0 {
		keep = min(keep, s.ghosts[0].Index-1)
	}
	if err := s.truncate(keep); err != nil {
		return err
	}
	batch := make([]*raft.Log, 0, len(logs)+len(s.ghosts))
	for _, g := range s.ghosts {
		if g.Index > keep && g.Index < from {
			batch = append(batch, sealed(g))
		}
	}
	for _, l := range logs {
		batch = append(batch, sealed(l))
	}
	if err := s.wal.StoreLogs(batch); err != nil {
		s.broken = true
		return fmt.Errorf("store raft log entries %d-%d: %w", logs[0].Index, logs[len(logs)-1].Index, s.noteFull(err))
	}
	s.noteFull(nil)
	s.mu.Lock()
	s.ghosts, s.last = nil, logs[len(logs)-1].Index
	s.mu.Unlock()
	return nil
}

// truncate makes the files hold no entry past keep, first keeping what
// raft believes past keep as ghosts.
func (s *Store) truncate(keep uint64) error {
	onDisk, err := s.wal.LastIndex()
	if err != nil {
		return err
	}
	if onDisk <= keep {
		return nil
	}
	// Entries keep+1.. that raft believes in and only the files hold.
	upTo := s.last
	if len(s.ghosts) > 0 {
		upTo = s.ghosts[0].Index - 1
	}
	var saved []*raft.Log
	for i := keep + 1; i <= min(upTo, onDisk); i++ {
		l := new(raft.Log)
		if err := s.read(s.wal, i, l); err != nil {
			return fmt.Errorf("read raft log entry %d before cutting it: %w", i, err)
		}
		saved = append(saved, l)
	}
	if len(saved) > 0 {
		s.mu.Lock()
		s.ghosts = append(saved, s.ghosts...)
		s.mu.Unlock()
	}
	if err := s.wal.DeleteRange(keep+1, onDisk); err != nil {
		s.broken = true
		return fmt.Errorf("cut raft log from %d: %w", keep+1, s.noteFull(err))
	}
	return nil
}

// repair reopens the WAL after a failed write: raft-wal's writer state is
// not reset by a failed append (it would refuse every later one), and a
// failed cut or rotation may have changed the files but not its memory.
func (s *Store) repair() error {
	if !s.broken && s.wal != nil {
		return nil
	}
	// Opened before the old one is closed: readers go on reading from the
	// old one (the files it reads stay) until the new one is in place.
	w, err := s.openWAL()
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.wal
	s.wal, s.broken = w, false
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// DeleteRange removes entries min..max inclusive.
//
// Raft cuts a follower's conflicting suffix (min past the first entry, max
// the last) only to store the leader's entries at once. That cut is left
// pending and made by StoreLogs: if the cut were made and the store then
// failed (a full disk), raft would keep believing its old last index, ask
// for entries that are gone, and refuse every append until restarted
// (hashicorp/raft#163, the TODO in appendEntries). Reads see the pending cut.
func (s *Store) DeleteRange(min, max uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	first, err := s.FirstIndex()
	if err != nil {
		return err
	}
	last := s.last
	if s.cut > 0 {
		last = s.cut - 1
	}
	switch {
	case min > max || last == 0 || max < first || min > last:
		return nil
	case min > first && max >= last:
		s.mu.Lock()
		s.cut = min
		s.mu.Unlock()
		return nil
	case min > first:
		return fmt.Errorf("raft log: cannot delete %d-%d from the middle of %d-%d", min, max, first, last)
	}
	// From the head: compaction, or all of it after a snapshot install.
	if err := s.repair(); err != nil {
		return err
	}
	s.mu.Lock()
	if max >= last {
		s.ghosts, s.cut, s.last = nil, 0, 0
	}
	for len(s.ghosts) > 0 && s.ghosts[0].Index <= max {
		s.ghosts = s.ghosts[1:]
	}
	s.mu.Unlock()
	if err := s.wal.DeleteRange(min, max); err != nil {
		s.broken = true
		return fmt.Errorf("delete raft log %d-%d: %w", min, max, s.noteFull(err))
	}
	return nil
}

// Set stores a stable key. On a full disk it waits for space (see
// setRetry): raft panics when it cannot save its term.
func (s *Store) Set(k, v []byte) error {
	return s.retryFull(func() error { return s.noteFull(s.meta.SetStable(k, v)) })
}

// Get reads a stable key; ErrKeyNotFound if absent.
func (s *Store) Get(k []byte) ([]byte, error) {
	v, err := s.meta.GetStable(k)
	if err == nil && v == nil {
		return nil, ErrKeyNotFound
	}
	return v, err
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

// NoteApplied records that the state machine applied up to index; the mark
// is written within a second (markEvery) and at Close.
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

// markEvery is how often a changed applied mark is written. Before, it went
// with each batch of entries in the same bbolt transaction; an append is
// now one write to a segment file, and a stable write costs a bbolt commit
// of its own, so it is written on its own, seldom. The mark is a lower
// bound: an older one only means more of the log is replayed after raft
// hears the leader, rather than before.
const markEvery = time.Second

func (s *Store) writeMarks() {
	defer close(s.marks)
	t := time.NewTicker(markEvery)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			s.writeMark() // a full disk: next time
		}
	}
}

func (s *Store) writeMark() error {
	s.markMu.Lock()
	defer s.markMu.Unlock()
	a := s.applied.Load()
	if a <= s.written {
		return nil
	}
	if old, err := s.Applied(); err == nil && old >= a {
		s.written = old
		return nil
	}
	if err := s.meta.SetStable(keyApplied, key(a)); err != nil {
		return err
	}
	s.written = a
	return nil
}

// slogWriter sends raft-wal's hclog lines to the node's logger.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	if w.l != nil {
		w.l.Warn(strings.TrimRight(string(p), "\r\n"), "component", "raft-wal")
	}
	return len(p), nil
}
