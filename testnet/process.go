package testnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Running reports whether the member's process is alive (it may be paused).
func (m *Member) Running() bool {
	if m.process == nil {
		return false
	}
	select {
	case err := <-m.exited:
		m.process = nil
		m.exited <- err // keep it for whoever waits
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL (kill -9) to the member's node and waits for it to die.
func (nt *Net) Kill(m *Member) error {
	if m.process == nil {
		return nil
	}
	_ = m.process.Signal(syscall.SIGCONT) // a paused process dies as well
	if err := m.process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", m.Agency, err)
	}
	<-m.exited
	m.process = nil
	return nil
}

// Restart starts a member's node again on its data (after Kill, or after
// it stopped by itself) and waits until it serves.
func (nt *Net) Restart(ctx context.Context, m *Member) error {
	if m.Running() {
		return nil
	}
	return nt.start(ctx, m, "")
}

// Pause stops the member's process (SIGSTOP): it holds its connections and
// answers nothing, like a machine stalled on its disk.
func (nt *Net) Pause(m *Member) error {
	if m.process == nil {
		return nil
	}
	return m.process.Signal(syscall.SIGSTOP)
}

// Resume continues a paused member (SIGCONT).
func (nt *Net) Resume(m *Member) error {
	if m.process == nil {
		return nil
	}
	if err := m.process.Signal(syscall.SIGCONT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// ballast is the file FillDisk writes.
const ballast = "ballast"

// FillDisk fills the member's tmpfs (Options.DiskBytes) until no byte is
// left: the node's next write fails with ENOSPC.
func (nt *Net) FillDisk(m *Member) error {
	if nt.DiskBytes == 0 {
		return errors.New("FillDisk: the testnet has no per-node disk (Options.DiskBytes)")
	}
	f, err := os.OpenFile(filepath.Join(m.Dir, ballast), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return fmt.Errorf("fill %s: %w", m.Agency, err)
		}
	}
}

// FreeDisk removes what FillDisk wrote.
func (nt *Net) FreeDisk(m *Member) error {
	err := os.Remove(filepath.Join(m.Dir, ballast))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (nt *Net) mountTmpfs(dir string, size int64) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		return fmt.Errorf("a tmpfs for %s needs root (CAP_SYS_ADMIN): %w", dir, err)
	}
	nt.mounts = append(nt.mounts, dir)
	return nil
}

// Close kills every node, stops the proxies and unmounts the tmpfs disks.
func (nt *Net) Close() error {
	var errs []error
	for _, m := range nt.Members {
		errs = append(errs, nt.Kill(m))
	}
	if nt.Links != nil {
		nt.Links.Close()
	}
	for _, d := range nt.mounts {
		// The node's log outlives its tmpfs, next to where it was.
		if data, err := os.ReadFile(filepath.Join(d, "node.log")); err == nil {
			_ = os.WriteFile(d+"-node.log", data, 0o600)
		}
		if err := unix.Unmount(d, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", d, err))
		}
	}
	nt.mounts = nil
	return errors.Join(errs...)
}
