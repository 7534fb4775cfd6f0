package replication

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/boltcheck"
)

// rebuildSource is where a state that disagreed with a checkpoint is rebuilt
// from: this node's raft snapshots and log.
type rebuildSource struct {
	snaps raft.SnapshotStore
	logs  interface {
		GetLog(index uint64, out *raft.Log) error
	}
	// told is told of each disagreement: whether the rebuild repaired it, and why not.
	told func(at uint64, repaired bool, why string)
}

// repairLocked sets the state aside (fsm.db.diverged, kept for inspection),
// rebuilds it from the newest snapshot at or before the checkpoint's index
// and the log, and compares the hash there again. Still different, or not
// rebuildable, the FSM is diverged (CheckpointState.Diverged); it goes on
// applying the log, so a later agreeing checkpoint shows it whole again.
// A rebuild that cannot be made (no snapshot and log reach the index any
// more) puts the set-aside state back: the FSM must stay at the index raft
// handed it, or the entries raft hands next would be applied past a gap.
func (f *FSM) repairLocked(c checkResult) {
	upTo := f.applied
	why, rebuilt := f.rebuildLocked(c.at, c.want, upTo)
	if rebuilt && f.log != nil {
		// What differed, for the log: the set-aside state against the
		// rebuilt one, both at upTo.
		diffs, err := stateDiff(f.path+asideDiverged, f.db)
		f.log.Warn("checkpoint disagreement: the set-aside state against the one rebuilt from snapshot and log",
			"checkpoint_index", c.at, "compared_at", c.index, "own_hash", fmt.Sprintf("%x", c.own), "majority_hash", fmt.Sprintf("%x", c.want),
			"applied", upTo, "differences", diffs, "diff_error", err)
	}
	if why == "" {
		f.ckpt.Diverged = ""
	} else {
		f.ckpt.Diverged = fmt.Sprintf("the replicated state differs from the majority's at checkpoint index %d: %s", c.at, why)
	}
	if f.rebuild != nil && f.rebuild.told != nil {
		f.rebuild.told(c.at, why == "", f.ckpt.Diverged)
	}
}

// asideDiverged is the suffix of a state file set aside at a disagreement.
const asideDiverged = ".diverged"

// rebuildLocked returns "" if the rebuilt state hashes as want at index at,
// and whether the state was rebuilt up to upTo (false: the state it had is
// back in place, or the FSM halted if even that failed).
func (f *FSM) rebuildLocked(at uint64, want []byte, upTo uint64) (string, bool) {
	if f.rebuild == nil {
		return "no snapshot and log to rebuild from", false
	}
	f.repairing = true
	defer func() { f.repairing = false }()
	var sum []byte
	err := f.resetLocked(at, asideDiverged)
	if err == nil {
		err = f.view(func(tx *bolt.Tx) error {
			var err error
			sum, err = contentHash(tx)
			return err
		})
	}
	if err == nil {
		err = f.replayLocked(upTo)
	}
	if err != nil {
		if perr := f.putBackLocked(asideDiverged, upTo); perr != nil {
			f.halt = &Halt{Index: upTo + 1, Reason: fmt.Sprintf("rebuilding the replicated state failed (%v), and putting the set-aside state back failed: %v; restart the node to rebuild it from snapshot and log", err, perr)}
			return fmt.Sprintf("cannot rebuild it (%v) nor put it back (%v)", err, perr), false
		}
		return fmt.Sprintf("cannot rebuild it from snapshot and log (%v); the state is kept as it was", err), false
	}
	if f.noteApplied != nil {
		f.noteApplied(f.applied)
	}
	if !bytes.Equal(sum, want) {
		return fmt.Sprintf("rebuilt from snapshot and log, it hashes %x, the majority's %x", sum, want), true
	}
	return "", true
}

// putBackLocked puts the state file set aside (under its name plus aside)
// back in place of a failed rebuild, at the applied index upTo.
func (f *FSM) putBackLocked(aside string, upTo uint64) error {
	f.abandonSnapshots()
	if f.db != nil {
		_ = f.db.Close() // the failed rebuild's file, or an already closed one
	}
	if err := os.Rename(f.path+aside, f.path); err != nil {
		return fmt.Errorf("put the set-aside state back: %w", err)
	}
	if err := f.open(); err != nil {
		return fmt.Errorf("open the set-aside state: %w", err)
	}
	if f.applied != upTo {
		return fmt.Errorf("the set-aside state is at %d, not %d", f.applied, upTo)
	}
	return nil
}

// resetLocked sets the state file aside (under its name plus aside, kept for
// inspection) and rebuilds it from the newest snapshot at or before index
// and the log up to index.
func (f *FSM) resetLocked(index uint64, aside string) error {
	f.rebuilding.Store(true)
	defer f.rebuilding.Store(false)
	f.abandonSnapshots()
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("close the state: %w", err)
	}
	if err := os.Rename(f.path, f.path+aside); err != nil {
		return fmt.Errorf("set the state aside: %w", err)
	}
	if err := f.placeSnapshot(index); err != nil {
		_ = f.open()
		return err
	}
	if err := f.open(); err != nil {
		return fmt.Errorf("open the rebuilt state: %w", err)
	}
	return f.replayLocked(index)
}

// repairDamageLocked rebuilds a state in which a read met a damaged value
// (cause names it) from snapshot and log, up to the applied mark, before
// the batch that met it is applied again. A state that cannot be rebuilt
// in place halts: nothing more is applied from damaged bytes, status says
// why, and a restart rebuilds it (the damage is found at open).
func (f *FSM) repairDamageLocked(cause error) {
	if f.log != nil {
		f.log.Error("the replicated state is damaged: rebuilding it from snapshot and log", "file", f.path, "err", cause)
	}
	err := errors.New("no snapshot and log to rebuild from")
	if f.rebuild != nil {
		f.repairing = true
		err = f.resetLocked(f.applied, ".damaged")
		f.repairing = false
	}
	if err == nil {
		if f.log != nil {
			f.log.Warn("the replicated state is rebuilt from snapshot and log", "file", f.path, "applied", f.applied, "set_aside", f.path+".damaged")
		}
		if f.noteApplied != nil {
			f.noteApplied(f.applied)
		}
		return
	}
	f.halt = &Halt{Index: f.applied + 1, Reason: fmt.Sprintf("%v; rebuilding it failed: %v; restart the node to rebuild it from snapshot and log", cause, err)}
}

// Rebuilding reports whether the state is being rebuilt from snapshot and
// log: until it is done, what it holds is partial, and its reads wait.
func (f *FSM) Rebuilding() bool { return f.rebuilding.Load() }

// placeSnapshot puts the newest snapshot at or before index in place of
// fsm.db; none leaves no file (the state starts empty).
func (f *FSM) placeSnapshot(index uint64) error {
	metas, err := f.rebuild.snaps.List()
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	for _, m := range metas {
		if m.Index > index {
			continue
		}
		_, rc, err := f.rebuild.snaps.Open(m.ID)
		if err != nil {
			return fmt.Errorf("open snapshot %s: %w", m.ID, err)
		}
		defer rc.Close()
		out, err := os.OpenFile(f.path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, rc)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = boltcheck.VerifyWith(f.path, checkImageSums)
		}
		if err != nil {
			os.Remove(f.path)
			return fmt.Errorf("snapshot %s: %w", m.ID, err)
		}
		return nil
	}
	return nil
}

// replayLocked applies the log from the applied mark up to index.
func (f *FSM) replayLocked(index uint64) error {
	const chunk = 512
	for f.applied < index {
		var batch []*raft.Log
		for i := f.applied + 1; i <= index && len(batch) < chunk; i++ {
			l := new(raft.Log)
			if err := f.rebuild.logs.GetLog(i, l); err != nil {
				if errors.Is(err, raft.ErrLogNotFound) {
					return fmt.Errorf("entry %d is no longer in the log (and no snapshot covers it)", i)
				}
				return fmt.Errorf("read log entry %d: %w", i, err)
			}
			batch = append(batch, l)
		}
		if _, err := f.applyLocked(batch); err != nil {
			return fmt.Errorf("replay up to %d: %w", index, err)
		}
		if f.applied < batch[len(batch)-1].Index {
			return fmt.Errorf("replay stopped at %d", f.applied) // halted
		}
	}
	return nil
}
