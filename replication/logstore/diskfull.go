package logstore

import (
	"time"

	"github.com/watchfed/watchfed/replication/diskfull"
)

// A full disk under the raft log is an outage, not a crash. hashicorp/raft
// handles a failed StoreLogs: a follower answers the AppendEntries with
// failure and the leader sends the entries again after a backoff; a leader
// fails the waiting applies and steps down (raft.go, dispatchLogs and
// appendEntries). So StoreLogs returns the error, wrapping
// diskfull.ErrDiskFull. raft panics when it cannot save its term or vote
// (setCurrentTerm), so Set waits for space instead, until the store closes.

// setRetry is how often Set tries a stable write again on a full disk.
const setRetry = 500 * time.Millisecond

// noteFull wraps a full-disk error naming the log's directory and notes
// whether the disk is full (err nil: a write succeeded). It returns err.
func (s *Store) noteFull(err error) error {
	switch {
	case err == nil:
		if s.full.Swap(nil) != nil {
			s.tell(nil)
		}
	case diskfull.Is(err):
		err = diskfull.Wrap(s.dir, err)
		if s.full.Swap(&err) == nil {
			s.tell(err)
		}
	}
	return err
}

func (s *Store) tell(err error) {
	if fn := s.onFull.Load(); fn != nil {
		(*fn)(err)
	}
}

// retryFull runs write until it does not fail on a full disk or the store closes.
func (s *Store) retryFull(write func() error) error {
	for {
		err := write()
		if !diskfull.Is(err) {
			return err
		}
		select {
		case <-s.closing:
			return err
		case <-time.After(setRetry):
		}
	}
}

// DiskFull is the error of the last write if it failed on a full disk, nil
// once a write succeeds.
func (s *Store) DiskFull() error {
	if err := s.full.Load(); err != nil {
		return *err
	}
	return nil
}

// OnDiskFull sets what is told when writes start failing on a full disk
// (the error) and when one succeeds again (nil).
func (s *Store) OnDiskFull(fn func(error)) { s.onFull.Store(&fn) }

// Stopping ends Set's waits for space: the node is shutting down.
func (s *Store) Stopping() { s.stop.Do(func() { close(s.closing) }) }
