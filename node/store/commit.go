package store

import (
	"sync"

	bolt "go.etcd.io/bbolt"
)

// groupCommit shares write transactions between concurrent writers without
// a timer: a lone writer commits at once, and the writers that queue while a
// commit (and its fsync) is under way share the next one. bbolt's Batch
// instead waits MaxBatchDelay for company, which a lone writer pays in full.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*commitCall
	running bool
}

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
	if !s.gc.running {
		s.gc.running = true
		go s.commitLoop()
	}
	s.gc.mu.Unlock()
	return <-c.err
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
				if err := c.fn(tx); err != nil {
					failed, callErr = i, err
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, c := range calls {
				c.err <- err // nil, or the commit's own failure for all
			}
			return
		}
		calls[failed].err <- callErr
		calls = append(calls[:failed], calls[failed+1:]...)
	}
}
