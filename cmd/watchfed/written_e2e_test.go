package main

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// written is what a write's -o json adds to the record.
type written struct {
	ID          string `json:"id"`
	Version     uint64 `json:"version"`
	LogIndex    uint64 `json:"log_index"`
	Publication string `json:"publication"`
}

// TestWriteSaysWhetherShared: a write prints its log_index and what became
// of its entry; one that could not reach a quorum says it is not yet
// shared, and its entry is published once the quorum is back.
func TestWriteSaysWhetherShared(t *testing.T) {
	t.Run("dev node", func(t *testing.T) {
		n := startDevNode(t, t.TempDir(), freeAddr(t))
		w := decode[written](t, n.ok("designations", "add", "--schema", "organization", "--name", "Acme Arms", "--program", "X", "--marking", "GREEN", "-o", "json"))
		if w.LogIndex != 0 || w.Publication != "not_shared" {
			t.Fatalf("write on a node in no federation: %+v", w)
		}
		w = decode[written](t, n.ok("designations", "add", "--schema", "organization", "--name", "Acme Local", "--program", "X", "--marking", "GREEN", "--local", "-o", "json"))
		if w.LogIndex != 0 || w.Publication != "local_only" {
			t.Fatalf("local-only write: %+v", w)
		}
		if out := n.ok("designations", "delist", w.ID, "--reason", "test"); !strings.Contains(out, "log_index:") || !strings.Contains(out, "local-only: never shared") {
			t.Fatalf("delist's table lacks the log_index line:\n%s", out)
		}
	})

	t.Run("federation", func(t *testing.T) {
		dir := t.TempDir()
		n := &devNode{t: t}
		if r := n.cli("", nil, "testnet", "up", "--nodes", "3", "--dir", dir, "--detach"); r.code != 0 {
			t.Fatalf("testnet up: exit %d\n%s", r.code, r.stderr)
		}
		t.Cleanup(func() { n.cli("", nil, "testnet", "down", "--dir", dir) })
		add := []string{"designations", "add", "--schema", "organization", "--program", "X", "--marking", "GREEN", "-o", "json", "--name"}
		r := as(t, dir, "DE-BAFA", append(add, "Shared Trading")...)
		if w := decode[written](t, r.stdout); r.code != 0 || w.LogIndex == 0 || w.Publication != "committed" {
			t.Fatalf("write in a federation: exit %d, %+v\n%s", r.code, w, r.stderr)
		}

		// Two of three voters gone: no quorum.
		for _, a := range []string{"FR-SBDU", "NL-CDIU"} {
			pid := pidOf(t, dir, a)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			eventually(t, a+" dies", 60*time.Second, func() (bool, string) { return !alive(pid), "" })
		}
		r = as(t, dir, "DE-BAFA", append(add, "Pending Trading")...)
		w := decode[written](t, r.stdout)
		if r.code != exitNotShared || !strings.Contains(r.stderr, "not shared") || w.LogIndex != 0 || w.Publication != "not_shared" || w.Version != 1 {
			t.Fatalf("write without a quorum: exit %d, %+v\n%s", r.code, w, r.stderr)
		}
		table := as(t, dir, "DE-BAFA", "designations", "amend", w.ID, "--note", "still no quorum")
		if table.code != exitNotShared || !strings.Contains(table.stdout, "log_index:") || !strings.Contains(table.stdout, "- (not yet shared") {
			t.Fatalf("amend without a quorum: exit %d\n%s%s", table.code, table.stdout, table.stderr)
		}
		if got := decode[rec](t, as(t, dir, "DE-BAFA", "records", "get", w.ID, "-o", "json").stdout); got.Version != 2 {
			t.Fatalf("the pending write is not stored: %+v", got)
		}

		// The quorum back, the entry reaches the partners.
		for _, a := range []string{"FR-SBDU", "NL-CDIU"} {
			if r := n.cli("", nil, "testnet", "restart", "--dir", dir, a); r.code != 0 {
				t.Fatalf("restart %s: exit %d\n%s", a, r.code, r.stderr)
			}
		}
		eventually(t, "FR-SBDU receives the pending entry", 60*time.Second, func() (bool, string) {
			r := as(t, dir, "FR-SBDU", "shared", "get", w.ID, "-o", "json")
			return r.code == 0, r.stderr
		})
	})
}
