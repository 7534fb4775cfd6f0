package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/diskfull"
)

// TestDiskFullRefusesWritesServesReadsAndResumes: on a full disk a write
// is refused with ErrDiskFull and changes nothing, reads go on, DiskFull
// names the file, and writes succeed again once space returns, without
// reopening the store.
func TestDiskFullRefusesWritesServesReadsAndResumes(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", 1<<20)); err != nil {
		t.Skipf("a full disk needs a tmpfs, which needs root (CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, 0) })
	path := filepath.Join(dir, "node.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	mustPut(t, s, version("a", 1, t0, "Alpha", pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE))

	ballast := filepath.Join(dir, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); errors.Is(err, syscall.ENOSPC) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	big := strings.Repeat("x", 256<<10) // needs new pages
	_, err = s.Put(ctx, version("b", 1, t0, big, pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE), ev("put"))
	if !errors.Is(err, diskfull.ErrDiskFull) || diskfull.Path(err) != path {
		t.Fatalf("put on a full disk: %v, want ErrDiskFull naming %s", err, path)
	}
	if s.DiskFull() == nil {
		t.Fatal("DiskFull nil after a refused write")
	}
	if _, err := s.Current(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused record readable: %v", err)
	}
	if r, err := s.Current(ctx, "a"); err != nil || r.Subject.Name != "Alpha" {
		t.Fatalf("read on a full disk: %v %v", r, err)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, version("b", 1, t0, big, pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE))
	if err := s.DiskFull(); err != nil {
		t.Fatalf("DiskFull after a write succeeded: %v", err)
	}
	if res, err := s.VerifyAudit(ctx); err != nil || !res.OK {
		t.Fatalf("audit after the outage: %+v %v", res, err)
	}
}
