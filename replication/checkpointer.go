package replication

import (
	"context"
	"log/slog"
	"time"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
)

// Checkpoint spacing: the leader commits a take once CheckpointEvery
// entries were applied since the last, or once CheckpointInterval passed
// with any applied; none while the log is idle (checkpoint entries are not
// activity). The voters' nodes report (node/federation).
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
		active, since := r.fsm.activity.Load(), r.fsm.takeAt.Load()
		if active <= since || (active-since < every && time.Since(last) < interval) {
			continue // idle (only checkpoint entries applied since the last take), or not yet due
		}
		last = time.Now()
		if err := r.checkpoint(); err != nil && r.log != nil {
			r.log.Warn("checkpoint not committed", "error", err)
		}
	}
}

// checkpoint commits a take; the voters report their hashes taken there.
func (r *Replicator) checkpoint() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := r.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_Checkpoint{Checkpoint: &peerpb.Checkpoint{}}})
	return err
}

// CheckpointReport is the report agency's node should sign and commit now
// (FSM.CheckpointReport), or nil.
func (r *Replicator) CheckpointReport(agency string) *peerpb.Checkpoint {
	return r.fsm.CheckpointReport(agency)
}

// tellCheckpoint logs a disagreement and how the rebuild went.
func tellCheckpoint(log *slog.Logger) func(at uint64, repaired bool, why string) {
	return func(at uint64, repaired bool, why string) {
		if log == nil {
			return
		}
		if repaired {
			log.Warn("the replicated state disagreed with the majority's at a checkpoint; rebuilt from snapshot and log, it agrees", "checkpoint_index", at)
			return
		}
		log.Error("the replicated state is diverged from the federation's: shared reads refused", "checkpoint_index", at, "why", why)
	}
}

// Checkpoints is this member's checkpoint state.
func (r *Replicator) Checkpoints() CheckpointState { return r.fsm.Checkpoints() }

// Rebuilding reports whether the replicated state is being rebuilt.
func (r *Replicator) Rebuilding() bool { return r.fsm.Rebuilding() }
