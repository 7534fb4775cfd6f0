package replication

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// snapshotReserve is the free space a snapshot install must leave on the
// raft directory's file system, for the raft log and the stores to go on.
const snapshotReserve = 64 << 20

// SnapshotRoom returns the check a transport makes before it reads an
// incoming snapshot (transport.Config.AcceptSnapshot): the raft directory
// dir must hold the snapshot file and the state restored from it (about
// as large again) with snapshotReserve to spare. A leader, which may be a
// hostile partner's node, declares the size; without the check it could
// fill this node's disk, and every store on it, by declaring a huge one.
// A refused snapshot leaves this node behind (an outage the operator sees
// as lag and in the log) rather than out of space.
func SnapshotRoom(dir string) func(size int64) error {
	return func(size int64) error {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return fmt.Errorf("free space of %s: %w", dir, err)
		}
		free := st.Bavail * uint64(st.Bsize)
		need := 2*uint64(size) + snapshotReserve
		if size < 0 || need < uint64(size) || need > free {
			return fmt.Errorf("%s has %d bytes free; a snapshot of %d bytes needs %d (the snapshot, the state restored from it and %d to spare)", dir, free, size, need, snapshotReserve)
		}
		return nil
	}
}
