package testnet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

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

// A directory's nodes are found by their command lines in /proc, not by
// their pid files alone: a pid file may be stale (its node died and the pid
// went to another process) or overwritten, and signalling whatever pid a
// file holds could stop an unrelated process.

// NodeProcess is a running node of a testnet directory.
type NodeProcess struct {
	Agency string
	PID    int
}

func (p NodeProcess) String() string { return fmt.Sprintf("%s (pid %d)", p.Agency, p.PID) }

// RunningError refuses to start a directory whose nodes run.
type RunningError struct {
	Dir   string
	Procs []NodeProcess
}

func (e *RunningError) Error() string {
	names := make([]string, len(e.Procs))
	for i, p := range e.Procs {
		names[i] = p.String()
	}
	return fmt.Sprintf("%s: nodes of this testnet already run: %s; stop them with `watchfed testnet down --dir %s`, or restart one with `watchfed testnet restart --dir %s AGENCY`",
		e.Dir, strings.Join(names, ", "), e.Dir, e.Dir)
}

// NotRunning returns a *RunningError if any node of dir runs.
func NotRunning(dir string) error {
	procs, err := Running(dir)
	if err != nil {
		return err
	}
	if len(procs) > 0 {
		return &RunningError{Dir: dir, Procs: procs}
	}
	return nil
}

// Running lists the processes that run a node of dir, that is
// `watchfed node --config DIR/<agency>/node.yaml`, by agency then pid.
func Running(dir string) ([]NodeProcess, error) {
	abs, err := resolvePath(dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []NodeProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if agency, ok := nodeOf(pid, abs); ok {
			out = append(out, NodeProcess{Agency: agency, PID: pid})
		}
	}
	slices.SortFunc(out, func(a, b NodeProcess) int {
		return cmp.Or(strings.Compare(a.Agency, b.Agency), a.PID-b.PID)
	})
	return out, nil
}

// nodeOf says which agency of dir (absolute) process pid runs the node of:
// its program is watchfed, its command `node`, and its --config names
// dir/<agency>/node.yaml (a relative one is taken from the process's
// working directory). A process that has exited, even if not yet reaped,
// has no command line and runs nothing.
func nodeOf(pid int, dir string) (string, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "", false
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	if len(args) < 2 || !strings.HasPrefix(filepath.Base(args[0]), "watchfed") || args[1] != "node" {
		return "", false
	}
	config := ""
	for i := 2; i < len(args); i++ {
		if v, ok := strings.CutPrefix(args[i], "--config="); ok {
			config = v
		} else if args[i] == "--config" && i+1 < len(args) {
			config = args[i+1]
		}
	}
	if config == "" {
		return "", false
	}
	if !filepath.IsAbs(config) {
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err != nil {
			return "", false
		}
		config = filepath.Join(cwd, config)
	}
	if config, err = resolvePath(config); err != nil || filepath.Base(config) != "node.yaml" {
		return "", false
	}
	agencyDir := filepath.Dir(config)
	if filepath.Dir(agencyDir) != dir {
		return "", false
	}
	return filepath.Base(agencyDir), true
}

// resolvePath is path made absolute, with symlinks resolved where it exists.
func resolvePath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real, nil
	}
	return abs, nil
}

// StopReport is what Stop did.
type StopReport struct {
	Stopped []NodeProcess
	// Stale are the pid files that named no running node of the directory,
	// one line each; they were removed and their pids left alone.
	Stale []string
}

// Stop stops every node of dir: SIGTERM, then SIGKILL for one still running
// when ctx ends. Only processes that run a node of dir are signalled,
// whatever the pid files say.
func Stop(ctx context.Context, dir string) (StopReport, error) {
	var rep StopReport
	if _, err := os.Stat(dir); err != nil {
		return rep, err
	}
	procs, err := Running(dir)
	if err != nil {
		return rep, err
	}
	rep.Stale = removeStalePIDFiles(dir, procs)
	abs, err := resolvePath(dir)
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, p := range procs {
		if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
	}
	for _, p := range procs {
		if err := waitGone(ctx, p, abs); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Stopped = append(rep.Stopped, p)
		os.Remove(filepath.Join(dir, p.Agency, "pid"))
	}
	return rep, errors.Join(errs...)
}

// waitGone waits until p no longer runs dir's node, and kills it when ctx ends first.
func waitGone(ctx context.Context, p NodeProcess, dir string) error {
	for {
		if _, ok := nodeOf(p.PID, dir); !ok {
			return nil
		}
		select {
		case <-ctx.Done():
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
			return fmt.Errorf("%s: killed (SIGKILL) after %v", p, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// removeStalePIDFiles removes the pid files of dir's agencies that name no
// running node of theirs, and says why for each.
func removeStalePIDFiles(dir string, running []NodeProcess) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var stale []string
	for _, e := range entries {
		path := filepath.Join(dir, e.Name(), "pid")
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		var why string
		switch {
		case err != nil:
			why = fmt.Sprintf("holds no pid (%q)", tail(string(data), 1))
		case slices.Contains(running, NodeProcess{Agency: e.Name(), PID: pid}):
			continue
		case syscall.Kill(pid, 0) != nil:
			why = fmt.Sprintf("pid %d is not running", pid)
		default:
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			why = fmt.Sprintf("pid %d is not this node (it runs %q), not signalled", pid, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
		os.Remove(path)
		stale = append(stale, fmt.Sprintf("%s: stale pid file %s: %s; removed", e.Name(), path, why))
	}
	return stale
}

// RestartNode stops the node of one agency of a testnet directory if it
// runs, starts it again on its data, detached, and returns once it serves.
// o gives the directory and the binary.
func RestartNode(ctx context.Context, o Options, agency string) (*Member, error) {
	m := &Member{Agency: agency, Dir: filepath.Join(o.Dir, agency)}
	if _, err := os.Stat(m.ConfigPath()); err != nil {
		return nil, fmt.Errorf("%s: no agency %s in this testnet (%w)", o.Dir, agency, err)
	}
	if err := m.prepare(0, nil); err != nil {
		return nil, err
	}
	abs, err := resolvePath(o.Dir)
	if err != nil {
		return nil, err
	}
	procs, err := Running(o.Dir)
	if err != nil {
		return nil, err
	}
	for _, p := range procs {
		if p.Agency != agency {
			continue
		}
		if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return nil, fmt.Errorf("stop %s: %w", p, err)
		}
		if err := waitGone(ctx, p, abs); err != nil {
			return nil, err
		}
	}
	if o.Binary == "" {
		if o.Binary, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	nt := &Net{Options: o}
	return m, nt.start(ctx, m, "")
}
