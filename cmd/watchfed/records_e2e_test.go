package main

import (
	"strings"
	"testing"
	"time"
)

func TestRecordLifecycle(t *testing.T) {
	n := startDevNode(t, t.TempDir(), freeAddr(t))

	added := decode[rec](t, n.ok("designations", "add", "-o", "json", "--schema", "person", "--name", "Ivan PETROV",
		"--alias", "Иван Петров", "--country", "RU", "--birth-date", "1965", "--program", "RUSSIA-EO14024", "--marking", "GREEN"))
	if !strings.HasPrefix(added.ID, "DEV/") || added.Version != 1 || added.Origin != "DEV" || added.Marking != "MARKING_GREEN" {
		t.Fatalf("added record: %+v", added)
	}
	if added.Designation == nil || added.Designation.Status != "DESIGNATION_STATUS_ACTIVE" || len(added.Subject.Aliases) != 1 {
		t.Fatalf("added record detail: %+v", added)
	}

	got := decode[rec](t, n.ok("records", "get", added.ID, "-o", "json"))
	if got.ID != added.ID || got.Subject.Name != "Ivan PETROV" {
		t.Fatalf("get: %+v", got)
	}
	if table := n.ok("records", "list"); !strings.Contains(table, added.ID) || !strings.Contains(table, "Ivan PETROV") {
		t.Fatalf("list table lacks the record:\n%s", table)
	}

	amended := decode[rec](t, n.ok("designations", "amend", added.ID, "-o", "json", "--add-alias", "Ivan Petrov", "--add-weak-alias", "Vanya", "--note", "MFA update"))
	if amended.Version != 2 || len(amended.Subject.Aliases) != 3 || amended.Subject.Name != "Ivan PETROV" {
		t.Fatalf("amended: %+v", amended)
	}

	delisted := decode[rec](t, n.ok("designations", "delist", added.ID, "--reason", "court annulment", "-o", "json"))
	if delisted.Version != 3 || delisted.Designation.Status != "DESIGNATION_STATUS_DELISTED" {
		t.Fatalf("delisted: %+v", delisted)
	}

	hist := decode[[]rec](t, n.ok("records", "history", added.ID, "-o", "json"))
	if len(hist) != 3 || hist[0].Version != 1 || hist[2].Version != 3 {
		t.Fatalf("history has %d versions: %+v", len(hist), hist)
	}

	// The list now leaves the delisted designation out, unless --all.
	if list := decode[[]rec](t, n.ok("records", "list", "-o", "json")); len(list) != 0 {
		t.Fatalf("active list after delisting: %+v", list)
	}
	if list := decode[[]rec](t, n.ok("records", "list", "--all", "-o", "json")); len(list) != 1 || list[0].Version != 3 {
		t.Fatalf("list --all: %+v", list)
	}

	// As of the first version's time, the list held version 1, active.
	asOf := hist[0].UpdatedAt
	then := decode[rec](t, n.ok("records", "get", added.ID, "--as-of", asOf, "-o", "json"))
	if then.Version != 1 || len(then.Subject.Aliases) != 1 {
		t.Fatalf("get --as-of %s: %+v", asOf, then)
	}
	if list := decode[[]rec](t, n.ok("records", "list", "--as-of", asOf, "-o", "json")); len(list) != 1 || list[0].Version != 1 {
		t.Fatalf("list --as-of %s: %+v", asOf, list)
	}
	before, _ := time.Parse(time.RFC3339Nano, asOf)
	r := n.cli("", nil, "records", "get", added.ID, "--as-of", before.Add(-time.Second).Format(time.RFC3339Nano))
	if r.code != exitNotFound {
		t.Fatalf("get before creation: exit %d, want %d (stderr %s)", r.code, exitNotFound, r.stderr)
	}
}

func TestDenialFromJSON(t *testing.T) {
	n := startDevNode(t, t.TempDir(), freeAddr(t))
	doc := `{"subject":{"schema":"SCHEMA_ORGANIZATION","name":"Tech Trade LLC"},
	  "denial":{"control_list_entry":"3A001.a.1","item":"radiation-hardened ICs","destination":"IR","end_use":"missile guidance",
	    "reason":"WMD","regime":"WASSENAAR","denied_on":"2026-01-15",
	    "parties":[{"role":"PARTY_ROLE_CONSIGNEE","name":"Tech Trade LLC","country":"IR"}]},
	  "marking":"MARKING_AMBER"}`
	r := n.cli(doc, nil, "denials", "add", "--from-json", "-", "-o", "json")
	if r.code != 0 {
		t.Fatalf("denials add: exit %d: %s", r.code, r.stderr)
	}
	d := decode[rec](t, r.stdout)
	if d.Denial == nil || d.Denial.Status != "DENIAL_STATUS_DENIED" || d.Denial.ReviewBy != "2029-01-15" {
		t.Fatalf("denial defaults (status denied, review in three years): %+v", d.Denial)
	}
	revoked := decode[rec](t, n.ok("denials", "status", d.ID, "--status", "revoked", "--reason", "review", "-o", "json"))
	if revoked.Denial.Status != "DENIAL_STATUS_REVOKED" || revoked.Version != 2 {
		t.Fatalf("status: %+v", revoked)
	}
	if list := decode[[]rec](t, n.ok("records", "list", "--kind", "denial", "--all", "-o", "json")); len(list) != 1 {
		t.Fatalf("list --kind denial: %+v", list)
	}
	if list := decode[[]rec](t, n.ok("records", "list", "--kind", "designation", "--all", "-o", "json")); len(list) != 0 {
		t.Fatalf("list --kind designation shows a denial: %+v", list)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	n := startDevNode(t, t.TempDir(), freeAddr(t))
	r := n.cli("", nil, "designations", "add", "--schema", "person", "--name", " ", "--country", "QQ",
		"--birth-date", "1965-02-30", "--program", "X", "--marking", "GREEN")
	if r.code != exitUsage {
		t.Fatalf("invalid add: exit %d, want %d; stderr %s", r.code, exitUsage, r.stderr)
	}
	for _, field := range []string{"subject.name", "subject.countries[0]", "subject.birth_dates[0]"} {
		if !strings.Contains(r.stderr, field) {
			t.Errorf("error does not name %s: %s", field, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout on failure: %q", r.stdout)
	}
	r = n.cli(`{"subject":{"schema":"SCHEMA_ORGANIZATION","name":"X"},"denial":{"control_list_entry":"3Z9","item":"i","destination":"IR",
		"parties":[{"role":"PARTY_ROLE_CONSIGNEE","name":"X"}]},"marking":"MARKING_GREEN"}`, nil, "denials", "add", "--from-json", "-")
	if r.code != exitUsage || !strings.Contains(r.stderr, "denial.control_list_entry") {
		t.Fatalf("bad control-list entry: exit %d, stderr %s", r.code, r.stderr)
	}
	if list := decode[[]rec](t, n.ok("records", "list", "--all", "-o", "json")); len(list) != 0 {
		t.Fatalf("a rejected write stored something: %+v", list)
	}
}

// TestSecondNodeOnSameDataDir: a second process gets a clear error at once.
func TestSecondNodeOnSameDataDir(t *testing.T) {
	dir := t.TempDir()
	n := startDevNode(t, dir, freeAddr(t))
	start := time.Now()
	r := n.cli("", nil, "node", "--dev", "--data-dir", dir, "--listen", freeAddr(t))
	if r.code == 0 || !strings.Contains(r.stderr, "in use") {
		t.Fatalf("second node: exit %d, stderr %s", r.code, r.stderr)
	}
	if time.Since(start) > 15*time.Second {
		t.Fatalf("second node took %v to fail: it must not hang", time.Since(start))
	}
}

// TestDenialsDueAndReview: the review reminder and the review itself, as an
// analyst types them (the node's real clock; the node test moves a clock).
func TestDenialsDueAndReview(t *testing.T) {
	n := startDevNode(t, t.TempDir(), freeAddr(t))
	old := time.Now().UTC().AddDate(-3, 0, -5).Format(time.DateOnly) // review fell due five days ago
	d := decode[rec](t, n.ok("denials", "add", "--consignee", "Tech Trade LLC", "--item", "FPGA", "--control-list-entry", "3A001.a.1",
		"--destination", "IR", "--reason", "WMD", "--regime", "WASSENAAR", "--denied-on", old, "--marking", "AMBER", "-o", "json"))
	due := decode[[]struct {
		Record   rec  `json:"record"`
		DaysLeft int  `json:"days_left"`
		Overdue  bool `json:"overdue"`
	}](t, n.ok("denials", "due", "--within", "90d", "-o", "json"))
	if len(due) != 1 || due[0].Record.ID != d.ID || !due[0].Overdue || due[0].DaysLeft > -4 {
		t.Fatalf("denials due: %+v", due)
	}
	if r := n.cli("", nil, "denials", "review", d.ID, "--renew", "--revoke", "--reason", "x"); r.code != exitUsage {
		t.Fatalf("--renew with --revoke: exit %d", r.code)
	}
	renewed := decode[rec](t, n.ok("denials", "review", d.ID, "--renew", "--reason", "still diverting", "-o", "json"))
	if want := time.Now().UTC().AddDate(3, 0, 0).Format(time.DateOnly); renewed.Denial.ReviewBy != want || renewed.Version != 2 {
		t.Fatalf("renewed: review_by %s version %d, want %s and 2", renewed.Denial.ReviewBy, renewed.Version, want)
	}
	if due := n.ok("denials", "due", "-o", "json"); strings.TrimSpace(due) != "[]" {
		t.Fatalf("still due after renewal: %s", due)
	}
}
