package store

import (
	"context"
	"errors"
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
	due     time.Time   // when timer fires

	// settled is the id of the last write transaction whose commit returned,
	// its fsyncs done. bbolt lets a read see a commit once its meta page is
	// written, before that page's fsync: a reader that must see only what
	// survives a power cut (the outbox, read to publish) waits for it.
	settled   uint64
	settledCh chan struct{} // closed and replaced when settled advances
}

// lazyDelay bounds how long a lazy call waits for company.
const lazyDelay = 20 * time.Millisecond

// takeInDelay bounds how long a small take-in waits for company: a partner
// under a stream of entries from others commits their take-in five times
// less often than at lazyDelay, and those commits' two fdatasyncs each
// leave more room for its raft log's fsync, which is on every commit's
// path while it is in the quorum.
const takeInDelay = 100 * time.Millisecond

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
// or commits alone after delay (or sooner, with a lazy call that waits
// less).
func (s *Store) batchLazy(fn func(*bolt.Tx) error, delay time.Duration) error {
	c := &commitCall{fn: fn, err: make(chan error, 1)}
	s.gc.mu.Lock()
	s.gc.queue = append(s.gc.queue, c)
	if due := time.Now().Add(delay); !s.gc.running && (s.gc.timer == nil || due.Before(s.gc.due)) {
		if s.gc.timer != nil {
			s.gc.timer.Stop()
		}
		s.gc.due = due
		s.gc.timer = time.AfterFunc(delay, func() {
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
		var txid uint64
		err := s.db.Update(func(tx *bolt.Tx) error {
			txid = uint64(tx.ID())
			for i, c := range calls {
				if err := s.call(c.fn, tx); err != nil {
					failed, callErr = i, err
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			if err == nil {
				s.settle(txid)
			}
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

// updateSettled is db.Update, noting the commit as settled once it returned.
func (s *Store) updateSettled(fn func(*bolt.Tx) error) error {
	var txid uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		txid = uint64(tx.ID())
		return fn(tx)
	})
	if err == nil {
		s.settle(txid)
	}
	return err
}

// settle notes that write transaction txid is committed and fsynced.
func (s *Store) settle(txid uint64) {
	s.gc.mu.Lock()
	defer s.gc.mu.Unlock()
	if txid <= s.gc.settled {
		return
	}
	s.gc.settled = txid
	if s.gc.settledCh != nil {
		close(s.gc.settledCh)
		s.gc.settledCh = nil
	}
}

// viewSettled is a read transaction that sees only settled commits: begun
// while a commit's last fsync is under way, it waits for that commit to
// return and reads again. (A commit that failed after its meta page was
// written is, to bbolt, committed in memory; reads wait for the next commit
// that settles.)
func (s *Store) viewSettled(ctx context.Context, fn func(*bolt.Tx) error) error {
	for {
		var seen uint64
		err := s.view(func(tx *bolt.Tx) error {
			seen = uint64(tx.ID())
			if seen > s.settledID() {
				return errUnsettled
			}
			return fn(tx)
		})
		if err != errUnsettled {
			return err
		}
		if err := s.waitSettled(ctx, seen); err != nil {
			return err
		}
	}
}

var errUnsettled = errors.New("read began before the last commit settled")

func (s *Store) settledID() uint64 {
	s.gc.mu.Lock()
	defer s.gc.mu.Unlock()
	return s.gc.settled
}

// waitSettled waits until write transaction txid (or a later one) settled.
func (s *Store) waitSettled(ctx context.Context, txid uint64) error {
	for {
		s.gc.mu.Lock()
		if s.gc.settled >= txid {
			s.gc.mu.Unlock()
			return nil
		}
		if s.gc.settledCh == nil {
			s.gc.settledCh = make(chan struct{})
		}
		ch := s.gc.settledCh
		s.gc.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
