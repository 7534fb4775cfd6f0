package federation

import (
	"errors"

	"github.com/watchfed/watchfed/internal/diskfull"
)

// diskFull reports whether a write of this node (raft log, replicated
// state, record store) is failing for a full disk, and the file.
func (f *Federation) diskFull() (bool, string) {
	err := errors.Join(f.rep.DiskFull(), f.store.DiskFull())
	if err == nil {
		return false, ""
	}
	return true, diskfull.Path(err)
}
