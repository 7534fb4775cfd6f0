package replication

import (
	"context"
	"log/slog"
	"time"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
)

// Checkpoint spacing: the leader commits a checkpoint once CheckpointEvery
// entries were applied since the last, or once CheckpointInterval passed
// with any applied; none while the log is idle.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 5 * time.Second
)

// checkpointLoop runs on every member and acts while it leads and protocol
// 4 is active (checkpoint.go says what a checkpoint is).
func (r *Replicator) checkpointLoop(every uint64, interval time.Duration) {
	last := time.Now()
	tick := time.NewTicker(interval / 4)
	defer tick.Stop()
	for {
		changed := r.fsm.Changed()
		select {
		case <-r.stop:
			return
		case <-tick.C:
		case <-changed:
		}
		if !r.IsLeader() || r.fsm.Protocol().Active < ProtocolCheckpoints {
			continue
		}
		applied, since := r.fsm.Applied(), r.fsm.Checkpoints().LastIndex
		if applied <= since+1 || (applied-since < every && time.Since(last) < interval) {
			continue // idle (only the last compare applied since), or not yet due
		}
		last = time.Now()
		if err := r.checkpoint(); err != nil && r.log != nil {
			r.log.Warn("checkpoint not committed", "error", err)
		}
	}
}

// checkpoint commits a take, then the leader's hash taken there.
func (r *Replicator) checkpoint() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idx, err := r.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_Checkpoint{Checkpoint: &peerpb.Checkpoint{}}})
	if err != nil {
		return err
	}
	at, sum := r.fsm.Taken()
	if at != idx-1 {
		return nil // another take came after it; its compare follows
	}
	_, err = r.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_Checkpoint{Checkpoint: &peerpb.Checkpoint{Index: at, StateHash: sum}}})
	return err
}

// tellCheckpoint logs a disagreement and how the rebuild went.
func tellCheckpoint(log *slog.Logger) func(at uint64, repaired bool, why string) {
	return func(at uint64, repaired bool, why string) {
		if log == nil {
			return
		}
		if repaired {
			log.Warn("the replicated state disagreed with a checkpoint; rebuilt from snapshot and log, it agrees", "checkpoint_index", at)
			return
		}
		log.Error("the replicated state is diverged from the federation's: shared reads refused", "checkpoint_index", at, "why", why)
	}
}

// Checkpoints is this member's checkpoint state.
func (r *Replicator) Checkpoints() CheckpointState { return r.fsm.Checkpoints() }

// Rebuilding reports whether the replicated state is being rebuilt.
func (r *Replicator) Rebuilding() bool { return r.fsm.Rebuilding() }
