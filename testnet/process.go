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

// Stop stops the member's node as an operator would (SIGTERM) and waits for
// it to exit; one still running after timeout is killed.
func (nt *Net) Stop(m *Member, timeout time.Duration) error {
	if m.process == nil {
		return nil
	}
	if err := m.process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", m.Agency, err)
	}
	select {
	case <-m.exited:
		m.process = nil
		return nil
	case <-time.After(timeout):
		return nt.Kill(m)
	}
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

// ballast is the file FillDisk and FillRaftLogDisk write.
const ballast = "ballast"

// FillDisk fills the member's tmpfs (Options.DiskBytes: its record stores,
// and its raft log unless that has a disk of its own) until no byte is
// left: the node's next write there fails with ENOSPC.
func (nt *Net) FillDisk(m *Member) error {
	if nt.DiskBytes == 0 {
		return errors.New("FillDisk: the testnet has no per-node disk (Options.DiskBytes)")
	}
	return fill(m.Dir)
}

// FillDiskLeaving fills the member's tmpfs as FillDisk does, then gives
// back free bytes of it: the disk is nearly full, yet a node can still
// start on it and write a little.
func (nt *Net) FillDiskLeaving(m *Member, free int64) error {
	if err := nt.FillDisk(m); err != nil {
		return err
	}
	path := filepath.Join(m.Dir, ballast)
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.Truncate(path, max(0, fi.Size()-free))
}

// FillRaftLogDisk fills the member's raft log disk (Options.RaftLogBytes).
func (nt *Net) FillRaftLogDisk(m *Member) error {
	if m.RaftLogDir == "" {
		return errors.New("FillRaftLogDisk: the testnet has no raft log disk (Options.RaftLogBytes)")
	}
	return fill(m.RaftLogDir)
}

func fill(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, ballast), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
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
			return fmt.Errorf("fill %s: %w", dir, err)
		}
	}
}

// FreeDisk removes what FillDisk and FillRaftLogDisk wrote.
func (nt *Net) FreeDisk(m *Member) error {
	var errs []error
	for _, dir := range []string{m.Dir, m.RaftLogDir} {
		if dir == "" {
			continue
		}
		if err := os.Remove(filepath.Join(dir, ballast)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
	// Inner mounts first (a raft log disk inside the node's disk). The
	// node's log lies outside them (Member.LogFile) and outlives them.
	for _, d := range slices.Backward(nt.mounts) {
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
	// start is the process's start time, which tells it from a later
	// process given the same pid.
	start uint64
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
		agency, ok := nodeOf(pid, abs)
		if !ok {
			continue
		}
		if _, start, err := procStat(pid); err == nil {
			out = append(out, NodeProcess{Agency: agency, PID: pid, start: start})
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
	// Stopped have exited; Killed are those of them that had to be killed
	// (SIGKILL) after StopGrace.
	Stopped, Killed []NodeProcess
	// Stale are the pid files that named no running node of the directory,
	// one line each; they were removed and their pids left alone.
	Stale []string
}

// StopGrace is how long a node has after SIGTERM to shut down cleanly
// before it is killed.
const StopGrace = 15 * time.Second

// Stop stops every node of dir: SIGTERM, then SIGKILL for one still
// running after StopGrace or when ctx ends, and returns once each has
// exited. Only processes that run a node of dir are signalled, whatever the
// pid files say.
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
	var errs []error
	for _, p := range procs {
		if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
	}
	grace := time.Now().Add(StopGrace)
	for _, p := range procs {
		killed, err := waitExited(ctx, p, grace)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if killed {
			rep.Killed = append(rep.Killed, p)
		}
		rep.Stopped = append(rep.Stopped, p)
		os.Remove(filepath.Join(dir, p.Agency, "pid"))
	}
	return rep, errors.Join(errs...)
}

// killWait bounds the wait for a killed process to be gone: SIGKILL
// cannot be ignored, but a process in uninterruptible disk sleep dies
// only when the disk answers.
const killWait = 10 * time.Second

// waitExited waits until p has exited, after SIGTERM was sent to it. It
// sends SIGKILL once grace passes or ctx ends, and then waits up to
// killWait more; killed says whether it had to.
//
// A process has exited when /proc holds it no more, holds it as a zombie,
// or holds another process under its pid. Its command line alone does not
// say so: the kernel empties it early in the exit, while the process still
// holds its files (bbolt's lock) and its ports.
func waitExited(ctx context.Context, p NodeProcess, grace time.Time) (killed bool, err error) {
	var killedAt time.Time
	for {
		if procExited(p) {
			return killed, nil
		}
		if !killed && (time.Now().After(grace) || ctx.Err() != nil) {
			if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return false, fmt.Errorf("%s: kill: %w", p, err)
			}
			killed, killedAt = true, time.Now()
		}
		if killed && time.Since(killedAt) > killWait {
			return true, fmt.Errorf("%s still running %v after SIGKILL", p, killWait)
		}
		time.Sleep(20 * time.Millisecond) // polling /proc for the exit, bounded above
	}
}

// procExited says whether p has exited (see waitExited).
func procExited(p NodeProcess) bool {
	state, start, err := procStat(p.PID)
	return err != nil || state == 'Z' || state == 'X' || start != p.start
}

// procStat reads a process's state and start time (in clock ticks after
// boot) from /proc/PID/stat.
func procStat(pid int) (state byte, start uint64, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// pid (comm) state ppid ... starttime is field 22; comm may hold spaces
	// and parentheses, the fields follow its last ')'.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	return fields[0][0], start, nil
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
		case slices.ContainsFunc(running, func(p NodeProcess) bool { return p.Agency == e.Name() && p.PID == pid }):
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
	if err := m.prepare(0, nil, false, ""); err != nil {
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
		if _, err := waitExited(ctx, p, time.Now().Add(StopGrace)); err != nil {
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
