package replication

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/diskfull"
)

// smallDisk mounts a tmpfs of size bytes on a new directory, or skips.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("a full disk needs a tmpfs, which needs root (CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, 0) })
	return dir
}

// fill writes ballast until the disk has no byte left.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); errors.Is(err, syscall.ENOSPC) {
			return path
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

// TestFSMDiskFullStallsAndResumes: an apply that meets a full disk neither
// panics nor advances the applied mark; the FSM refuses snapshots and
// further entries with ErrDiskFull, and applies them all by itself once
// space returns.
func TestFSMDiskFullStallsAndResumes(t *testing.T) {
	dir := smallDisk(t, 1<<20)
	f := openTestFSM(t, filepath.Join(dir, "fsm.db"), nil)
	t.Cleanup(func() { f.Close() })
	invite := func(index uint64, agency string) *raft.Log {
		// A large CA certificate: the write needs new pages of the file.
		data, err := proto.Marshal(&peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{
			Change: &peerpb.MemberChange_Invite{Invite: &pb.Member{Agency: agency, Address: agency + ":1", CaCert: make([]byte, 64<<10)}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		return &raft.Log{Index: index, Type: raft.LogCommand, Data: data}
	}
	if res := f.Apply(invite(1, "a")).(ApplyResult); res.Err != nil {
		t.Fatal(res.Err)
	}
	ballast := fill(t, dir)

	res := f.ApplyBatch([]*raft.Log{invite(2, "b"), invite(3, "c")})
	for _, r := range res {
		if err := r.(ApplyResult).Err; !errors.Is(err, diskfull.ErrDiskFull) {
			t.Fatalf("apply on a full disk: %v, want ErrDiskFull", err)
		}
	}
	if got := f.Applied(); got != 1 {
		t.Fatalf("applied %d on a full disk, want 1", got)
	}
	if d := f.DiskFull(); d == nil || d.Index != 2 {
		t.Fatalf("DiskFull = %+v, want stalled at entry 2", d)
	}
	if _, err := f.Snapshot(); err == nil {
		t.Fatal("snapshot taken while stalled")
	}
	if r := f.Apply(invite(4, "d")).(ApplyResult); !errors.Is(r.Err, diskfull.ErrDiskFull) {
		t.Fatalf("entry 4 while stalled: %v", r.Err)
	}
	if _, err := f.Member("b"); err == nil {
		t.Fatal("a refused entry is in the state")
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.DiskFull() != nil || f.Applied() != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("not resumed after space returned: applied %d, %+v", f.Applied(), f.DiskFull())
		}
		select {
		case <-f.Changed():
		case <-time.After(time.Second):
		}
	}
	for _, a := range []string{"a", "b", "c", "d"} {
		if _, err := f.Member(a); err != nil {
			t.Fatalf("after resuming: %v", err)
		}
	}
}
