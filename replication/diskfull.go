package replication

import (
	"errors"
	"log/slog"

	"github.com/watchfed/watchfed/replication/logstore"
)

// watchDiskFull logs, once each, when the raft log or the FSM starts failing
// on a full disk and when it writes again.
func watchDiskFull(log *slog.Logger, fsm *FSM, logs *logstore.Store) {
	if log == nil {
		return
	}
	logs.OnDiskFull(func(err error) {
		if err != nil {
			log.Error("disk full: the raft log refuses new entries until space returns", "error", err)
			return
		}
		log.Warn("disk space returned: the raft log stores entries again")
	})
	fsm.onStall = func(index uint64, err error) {
		if err != nil {
			log.Error("disk full: stopped applying the federation log until space returns; retrying", "index", index, "error", err)
			return
		}
		log.Warn("disk space returned: applying the federation log again", "applied", index)
	}
}

// DiskFull is why this member refuses writes for a full disk (wrapping
// diskfull.ErrDiskFull, naming the file), nil if it does not.
func (r *Replicator) DiskFull() error {
	var fsmErr error
	if d := r.fsm.DiskFull(); d != nil {
		fsmErr = d.Err
	}
	return errors.Join(r.logs.DiskFull(), fsmErr)
}
