package store

import (
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// groupCommit shares write transactions between concurrent writers without
// a timer: a lone writer commits at once, and the writers that queue while a
// commit (and its fsync) is under way share the next one. bbolt's Batch
// instead waits MaxBatchDelay for company, which a lone writer pays in full.
//
// A lazy call (batchLazy) does not start a commit of its own at once: it
// waits up to lazyDelay for another writer's commit to ride on.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*commitCall
	running bool
	timer   *time.Timer // starts the loop for lazy calls left alone
}

// lazyDelay bounds how long a lazy call waits for company.
const lazyDelay = 20 * time.Millisecond

type commitCall struct {
	fn  func(*bolt.Tx) error
	err chan error
}

// batch runs fn in a write transaction, maybe shared with other writers'.
// As with bbolt's Batch, fn may run more than once (when another writer's
// function fails, the rest run again without it), so it must build its
// results afresh each time.
func (s *Store) batch(fn func(*bolt.Tx) error) error {
	c := &commitCall{fn: fn, err: make(chan error, 1)}
	s.gc.mu.Lock()
	s.gc.queue = append(s.gc.queue, c)
	s.startLocked()
	s.gc.mu.Unlock()
	return <-c.err
}

// batchLazy is batch for a write that may wait: it joins the next commit,
// or commits alone after lazyDelay.
func (s *Store) batchLazy(fn func(*bolt.Tx) error) error {
	c := &commitCall{fn: fn, err: make(chan error, 1)}
	s.gc.mu.Lock()
	s.gc.queue = append(s.gc.queue, c)
	if !s.gc.running && s.gc.timer == nil {
		s.gc.timer = time.AfterFunc(lazyDelay, func() {
			s.gc.mu.Lock()
			s.startLocked()
			s.gc.mu.Unlock()
		})
	}
	s.gc.mu.Unlock()
	return <-c.err
}

// startLocked starts the commit loop if it is not running.
func (s *Store) startLocked() {
	if s.gc.timer != nil {
		s.gc.timer.Stop()
		s.gc.timer = nil
	}
	if !s.gc.running && len(s.gc.queue) > 0 {
		s.gc.running = true
		go s.commitLoop()
	}
}

func (s *Store) commitLoop() {
	for {
		s.gc.mu.Lock()
		calls := s.gc.queue
		s.gc.queue = nil
		if len(calls) == 0 {
			s.gc.running = false
			s.gc.mu.Unlock()
			return
		}
		s.gc.mu.Unlock()
		s.commit(calls)
	}
}

// commit runs the calls in order in one transaction. A call that fails gets
// its error, and the others commit again without it: one writer's bad input
// changes nothing and does not fail the others.
func (s *Store) commit(calls []*commitCall) {
	for len(calls) > 0 {
		failed := -1
		var callErr error
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i, c := range calls {
				if err := s.call(c.fn, tx); err != nil {
					failed, callErr = i, err
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			err = s.noteCommit(err)
			for _, c := range calls {
				c.err <- err // nil, or the commit's own failure for all
			}
			return
		}
		calls[failed].err <- callErr
		calls = append(calls[:failed], calls[failed+1:]...)
	}
}
