package main

import (
	"strings"
	"testing"
)

// TestUnsafeTextRefused: a designation with an escape sequence or a bidi
// override in a field is refused at `designations add` and at `import`, with
// an error naming the field, and nothing of it is stored.
func TestUnsafeTextRefused(t *testing.T) {
	n := startDevNode(t, t.TempDir(), freeAddr(t))
	for _, tc := range []struct {
		args  []string
		field string
	}{
		{[]string{"--name", "Ivan \x1b[31mPETROV", "--program", "RUSSIA-EO14024"}, "subject.name: contains U+001B (escape)"},
		{[]string{"--name", "Ivan PETROV", "--alias", "x", "--alias", "Ivan \u202eVORTEP", "--program", "RUSSIA-EO14024"},
			"subject.aliases[1].name: contains U+202E (right-to-left override)"},
		{[]string{"--name", "Ivan PETROV", "--program", "EO\x1b]8;;http://evil\x07"}, "designation.program: contains U+001B (escape)"},
	} {
		args := append([]string{"designations", "add", "--schema", "person", "--marking", "GREEN"}, tc.args...)
		r := n.cli("", nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.field) {
			t.Errorf("designations add %q: exit %d, want %d naming %q; stderr %s", tc.args, r.code, exitUsage, tc.field, r.stderr)
		}
		if strings.ContainsAny(r.stderr, "\x1b\u202e") {
			t.Errorf("the error printed the character raw: %q", r.stderr)
		}
	}
	if list := decode[[]rec](t, n.ok("records", "list", "--all", "-o", "json")); len(list) != 0 {
		t.Fatalf("a refused write stored something: %+v", list)
	}

	fixture := "testdata/unsafe-text.ftm.json"
	got := decode[importSummary](t, n.ok("import", "--format", "ftm", "--source", "fixture", "--allow-rejects", "-o", "json", fixture))
	if got.Added != 1 || len(got.Rejected) != 2 {
		t.Fatalf("import: %+v, want 1 added and 2 rejected", got)
	}
	reasons := got.Rejected[0].Reason + " | " + got.Rejected[1].Reason
	for _, want := range []string{"subject.name: contains U+202E (right-to-left override)", "subject.aliases[0].name: contains U+001B (escape)"} {
		if !strings.Contains(reasons, want) {
			t.Errorf("import rejections do not say %q: %s", want, reasons)
		}
	}
	table := n.ok("import", "--format", "ftm", "--source", "fixture", "--allow-rejects", "--dry-run", fixture)
	if strings.ContainsAny(table, "\x1b\u202e") || !strings.Contains(table, "subject.name: contains U+202E") {
		t.Errorf("import table:\n%s", table)
	}
	list := decode[[]rec](t, n.ok("records", "list", "--all", "-o", "json"))
	if len(list) != 1 || list[0].Subject.Name != "Ivan PETROV" {
		t.Fatalf("stored after import: %+v", list)
	}
}
