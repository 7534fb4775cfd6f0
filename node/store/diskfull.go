package store

import (
	"github.com/watchfed/watchfed/replication/diskfull"
)

// A full disk under node.db (ENOSPC, EDQUOT) is an outage, not a crash: the
// commit fails whole (bbolt writes the meta page last), every writer of it
// gets an error wrapping diskfull.ErrDiskFull, reads go on, and the next
// commit once space returns succeeds. The first failure and the first
// success after it are logged, not every write.

// noteCommit records whether a commit failed for a full disk, and returns
// its error wrapped to say so.
func (s *Store) noteCommit(err error) error {
	switch {
	case err == nil:
		if s.full.Swap(nil) != nil {
			s.log.Warn("disk space returned: the record store writes again", "file", s.path)
		}
	case diskfull.Is(err):
		err = diskfull.Wrap(s.path, err)
		if s.full.Swap(&err) == nil {
			s.log.Error("disk full: the record store refuses writes until space returns; reads go on", "file", s.path, "err", err)
		}
	}
	return err
}

// DiskFull is the error of the last commit if it failed for a full disk,
// nil once one succeeds.
func (s *Store) DiskFull() error {
	if err := s.full.Load(); err != nil {
		return *err
	}
	return nil
}
