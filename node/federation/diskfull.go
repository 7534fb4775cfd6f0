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

// Diverged says why the replicated state differs from the federation's
// after a checkpoint and a rebuild ("" if it does not).
func (f *Federation) Diverged() string { return f.rep.Checkpoints().Diverged }

// Checkpoints is what this node's replicated state knows of checkpoints.
func (f *Federation) Checkpoints() replication.CheckpointState { return f.rep.Checkpoints() }
