package federation

import (
	"errors"

	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/replication/diskfull"
)

// DiskFull reports whether a write of this node (raft log, replicated
// state, record store) is failing for a full disk, and the file.
func (f *Federation) DiskFull() (bool, string) {
	err := errors.Join(f.rep.DiskFull(), f.store.DiskFull())
	if err == nil {
		return false, ""
	}
	return true, diskfull.Path(err)
}

// Diverged says why shared reads are refused ("" if they are not): the
// replicated state is being rebuilt from snapshot and log (partial until
// done), or it differs from the federation's after a checkpoint and a
// rebuild.
func (f *Federation) Diverged() string {
	if f.rep.Rebuilding() {
		return "the replicated state is being rebuilt from snapshot and log"
	}
	return f.rep.Checkpoints().Diverged
}

// Rebuilding reports whether the replicated state is being rebuilt.
func (f *Federation) Rebuilding() bool { return f.rep.Rebuilding() }

// Checkpoints is what this node's replicated state knows of checkpoints.
func (f *Federation) Checkpoints() replication.CheckpointState { return f.rep.Checkpoints() }
