package main

import (
	"bufio"
	"os"
	"path/filepath"
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
		took := eventually(t, agency+" sees the shared record", 10*time.Second, func() (bool, string) {
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
	eventually(t, "DE sees NL's record", 10*time.Second, func() (bool, string) {
		r := as(t, dir, "DE-BAFA", "shared", "get", nlID, "-o", "json")
		return r.code == 0, r.stderr
	})

	eventually(t, "peers list shows three members at lag 0", 10*time.Second, func() (bool, string) {
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
		if pid == 0 || syscall.Kill(pid, 0) == nil {
			t.Errorf("%s (pid %d) still running after testnet down", a, pid)
		}
	}
}
