package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPolicyCheckBrokenFiles: each broken file gets its line and reason and
// exit code 2; a good file passes.
func TestPolicyCheckBrokenFiles(t *testing.T) {
	n := &devNode{t: t}
	for file, want := range map[string]string{
		"unknown-key.yaml":         `unknown-key.yaml:7: partners.FR-SBDU: unknown key "colour"`,
		"unknown-field.yaml":       `unknown-field.yaml:7: partners.FR-SBDU.redact: unknown field "shoe_size"`,
		"redact-name.yaml":         `redact-name.yaml:7: partners.FR-SBDU.redact: name cannot be redacted`,
		"default-share.yaml":       `default-share.yaml:2: default: "share": the only default is deny`,
		"unknown-partner.yaml":     `unknown-partner.yaml:7: partners.XX-NOPE: unknown partner: not a member of the federation`,
		"include-and-exclude.yaml": `include-and-exclude.yaml:8: partners.FR-SBDU: "IRAN" is both in programs and exclude_programs`,
	} {
		r := n.cli("", nil, "policy", "check", "--members", "DE-BAFA,FR-SBDU", filepath.Join("..", "..", "policy", "testdata", "bad", file))
		if r.code != exitUsage || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", file, r.code, r.stderr, want)
		}
	}
	r := n.cli("", nil, "policy", "check", "-o", "json", filepath.Join("..", "..", "policy", "testdata", "good.yaml"))
	res := decode[struct {
		OK       bool     `json:"ok"`
		Partners []string `json:"partners"`
	}](t, r.stdout)
	if r.code != 0 || !res.OK || len(res.Partners) != 3 {
		t.Fatalf("good file: exit %d %+v %s", r.code, res, r.stderr)
	}
}

// TestPolicyThreeAgencies is the policy officer's walk-through on real
// processes: DE shares one record fully with FR and redacted with NL, and a
// second record with FR only; FR and NL see exactly that through the CLI,
// `policy explain` says why, and NL's data directory holds none of what was
// meant for FR alone.
func TestPolicyThreeAgencies(t *testing.T) {
	dir := t.TempDir()
	n := &devNode{t: t}
	if r := n.cli("", nil, "testnet", "up", "--nodes", "3", "--dir", dir, "--detach"); r.code != 0 {
		t.Fatalf("testnet up: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Cleanup(func() { n.cli("", nil, "testnet", "down", "--dir", dir) })

	pol := `agency: DE-BAFA
default: deny
partners:
  FR-SBDU:
    kinds: [designation, denial]
    max_marking: AMBER
  NL-CDIU:
    kinds: [designation]
    max_marking: GREEN
    redact: [statement, aliases]
`
	path := filepath.Join(dir, "DE-BAFA", "policy.yaml")
	if r := n.cli("", nil, "policy", "check", "--members", "DE-BAFA,FR-SBDU,NL-CDIU", writeFile(t, path+".new", pol)); r.code != 0 {
		t.Fatalf("policy check: %s", r.stderr)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	eventually(t, "DE audits the policy change", 60*time.Second, func() (bool, string) {
		r := as(t, dir, "DE-BAFA", "audit", "list", "-o", "json")
		return strings.Contains(r.stdout, "policy.change") && strings.Contains(r.stdout, "+    redact: [statement, aliases]"), r.stdout + r.stderr
	})

	r := as(t, dir, "DE-BAFA", "designations", "add", "--schema", "person", "--name", "Oleg SHAREDPERSON", "--alias", "Olezhka Secretalias",
		"--program", "RUSSIA-EO14024", "--statement", "Secretstatement: directs the procurement network", "--marking", "GREEN", "-o", "json")
	if r.code != 0 {
		t.Fatalf("add: %s", r.stderr)
	}
	both := decode[rec](t, r.stdout).ID
	r = as(t, dir, "DE-BAFA", "designations", "add", "--schema", "organization", "--name", "Frenchonly Shipping", "--program", "RUSSIA-EO14024",
		"--marking", "AMBER", "-o", "json")
	if r.code != 0 {
		t.Fatalf("add: %s", r.stderr)
	}
	frOnly := decode[rec](t, r.stdout).ID

	eventually(t, "FR reads both records whole", 60*time.Second, func() (bool, string) {
		a, b := as(t, dir, "FR-SBDU", "shared", "get", both, "-o", "json"), as(t, dir, "FR-SBDU", "shared", "get", frOnly, "-o", "json")
		return a.code == 0 && b.code == 0 && strings.Contains(a.stdout, "Secretstatement") && strings.Contains(a.stdout, "Secretalias"), a.stdout + a.stderr + b.stderr
	})
	eventually(t, "NL reads the redacted record", 60*time.Second, func() (bool, string) {
		r := as(t, dir, "NL-CDIU", "shared", "get", both, "-o", "json")
		return r.code == 0, r.stderr
	})
	r = as(t, dir, "NL-CDIU", "shared", "get", both, "-o", "json")
	if !strings.Contains(r.stdout, "Oleg SHAREDPERSON") || strings.Contains(r.stdout, "Secretstatement") || strings.Contains(r.stdout, "Secretalias") {
		t.Fatalf("NL's copy:\n%s", r.stdout)
	}
	if r := as(t, dir, "NL-CDIU", "shared", "get", frOnly); r.code != exitNotFound {
		t.Fatalf("NL get FR-only record: exit %d %s", r.code, r.stdout)
	}

	// explain says why, per partner.
	r = as(t, dir, "DE-BAFA", "policy", "explain", frOnly, "-o", "json")
	var ex struct {
		Decisions []struct {
			Partner  string   `json:"partner"`
			Share    bool     `json:"share"`
			Reasons  []string `json:"reasons"`
			Redacted []string `json:"redacted"`
			Holds    uint64   `json:"holds_version"`
		} `json:"decisions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ex); err != nil || len(ex.Decisions) != 2 {
		t.Fatalf("explain: %v\n%s%s", err, r.stdout, r.stderr)
	}
	for _, d := range ex.Decisions {
		switch d.Partner {
		case "FR-SBDU":
			if !d.Share || d.Holds != 1 {
				t.Errorf("FR: %+v", d)
			}
		case "NL-CDIU":
			if d.Share || d.Holds != 0 || !strings.Contains(strings.Join(d.Reasons, ";"), "marking AMBER is above max_marking GREEN") {
				t.Errorf("NL: %+v", d)
			}
		}
	}
	r = as(t, dir, "DE-BAFA", "policy", "explain", both, "--partner", "NL-CDIU")
	if r.code != 0 || !strings.Contains(r.stdout, "aliases,statement") || !strings.Contains(r.stdout, "NL-CDIU") {
		t.Fatalf("explain table:\n%s%s", r.stdout, r.stderr)
	}

	if r := n.cli("", nil, "testnet", "down", "--dir", dir); r.code != 0 {
		t.Fatalf("testnet down: %s", r.stderr)
	}
	for _, secret := range []string{"Secretstatement", "Secretalias", "Frenchonly Shipping"} {
		filepath.WalkDir(filepath.Join(dir, "NL-CDIU"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(secret)) {
				t.Errorf("NL's %s holds %q", p, secret)
			}
			return nil
		})
	}
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
