package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fixtures = "../../node/importer/testdata"

type importSummary struct {
	Added, Changed, Delisted, Unchanged int
	Rejected                            []struct {
		Line      int    `json:"line"`
		SourceRef string `json:"source_ref"`
		Reason    string `json:"reason"`
	}
}

type screenOut struct {
	Results []struct {
		Score       float64 `json:"score"`
		Origin      string  `json:"origin"`
		Record      rec     `json:"record"`
		Explanation struct {
			MatchedName string `json:"matched_name"`
			Summary     string `json:"summary"`
		} `json:"explanation"`
	} `json:"results"`
}

func TestImportAndScreenCLI(t *testing.T) {
	n := startDevNode(t, t.TempDir(), freeAddr(t))
	sdn := filepath.Join(fixtures, "ofac-sdn-2021")
	got := decode[importSummary](t, n.ok("import", "--format", "ofac-sdn", "--allow-rejects", "-o", "json",
		filepath.Join(sdn, "sdn.csv"), filepath.Join(sdn, "alt.csv"), filepath.Join(sdn, "add.csv"), filepath.Join(sdn, "sdn_comments.csv")))
	if got.Added != 7 || len(got.Rejected) != 2 || got.Rejected[0].Line != 3 || got.Rejected[1].Line != 5 {
		t.Fatalf("import: %+v", got)
	}
	table := n.ok("import", "--format", "ofac-sdn", "--allow-rejects", filepath.Join(sdn, "sdn.csv"), filepath.Join(sdn, "alt.csv"), filepath.Join(sdn, "add.csv"), filepath.Join(sdn, "sdn_comments.csv"))
	for _, want := range []string{"UNCHANGED", "line 3: ent_num \"abc\" is not a number"} {
		if !strings.Contains(table, want) {
			t.Errorf("import table lacks %q:\n%s", want, table)
		}
	}
	if r := n.cli("", nil, "import", "--format", "nope", filepath.Join(sdn, "sdn.csv")); r.code != exitUsage {
		t.Errorf("unknown format: exit %d, want %d (%s)", r.code, exitUsage, r.stderr)
	}

	// A name in Latin-1 in the file, screened in another spelling.
	s := decode[screenOut](t, n.ok("screen", "Jurgen Mueller", "--country", "DE", "-o", "json"))
	if len(s.Results) == 0 || s.Results[0].Record.Subject.Name != "MÜLLER, Jürgen" || s.Results[0].Origin != "DEV" {
		t.Fatalf("screen: %+v", s)
	}
	if out := n.ok("screen", "Banco Nacional de Cuba"); !strings.Contains(out, "BANCO NACIONAL DE CUBA") || !strings.Contains(out, "1.000") {
		t.Errorf("screen table:\n%s", out)
	}
	if out := n.ok("screen", "--id", "IMO 9187629"); !strings.Contains(out, "no match") {
		// The fixture's vessel has another IMO number.
		t.Logf("%s", out)
	}
	if r := n.cli("", nil, "screen"); r.code != exitUsage {
		t.Errorf("screen without a name: exit %d", r.code)
	}

	// Batch, interrupted and resumed, gives the same file as one run.
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(in, []byte("ref,name,country\nc1,Banco Nacional de Cuba,CU\nc2,Emily Johnson,\nc3,Aerocaribbean Airlines,CU\nc4,Anglo Caribbean Co Ltd,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	full, part := filepath.Join(dir, "full.csv"), filepath.Join(dir, "part.csv")
	n.ok("screen", "batch", in, "--out", full)
	want, _ := os.ReadFile(full)
	lines := strings.SplitAfter(string(want), "\n")
	if len(lines) < 5 || !strings.HasPrefix(lines[0], "row,ref,query,score") || !strings.HasPrefix(lines[2], "2,c2,Emily Johnson,,") {
		t.Fatalf("batch output:\n%s", want)
	}
	// Interrupted after row 2, in the middle of writing row 3.
	if err := os.WriteFile(part, []byte(lines[0]+lines[1]+lines[2]+"3,c3,Aeroc"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := n.cli("", nil, "screen", "batch", in, "--out", part)
	if r.code != 0 || !strings.Contains(r.stderr, "resuming after row 2") {
		t.Fatalf("resume: exit %d: %s", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(part); string(got) != string(want) {
		t.Errorf("resumed output differs:\n%s\nwant:\n%s", got, want)
	}
	jl := n.ok("screen", "batch", in, "--format", "jsonl")
	if strings.Count(jl, "\n") != 4 || !strings.Contains(jl, `"row":4`) {
		t.Errorf("jsonl:\n%s", jl)
	}
}

func TestScreenApplicationCLI(t *testing.T) {
	n := startDevNode(t, t.TempDir(), freeAddr(t))
	n.ok("denials", "add", "--consignee", "Tech Trade LLC", "--item", "radiation-hardened FPGA", "--control-list-entry", "3A001.a",
		"--destination", "IR", "--end-use", "missile guidance", "--reason", "WMD", "--regime", "WASSENAAR", "--marking", "AMBER")
	out := n.ok("screen", "application", "--party", "TECH TRADE GmbH", "--item", "3A001.a.1", "--destination", "IR")
	if !strings.Contains(out, "3A001.a") || !strings.Contains(out, "consult") {
		t.Errorf("application:\n%s", out)
	}
	out = n.ok("screen", "application", "--party", "TECH TRADE GmbH", "--item", "3A001.a.1", "--destination", "SY")
	if !strings.Contains(out, "essentially identical transaction: none") {
		t.Errorf("other destination:\n%s", out)
	}
	if r := n.cli("", nil, "screen", "application", "--party", "x", "--item", "3A1", "--destination", "IR"); r.code != exitUsage {
		t.Errorf("bad entry: exit %d", r.code)
	}
}
