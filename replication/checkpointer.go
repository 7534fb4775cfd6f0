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
//
// A take hashes the whole replicated state on every member, inside the
// apply, so its cost grows with the state (0.1-0.2 s of CPU at 100,000
// records) while those rules fix its cadence: under load a catch-up spent a
// third of its CPU on hashes. So the leader also waits at least
// checkpointCostFactor times its own last hash's duration since the last
// take it proposed: hashing then takes at most about 1/checkpointCostFactor
// of a core (5 %). Every member hashes at the take's entry, so spacing takes
// at the leader spaces the hashes everywhere, with no protocol change. The
// duration is wall time: a loaded machine, where a hash takes longer, spaces
// takes further, which is what load calls for. The entry and time rules stay
// the lower bound on spacing.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 5 * time.Second
	checkpointCostFactor      = 20
)

// checkpointPace is the leader's rule for when the next take is due.
type checkpointPace struct {
	every    uint64        // entries applied since the last take
	interval time.Duration // or time since the last take, with any applied
	factor   time.Duration // and in any case factor × the last hash's cost
}

// due reports whether a take is due: active is the index of the last
// non-checkpoint entry applied, since the last take's preceding index,
// elapsed the time since this leader proposed its last take and cost how
// long this member's last take hash took (0 if none).
func (p checkpointPace) due(active, since uint64, elapsed, cost time.Duration) bool {
	switch {
	case active <= since:
		return false // idle: only checkpoint entries applied since the last take
	case elapsed < p.factor*cost:
		return false // the last hash was dear: hashing stays a small share of a core
	}
	return active-since >= p.every || elapsed >= p.interval
}

// checkpointLoop runs on every member and acts while it leads and protocol
// 4 is active (checkpoint.go says what a checkpoint is).
func (r *Replicator) checkpointLoop(every uint64, interval time.Duration) {
	pace := checkpointPace{every: every, interval: interval, factor: checkpointCostFactor}
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
		if !pace.due(r.fsm.activity.Load(), r.fsm.takeAt.Load(), time.Since(last), time.Duration(r.fsm.hashCost.Load())) {
			continue
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
