package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/watchfed/watchfed/testnet/shareddata"
)

// badEditions writes the files an operator gives by mistake: an empty list,
// one cut short in the middle of a row, binary junk, the hosts file and an
// XML document nested 200,000 deep. Each is a format and its paths.
func badEditions(t *testing.T, edition string) map[string][]string {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full, err := os.ReadFile(edition)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range junk {
		junk[i] = byte(r.UintN(256))
	}
	deep := strings.Repeat("<a>", 200_000) + strings.Repeat("</a>", 200_000)
	return map[string][]string{
		"empty":        {"ofac-sdn", write("sdn.csv", nil)},
		"truncated":    {"ofac-sdn", write("truncated.csv", full[:len(full)/3])},
		"junk":         {"ofac-sdn", write("junk.csv", junk)},
		"hosts as UN":  {"un-xml", "/etc/hosts"},
		"deep XML":     {"un-xml", write("deep.xml", []byte(deep))},
		"cut XML":      {"un-xml", write("cut.xml", []byte("<CONSOLIDATED_LIST><INDIVIDUALS><INDIVIDUAL><DATAID>1</DATAID><FIRST_NAME>X"))},
		"junk as UN":   {"un-xml", write("junk.xml", junk)},
		"junk as FtM":  {"ftm", write("junk.json", junk)},
		"empty as DPL": {"bis-dpl", write("dpl.txt", nil)},
	}
}

// TestBadEditionsRefusedInFederation: on a two-agency testnet, where
// DE-BAFA's imported list is shared with FR-SBDU, every wrong, empty or
// damaged edition is refused (exit 2, saying why), and nothing changes at
// home or at the partner: records, shared entries and screening as before.
func TestBadEditionsRefusedInFederation(t *testing.T) {
	dir := t.TempDir()
	n := &devNode{t: t}
	if r := n.cli("", nil, "testnet", "up", "--nodes", "2", "--dir", dir, "--detach"); r.code != 0 {
		t.Fatalf("testnet up: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Cleanup(func() { n.cli("", nil, "testnet", "down", "--dir", dir) })
	if _, err := os.Stat("/etc/hosts"); err != nil {
		t.Skipf("no /etc/hosts: %v", err)
	}

	edition := filepath.Join(fixtures, "ofac-sdn-2024-04-26.csv")
	r := as(t, dir, "DE-BAFA", "import", "--format", "ofac-sdn", "-o", "json", edition)
	if r.code != 0 {
		t.Fatalf("import: exit %d: %s", r.code, r.stderr)
	}
	if got := decode[importSummary](t, r.stdout); got.Added != 13 {
		t.Fatalf("import: %+v, want 13 added", got)
	}
	eventually(t, "FR-SBDU holds DE-BAFA's 13 entries", 60*time.Second, func() (bool, string) {
		r := as(t, dir, "FR-SBDU", "shared", "list", "--origin", "DE-BAFA", "-o", "json")
		return r.code == 0 && strings.Count(r.stdout, `"source_ref": "ofac-sdn:`) == 13, r.stdout + r.stderr
	})
	// Not the log's indexes: the leader's checkpoints (protocol 4) move them
	// after any activity. A wrongly published entry shows in FR's shared list.
	snapshot := func() map[string]string {
		return map[string]string{
			"DE records": as(t, dir, "DE-BAFA", "records", "list", "--all", "-o", "json").stdout,
			"DE screen":  as(t, dir, "DE-BAFA", "screen", "BANCO NACIONAL DE CUBA", "-o", "json").stdout,
			"FR shared":  as(t, dir, "FR-SBDU", "shared", "list", "--all", "-o", "json").stdout,
			"FR screen":  as(t, dir, "FR-SBDU", "screen", "BANCO NACIONAL DE CUBA", "-o", "json").stdout,
		}
	}
	before := snapshot()
	if !strings.Contains(before["FR screen"], "BANCO NACIONAL DE CUBA") {
		t.Fatalf("FR-SBDU does not screen the shared list: %s", before["FR screen"])
	}
	for name, f := range badEditions(t, edition) {
		r := as(t, dir, "DE-BAFA", "import", "--format", f[0], f[1])
		if r.code != exitUsage || !(strings.Contains(r.stderr, "nothing imported") || strings.Contains(r.stderr, "nothing written")) {
			t.Errorf("%s: exit %d, want %d refusing it; stdout %s stderr %s", name, r.code, exitUsage, r.stdout, r.stderr)
		}
		t.Logf("%s: %s", name, strings.TrimSpace(r.stderr))
	}
	// Give a wrongly published entry time to reach the partner before
	// comparing: a write on DE commits within its publish wait.
	eventually(t, "nothing changed at DE-BAFA and FR-SBDU", 5*time.Second, func() (bool, string) {
		after := snapshot()
		for k, v := range before {
			if after[k] != v {
				return false, k + " changed:\n" + after[k]
			}
		}
		return true, ""
	})
}

// TestEmptyOFACKeepsSDN: `watchfed import` of an empty OFAC file into a node
// holding the SDN list (the complete 2024 list when present) exits non-zero,
// and screening for BANCO NACIONAL DE CUBA is as it was. The truncated file
// is refused by the node with the figures; --max-delist lets it through.
func TestEmptyOFACKeepsSDN(t *testing.T) {
	n := startDevNode(t, t.TempDir(), freeAddr(t))
	edition, want := filepath.Join(fixtures, "ofac-sdn-2024-04-26.csv"), "13"
	if p := filepath.Join(shareddata.Dir(), "ofac-sdn-2024", "sdn_2024-04-26.csv"); fileExists(p) {
		edition, want = p, "14668"
	} else {
		t.Logf("the complete 2024 SDN list is not present; the committed excerpt is imported")
	}
	got := decode[struct {
		Added    int    `json:"added"`
		LogIndex uint64 `json:"log_index"`
	}](t, n.ok("import", "--format", "ofac-sdn", "-o", "json", edition))
	if strconv.Itoa(got.Added) != want {
		t.Fatalf("imported %d, want %s", got.Added, want)
	}
	screen := func() string { return n.ok("screen", "BANCO NACIONAL DE CUBA", "-o", "json") }
	before := screen()
	if !strings.Contains(before, `"name": "BANCO NACIONAL DE CUBA"`) {
		t.Fatalf("the SDN list does not screen BANCO NACIONAL DE CUBA: %s", before)
	}
	empty := filepath.Join(t.TempDir(), "sdn.csv")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := n.cli("", nil, "import", "--format", "ofac-sdn", empty)
	if r.code == 0 || !strings.Contains(r.stderr, "no entries read") {
		t.Fatalf("empty sdn.csv: exit %d, stderr %s", r.code, r.stderr)
	}
	full, err := os.ReadFile(edition)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "sdn.csv")
	// Cut at a line's end: the guard under test is the delisting one, not
	// the one on rejected rows (a row cut in two is one of only ten in the
	// committed excerpt).
	half := full[:bytes.LastIndexByte(full[:len(full)/2], '\n')+1]
	if err := os.WriteFile(cut, half, 0o600); err != nil {
		t.Fatal(err)
	}
	r = n.cli("", nil, "import", "--format", "ofac-sdn", cut)
	if r.code != exitUsage || !strings.Contains(r.stderr, "refused, nothing written: it would delist") || !strings.Contains(r.stderr, "records in force") {
		t.Fatalf("half the file: exit %d, stderr %s", r.code, r.stderr)
	}
	t.Logf("half the file: %s", strings.TrimSpace(r.stderr))
	if after := screen(); after != before {
		t.Fatalf("screening changed:\nbefore %s\nafter %s", before, after)
	}
	// The operator means it: a dry run with the limit raised says what would go.
	r = n.cli("", nil, "import", "--format", "ofac-sdn", "--max-delist", "100%", "--allow-rejects", "--dry-run", "-o", "json", cut)
	if r.code != 0 || !strings.Contains(r.stdout, `"delisted"`) {
		t.Fatalf("--max-delist 100%% --dry-run: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if r := n.cli("", nil, "import", "--format", "ofac-sdn", "--max-delist", "ten", cut); r.code != exitUsage || !strings.Contains(r.stderr, "--max-delist") {
		t.Errorf("--max-delist ten: exit %d, %s", r.code, r.stderr)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// jsonField is one field of a JSON object, as text.
func jsonField(t *testing.T, s, key string) string {
	t.Helper()
	m := decode[map[string]json.RawMessage](t, s)
	return string(m[key])
}
