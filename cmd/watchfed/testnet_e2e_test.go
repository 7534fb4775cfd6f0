package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envOf reads DIR/<agency>/env as a newcomer would source it.
func envOf(t *testing.T, dir, agency string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, agency, "env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			env = append(env, k+"="+strings.Trim(v, "'"))
		}
	}
	return env
}

// as runs the CLI with an agency's env file, as `. D/<agency>/env; watchfed ...`.
func as(t *testing.T, dir, agency string, args ...string) result {
	t.Helper()
	n := &devNode{t: t, env: envOf(t, dir, agency)}
	return n.cli("", nil, args...)
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	t.Fatalf("%s: not within %v; last state:\n%s", what, timeout, last)
	return 0
}

// TestTestnetUpShareDown is the walk-through a newcomer types: a detached
// three-agency testnet, a record added on one agency and seen on the other
// two, every peer at lag 0, and the testnet stopped.
func TestTestnetUpShareDown(t *testing.T) {
	dir := t.TempDir()
	n := &devNode{t: t}
	if r := n.cli("", nil, "testnet", "up", "--nodes", "3", "--dir", dir, "--detach"); r.code != 0 {
		t.Fatalf("testnet up: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Cleanup(func() { n.cli("", nil, "testnet", "down", "--dir", dir) })

	r := as(t, dir, "DE-BAFA", "designations", "add", "--schema", "person", "--name", "Ivan PETROV", "--country", "RU",
		"--program", "RUSSIA-EO14024", "--marking", "GREEN", "-o", "json")
	if r.code != 0 {
		t.Fatalf("add: %s", r.stderr)
	}
	id := decode[rec](t, r.stdout).ID
	for _, agency := range []string{"FR-SBDU", "NL-CDIU"} {
		took := eventually(t, agency+" sees the shared record", 60*time.Second, func() (bool, string) {
			r := as(t, dir, agency, "shared", "list", "-o", "json")
			return r.code == 0 && strings.Contains(r.stdout, id) && strings.Contains(r.stdout, "Ivan PETROV"), r.stdout + r.stderr
		})
		t.Logf("%s saw %s after %v", agency, id, took)
	}
	// A write on a follower is forwarded to the leader and reaches the others.
	r = as(t, dir, "NL-CDIU", "designations", "add", "--schema", "organization", "--name", "Acme Arms", "--program", "X", "--marking", "GREEN", "-o", "json")
	if r.code != 0 {
		t.Fatalf("add on NL: %s", r.stderr)
	}
	nlID := decode[rec](t, r.stdout).ID
	eventually(t, "DE sees NL's record", 60*time.Second, func() (bool, string) {
		r := as(t, dir, "DE-BAFA", "shared", "get", nlID, "-o", "json")
		return r.code == 0, r.stderr
	})

	eventually(t, "peers list shows three members at lag 0", 60*time.Second, func() (bool, string) {
		r := as(t, dir, "FR-SBDU", "peers", "list", "-o", "json")
		if r.code != 0 {
			return false, r.stderr
		}
		peers := decode[[]struct {
			ID        string  `json:"id"`
			Reachable bool    `json:"reachable"`
			Lag       *uint64 `json:"lag"`
			Role      string  `json:"role"`
		}](t, r.stdout)
		ok := len(peers) == 3
		for _, p := range peers {
			ok = ok && p.Reachable && p.Lag != nil && *p.Lag == 0
		}
		return ok, r.stdout
	})
	if st := decode[struct {
		Role   string `json:"role"`
		Leader string `json:"leader"`
	}](t, as(t, dir, "FR-SBDU", "status", "-o", "json").stdout); st.Leader == "" {
		t.Fatalf("status names no leader: %+v", st)
	}

	pids := map[string]int{}
	for _, a := range []string{"DE-BAFA", "FR-SBDU", "NL-CDIU"} {
		data, _ := os.ReadFile(filepath.Join(dir, a, "pid"))
		var pid int
		for _, c := range strings.TrimSpace(string(data)) {
			pid = pid*10 + int(c-'0')
		}
		pids[a] = pid
	}
	if r := n.cli("", nil, "testnet", "down", "--dir", dir); r.code != 0 {
		t.Fatalf("testnet down: %s", r.stderr)
	}
	for a, pid := range pids {
		if pid == 0 || alive(pid) {
			t.Errorf("%s (pid %d) still running after testnet down", a, pid)
		}
	}
}

// pidOf reads DIR/<agency>/pid (0 when there is none).
func pidOf(t *testing.T, dir, agency string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, agency, "pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("%s pid file: %v", agency, err)
	}
	return pid
}

// alive says whether pid is a live process (not gone, not a zombie).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: comm may hold spaces, the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// runsNode says whether pid runs the node of dir/agency, by its command line.
func runsNode(pid int, dir, agency string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && alive(pid) &&
		strings.Contains(string(cmdline), "\x00node\x00") &&
		strings.Contains(string(cmdline), filepath.Join(dir, agency, "node.yaml"))
}

// TestTestnetPidCases drives up, down and restart through the cases of
// issue 15: up on a running and on a partly running directory is refused,
// naming the running nodes, and starts nothing; restart brings one node
// back (or replaces a running one) and waits until it serves; down stops
// the real nodes even when their pid files are wrong, and never signals a
// live unrelated process a stale pid file names.
func TestTestnetPidCases(t *testing.T) {
	dir := t.TempDir()
	n := &devNode{t: t}
	if r := n.cli("", nil, "testnet", "up", "--nodes", "3", "--dir", dir, "--detach"); r.code != 0 {
		t.Fatalf("testnet up: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Cleanup(func() { n.cli("", nil, "testnet", "down", "--dir", dir) })
	agencies := []string{"DE-BAFA", "FR-SBDU", "NL-CDIU"}
	pids := map[string]int{}
	for _, a := range agencies {
		if pids[a] = pidOf(t, dir, a); !runsNode(pids[a], dir, a) {
			t.Fatalf("%s: pid %d does not run its node", a, pids[a])
		}
	}

	t.Run("up refuses a running directory", func(t *testing.T) {
		r := n.cli("", nil, "testnet", "up", "--nodes", "3", "--dir", dir, "--detach")
		if r.code != 6 || !strings.Contains(r.stderr, "already run: DE-BAFA (pid") ||
			!strings.Contains(r.stderr, "FR-SBDU (pid") || !strings.Contains(r.stderr, "NL-CDIU (pid") {
			t.Fatalf("exit %d, want 6 naming every running node\n%s", r.code, r.stderr)
		}
		for _, a := range agencies {
			if got := pidOf(t, dir, a); got != pids[a] || !runsNode(got, dir, a) {
				t.Fatalf("%s: pid file %d, was %d", a, got, pids[a])
			}
		}
	})

	t.Run("up refuses a partly running directory", func(t *testing.T) {
		if err := syscall.Kill(pids["FR-SBDU"], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, "FR-SBDU's node dies", 60*time.Second, func() (bool, string) {
			return !alive(pids["FR-SBDU"]), ""
		})
		r := n.cli("", nil, "testnet", "up", "--nodes", "3", "--dir", dir, "--detach")
		if r.code != 6 || !strings.Contains(r.stderr, "DE-BAFA (pid") || !strings.Contains(r.stderr, "NL-CDIU (pid") ||
			strings.Contains(r.stderr, "FR-SBDU") {
			t.Fatalf("exit %d, want 6 naming DE-BAFA and NL-CDIU only\n%s", r.code, r.stderr)
		}
		if got := pidOf(t, dir, "FR-SBDU"); got != pids["FR-SBDU"] {
			t.Fatalf("FR-SBDU's pid file changed to %d: a node was started", got)
		}
	})

	t.Run("restart brings a dead node back", func(t *testing.T) {
		r := n.cli("", nil, "testnet", "restart", "--dir", dir, "FR-SBDU")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "FR-SBDU\t127.0.0.1:") {
			t.Fatalf("restart: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		pid := pidOf(t, dir, "FR-SBDU")
		if pid == pids["FR-SBDU"] || !runsNode(pid, dir, "FR-SBDU") {
			t.Fatalf("FR-SBDU pid %d after restart (was %d)", pid, pids["FR-SBDU"])
		}
		pids["FR-SBDU"] = pid
		// It served when restart returned: a client gets its status at once.
		if r := as(t, dir, "FR-SBDU", "status", "-o", "json"); r.code != 0 {
			t.Fatalf("status after restart: exit %d: %s", r.code, r.stderr)
		}
	})

	t.Run("restart replaces a running node", func(t *testing.T) {
		old := pids["NL-CDIU"]
		if r := n.cli("", nil, "testnet", "restart", "--dir", dir, "NL-CDIU"); r.code != 0 {
			t.Fatalf("restart: exit %d\n%s", r.code, r.stderr)
		}
		pid := pidOf(t, dir, "NL-CDIU")
		if pid == old || !runsNode(pid, dir, "NL-CDIU") || runsNode(old, dir, "NL-CDIU") {
			t.Fatalf("NL-CDIU pid %d after restart, old pid %d still its node: %v", pid, old, runsNode(old, dir, "NL-CDIU"))
		}
		pids["NL-CDIU"] = pid
		if r := as(t, dir, "NL-CDIU", "status"); r.code != 0 {
			t.Fatalf("status after restart: exit %d: %s", r.code, r.stderr)
		}
	})

	t.Run("restart of an unknown agency is a usage error", func(t *testing.T) {
		if r := n.cli("", nil, "testnet", "restart", "--dir", dir, "XX-NOPE"); r.code != 2 || !strings.Contains(r.stderr, "no agency XX-NOPE") {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("down stops the real nodes and signals no stale pid", func(t *testing.T) {
		// An unrelated live process whose pid lands in DE-BAFA's pid file
		// (as if the file were overwritten, or the pid reused).
		unrelated := exec.Command("sleep", "600")
		if err := unrelated.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { unrelated.Wait(); close(exited) }()
		t.Cleanup(func() { unrelated.Process.Kill(); <-exited })
		// A pid that no longer runs in NL-CDIU's.
		gone := exec.Command("true")
		if err := gone.Run(); err != nil {
			t.Fatal(err)
		}
		writePID := func(agency string, pid int) {
			if err := os.WriteFile(filepath.Join(dir, agency, "pid"), []byte(strconv.Itoa(pid)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		writePID("DE-BAFA", unrelated.Process.Pid)
		writePID("NL-CDIU", gone.Process.Pid)

		r := n.cli("", nil, "testnet", "down", "--dir", dir)
		if r.code != 0 {
			t.Fatalf("down: exit %d\n%s", r.code, r.stderr)
		}
		for _, want := range []string{
			fmt.Sprintf("DE-BAFA: stale pid file %s: pid %d is not this node", filepath.Join(dir, "DE-BAFA", "pid"), unrelated.Process.Pid),
			"not signalled",
			fmt.Sprintf("NL-CDIU: stale pid file %s: pid %d is not running", filepath.Join(dir, "NL-CDIU", "pid"), gone.Process.Pid),
			"stopped DE-BAFA (pid", "stopped FR-SBDU (pid", "stopped NL-CDIU (pid",
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("down's report lacks %q:\n%s", want, r.stderr)
			}
		}
		select {
		case <-exited:
			t.Fatal("the unrelated process named by a stale pid file was signalled")
		default:
		}
		for a, pid := range pids {
			if alive(pid) {
				t.Errorf("%s (pid %d) still running after testnet down", a, pid)
			}
			if _, err := os.Stat(filepath.Join(dir, a, "pid")); err == nil {
				t.Errorf("%s: pid file left after down", a)
			}
		}
	})

	t.Run("up starts the stopped directory again", func(t *testing.T) {
		if r := n.cli("", nil, "testnet", "up", "--nodes", "3", "--dir", dir, "--detach"); r.code != 0 {
			t.Fatalf("testnet up: exit %d\n%s", r.code, r.stderr)
		}
		for _, a := range agencies {
			if !runsNode(pidOf(t, dir, a), dir, a) {
				t.Errorf("%s not running after up", a)
			}
		}
	})
}
