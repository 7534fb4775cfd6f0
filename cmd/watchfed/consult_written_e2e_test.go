package main

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConsultationWriteSaysWhetherShared: opening and answering a
// consultation print the step's log_index; a step written while no quorum
// is reachable is stored, says it is not yet shared and exits 7, as other
// writes do.
func TestConsultationWriteSaysWhetherShared(t *testing.T) {
	dir := t.TempDir()
	n := &devNode{t: t}
	if r := n.cli("", nil, "testnet", "up", "--nodes", "3", "--dir", dir, "--detach"); r.code != 0 {
		t.Fatalf("testnet up: exit %d\n%s", r.code, r.stderr)
	}
	t.Cleanup(func() { n.cli("", nil, "testnet", "down", "--dir", dir) })
	type thread struct {
		Consultation struct {
			ID string `json:"id"`
		} `json:"consultation"`
		LogIndex  uint64 `json:"log_index"`
		NotShared bool   `json:"not_shared"`
	}
	r := as(t, dir, "DE-BAFA", "denials", "add", "--consignee", "Tech Trade LLC", "--item", "radiation-hardened FPGA",
		"--control-list-entry", "3A001.a.1", "--destination", "IR", "--end-use", "missile guidance",
		"--reason", "WMD", "--regime", "WASSENAAR", "--marking", "GREEN", "-o", "json")
	if r.code != 0 {
		t.Fatalf("denials add: exit %d\n%s", r.code, r.stderr)
	}
	denial := decode[written](t, r.stdout)
	eventually(t, "FR-SBDU holds DE-BAFA's denial", 60*time.Second, func() (bool, string) {
		r := as(t, dir, "FR-SBDU", "shared", "get", denial.ID, "-o", "json")
		return r.code == 0, r.stderr
	})
	open := func(app string) (result, thread) {
		r := as(t, dir, "FR-SBDU", "consult", "open", "--denial", denial.ID, "--application", app,
			"--party", "Tech-Trade L.L.C.", "--question", "Civil use now?", "-o", "json")
		return r, decode[thread](t, r.stdout)
	}
	r, th := open("FR-2026-0042")
	if r.code != 0 || th.LogIndex == 0 || th.NotShared {
		t.Fatalf("consult open in a federation: exit %d, %+v\n%s", r.code, th, r.stderr)
	}

	// Two of three voters gone: no quorum.
	for _, a := range []string{"DE-BAFA", "NL-CDIU"} {
		pid := pidOf(t, dir, a)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, a+" dies", 60*time.Second, func() (bool, string) { return !alive(pid), "" })
	}
	r, pending := open("FR-2026-0043")
	if r.code != exitNotShared || !strings.Contains(r.stderr, "not shared") || pending.LogIndex != 0 || !pending.NotShared || pending.Consultation.ID == "" {
		t.Fatalf("consult open without a quorum: exit %d, %+v\n%s%s", r.code, pending, r.stdout, r.stderr)
	}
	table := as(t, dir, "FR-SBDU", "consult", "extend", pending.Consultation.ID, "--reason", "still no quorum")
	if table.code != exitNotShared || !strings.Contains(table.stdout, "log_index") || !strings.Contains(table.stdout, "- (not yet shared") {
		t.Fatalf("consult extend without a quorum: exit %d\n%s%s", table.code, table.stdout, table.stderr)
	}
	if r := as(t, dir, "FR-SBDU", "consult", "show", pending.Consultation.ID); r.code != 0 {
		t.Fatalf("the pending consultation is not stored: exit %d\n%s", r.code, r.stderr)
	}
}
