package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

var idForm = regexp.MustCompile(`^[A-Z][A-Z0-9]{0,15}(-[A-Z0-9]{1,16})?$`)

func validID(s string) error {
	if !idForm.MatchString(s) {
		return fmt.Errorf("%q is not an agency id", s)
	}
	return nil
}

var members = []string{"DE-BAFA", "FR-SBDU", "US-BIS", "NL-CDIU"}

func TestLoadGood(t *testing.T) {
	p, err := Load("testdata/good.yaml", Options{ValidID: validID, Members: members})
	if err != nil {
		t.Fatal(err)
	}
	if p.Agency != "DE-BAFA" || len(p.Partners) != 3 {
		t.Fatalf("agency %s, %d partners", p.Agency, len(p.Partners))
	}
	nl := p.Partners["NL-CDIU"]
	if nl.MaxMarking != pb.Marking_MARKING_AMBER_STRICT || nl.Marking != pb.Marking_MARKING_AMBER || !nl.OriginatorControl || nl.Line != 13 {
		t.Fatalf("NL-CDIU block: %+v", nl)
	}
	if !p.Trusts("FR-SBDU", pb.Kind_KIND_DENIAL) || !p.Trusts("US-BIS", pb.Kind_KIND_DESIGNATION) ||
		p.Trusts("US-BIS", pb.Kind_KIND_DENIAL) || p.Trusts("NL-CDIU", pb.Kind_KIND_DESIGNATION) {
		t.Fatal("receive block not applied")
	}
}

// Each broken file is refused with the right line and reason.
func TestLoadBroken(t *testing.T) {
	want := map[string]string{
		"unknown-key.yaml":                   `7: partners.FR-SBDU: unknown key "colour"`,
		"unknown-field.yaml":                 `7: partners.FR-SBDU.redact: unknown field "shoe_size"`,
		"unknown-partner.yaml":               `7: partners.XX-NOPE: unknown partner: not a member`,
		"programs-without-designations.yaml": `7: partners.FR-SBDU.programs: programmes select designations, but kinds has no designation`,
		"include-and-exclude.yaml":           `8: partners.FR-SBDU: "IRAN" is both in programs and exclude_programs`,
		"redact-other-kind.yaml":             `7: partners.FR-SBDU.redact: statement exists only in designation records`,
		"redact-name.yaml":                   `7: partners.FR-SBDU.redact: name cannot be redacted`,
		"bad-marking.yaml":                   `6: partners.FR-SBDU.max_marking: marking "PURPLE"`,
		"default-share.yaml":                 `2: default: "share": the only default is deny`,
		"self-partner.yaml":                  `4: partners.DE-BAFA: this is the agency itself`,
		"not-yaml.yaml":                      `4: not YAML: did not find expected`,
		"marking-above-max.yaml":             `7: partners.FR-SBDU.marking: RED is above max_marking GREEN`,
		"kinds-missing.yaml":                 `5: partners.FR-SBDU: kinds missing`,
		"receive-bad-kind.yaml":              `10: receive.partners.FR-SBDU.kinds: kind "vessel"`,
	}
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) != len(want) {
		t.Fatalf("%d broken files, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f, Options{ValidID: validID, Members: members})
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("want policy errors, got %v", err)
			}
			if !strings.Contains(err.Error(), f+":"+want[filepath.Base(f)]) {
				t.Fatalf("got:\n%v\nwant a line containing %q", err, f+":"+want[filepath.Base(f)])
			}
		})
	}
}

// Without a member list (offline check, or a node not yet in a federation)
// any well-formed partner id is accepted.
func TestLoadOfflineAcceptsAnyPartner(t *testing.T) {
	if _, err := Load("testdata/bad/unknown-partner.yaml", Options{ValidID: validID}); err != nil {
		t.Fatal(err)
	}
}

// A partner that was a member and left (Former) keeps the file valid; one
// that never was stays refused.
func TestLoadAcceptsFormerMember(t *testing.T) {
	for _, tc := range []struct {
		name   string
		former func(string) bool
		ok     bool
	}{
		{"left the federation", func(id string) bool { return id == "XX-NOPE" }, true},
		{"never a member", func(string) bool { return false }, false},
		{"no record of former members", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("testdata/bad/unknown-partner.yaml", Options{ValidID: validID, Members: members, Former: tc.former})
			if (err == nil) != tc.ok {
				t.Fatalf("Load: %v; want accepted %v", err, tc.ok)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	many := func(prefix string, n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "%s%d\n", prefix, i)
		}
		return b.String()
	}
	for _, c := range []struct{ name, old, new, want string }{
		{"lcs", "a\nb\nc\n", "a\nc\nd\n", "-b\n+d\n"},
		{"same", "a\nb\n", "a\nb\n", ""},
		{"from nothing", "", "a\nb\n", "+a\n+b\n"},
		{"common ends skipped", "head\n" + many("x", 5000) + "old\ntail\n", "head\n" + many("x", 5000) + "new\ntail\n", "-old\n+new\n"},
		// Two large unrelated middles: removed and added whole, not an LCS of 9M cells.
		{"large rewrite", many("a", 3000), many("b", 3000), "-" + strings.ReplaceAll(strings.TrimSuffix(many("a", 3000), "\n"), "\n", "\n-") + "\n+" + strings.ReplaceAll(strings.TrimSuffix(many("b", 3000), "\n"), "\n", "\n+") + "\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Diff(c.old, c.new); got != c.want {
				t.Fatalf("diff = %.200q, want %.200q", got, c.want)
			}
		})
	}
}

// A policy with 80,000 list items (about 700 KB) parses, duplicates among
// them are still found by line, and a file over MaxFileSize is refused
// whole with the limit named, by Parse and by Load.
func TestParseSize(t *testing.T) {
	big := bigPolicy(80_000)
	if len(big) > MaxFileSize {
		t.Fatalf("test policy of %d bytes is over the limit", len(big))
	}
	p, err := Parse("big.yaml", big, Options{ValidID: validID, Members: members})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(p.Partners["FR-SBDU"].Programs) + len(p.Partners["FR-SBDU"].ExcludePrograms); got != 80_000 {
		t.Fatalf("%d items parsed, want 80000", got)
	}

	dup := strings.Replace(string(big), "P079999]", "P079999, P040000]", 1)
	if _, err := Parse("dup.yaml", []byte(dup), Options{ValidID: validID}); err == nil ||
		!strings.Contains(err.Error(), `dup.yaml:8: partners.FR-SBDU.exclude_programs: "P040000" listed twice`) {
		t.Fatalf("duplicate item: got %v", err)
	}
	both := strings.Replace(string(big), "P079999]", "P079999, P000007]", 1)
	if _, err := Parse("both.yaml", []byte(both), Options{ValidID: validID}); err == nil ||
		!strings.Contains(err.Error(), `"P000007" is both in programs and exclude_programs`) {
		t.Fatalf("item in both lists: got %v", err)
	}

	huge := append([]byte("# padding\n"), big...)
	for len(huge) <= MaxFileSize {
		huge = append(huge, "# padding padding padding padding padding padding padding padding\n"...)
	}
	const want = "file too large: over 1048576 bytes (1 MiB), the limit of a policy file"
	if _, err := Parse("huge.yaml", huge, Options{ValidID: validID}); err == nil || err.Error() != "huge.yaml: "+want {
		t.Fatalf("Parse of %d bytes: got %v", len(huge), err)
	}
	path := filepath.Join(t.TempDir(), "huge.yaml")
	if err := os.WriteFile(path, huge, 0o600); err != nil {
		t.Fatal(err)
	}
	var es Errors
	if _, err := Load(path, Options{ValidID: validID}); !errors.As(err, &es) || err.Error() != path+": "+want {
		t.Fatalf("Load of %d bytes: got %v", len(huge), err)
	}
}

// The parser never panics and either refuses with located errors or yields
// a policy whose partners all have kinds and a maximum marking.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	files = append(files, "testdata/good.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data, Options{ValidID: validID})
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error of the wrong type: %v", err)
			}
			return
		}
		for id, pt := range p.Partners {
			if len(pt.Kinds) == 0 || pt.MaxMarking == 0 || id == p.Agency {
				t.Fatalf("accepted an incomplete partner block %s: %+v", id, pt)
			}
		}
	})
}
