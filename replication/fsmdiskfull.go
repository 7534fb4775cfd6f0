package replication

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/watchfed/watchfed/replication/diskfull"
)

// A full disk under fsm.db (ENOSPC, EDQUOT) is an outage, not a crash. An
// apply that fails on it changes nothing (the transaction is dropped whole
// and the applied mark stays), and the FSM stalls in the shape of a halt:
// it keeps the entries raft handed it and applies none after them, refuses
// snapshots (raft would compact the log past what is not applied), and
// retries them every stallRetry and with each new batch, resuming by itself
// once the write succeeds. raft counts the entries as applied; the FSM
// holds them in memory meanwhile. They are bounded by the raft log: it sits
// on the same disk, so its store refuses new entries as well.

// stallRetry is how often a stalled FSM tries its entries again.
const stallRetry = time.Second

// stall is where the FSM stopped applying on a full disk.
type stall struct {
	index   uint64 // the first entry not applied
	err     error  // wraps diskfull.ErrDiskFull, names the file
	since   time.Time
	pending []*raft.Log // handed by raft, not applied, in log order
}

// DiskFull is where and since when a stalled FSM stopped applying.
type DiskFull struct {
	Index uint64
	Err   error
	Since time.Time
}

// stallLocked records a failed apply of batch. Any failure but a full disk
// would leave this node unable to hold what the federation committed, and
// stops the process rather than have it acknowledge state it does not hold.
func (f *FSM) stallLocked(batch []*raft.Log, err error) {
	if !diskfull.Is(err) {
		panic(fmt.Sprintf("fsm apply: %v", err))
	}
	if f.stall != nil {
		f.stall.pending = batch
		return
	}
	first := f.applied + 1
	for _, l := range batch {
		if l.Index > f.applied {
			first = l.Index
			break
		}
	}
	f.stall = &stall{index: first, err: diskfull.Wrap(f.path, err), since: time.Now(), pending: batch}
	if f.onStall != nil {
		f.onStall(first, f.stall.err)
	}
	go f.retryStalled()
}

// refusals are the results of a batch kept while stalled.
func (s *stall) refusals(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = ApplyResult{Index: l.Index, Err: fmt.Errorf("entry %d not applied yet: %w", l.Index, s.err)}
	}
	return out
}

// retryStalled applies the kept entries every stallRetry until it succeeds
// (or a batch from raft did) or the FSM closes.
func (f *FSM) retryStalled() {
	t := time.NewTicker(stallRetry)
	defer t.Stop()
	for {
		select {
		case <-f.closing:
			return
		case <-t.C:
		}
		if f.retryOnce() {
			return
		}
	}
}

// retryOnce tries the kept entries; it reports whether the FSM is no longer stalled.
func (f *FSM) retryOnce() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stall == nil {
		return true
	}
	wasHalted := f.halt
	if _, err := f.applyLocked(f.stall.pending); err != nil {
		f.stallLocked(f.stall.pending, err)
		return false
	}
	f.resumedLocked()
	f.appliedLocked(wasHalted)
	return true
}

// resumedLocked ends a stall once its entries are applied.
func (f *FSM) resumedLocked() {
	if f.stall == nil {
		return
	}
	f.stall = nil
	if f.onStall != nil {
		f.onStall(f.applied, nil)
	}
}

// DiskFull reports the stall, nil if the FSM is not stalled.
func (f *FSM) DiskFull() *DiskFull {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.stall == nil {
		return nil
	}
	return &DiskFull{Index: f.stall.index, Err: f.stall.err, Since: f.stall.since}
}
