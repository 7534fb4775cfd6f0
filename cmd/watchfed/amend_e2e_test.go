package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fullRec is what the amend tests look at beyond rec.
type fullRec struct {
	rec
	ChangeNote string `json:"change_note"`
	Subject    struct {
		Name    string `json:"name"`
		Aliases []struct {
			Name     string `json:"name"`
			Strength string `json:"strength"`
		} `json:"aliases"`
		Countries   []string `json:"countries"`
		Identifiers []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"identifiers"`
	} `json:"subject"`
	Designation *struct {
		Program  string   `json:"program"`
		Measures []string `json:"measures"`
	} `json:"designation"`
	Denial *struct {
		Parties []struct {
			Role string `json:"role"`
			Name string `json:"name"`
		} `json:"parties"`
	} `json:"denial"`
}

func aliasNames(r fullRec) []string {
	var out []string
	for _, a := range r.Subject.Aliases {
		out = append(out, a.Name)
	}
	return out
}

// TestAmendChangesOnlyWhatItNames: `amend` with --add-alias keeps the
// aliases it was not told about (the README's Cyrillic one), every list
// field changes item by item, a plain list flag or a removal of an item the
// record lacks is refused with nothing written, and stdin is read only with
// --from-json - (a `while read` loop keeps its input).
func TestAmendChangesOnlyWhatItNames(t *testing.T) {
	n := startDevNode(t, t.TempDir(), freeAddr(t))
	get := func(id string) fullRec { return decode[fullRec](t, n.ok("records", "get", id, "-o", "json")) }
	added := decode[fullRec](t, n.ok("designations", "add", "-o", "json", "--schema", "person", "--name", "Ivan PETROV",
		"--alias", "Иван Петров", "--country", "RU", "--birth-date", "1965", "--id", "passport:4509876543:RU",
		"--measure", "asset-freeze", "--program", "RUSSIA-EO14024", "--marking", "GREEN"))
	id := added.ID

	// The README's example: the Cyrillic alias stays.
	r := decode[fullRec](t, n.ok("designations", "amend", id, "--add-alias", "Ivan Petrov", "--note", "alias from the MFA", "-o", "json"))
	if got := aliasNames(r); !slices.Equal(got, []string{"Иван Петров", "Ivan Petrov"}) || r.Version != 2 {
		t.Fatalf("after --add-alias: aliases %q, version %d", got, r.Version)
	}
	if !slices.Equal(r.Subject.Countries, []string{"RU"}) || len(r.Subject.Identifiers) != 1 || !slices.Equal(r.Designation.Measures, []string{"asset-freeze"}) ||
		r.Designation.Program != "RUSSIA-EO14024" || r.Marking != "MARKING_GREEN" {
		t.Fatalf("amend changed fields it did not name: %+v", r)
	}

	r = decode[fullRec](t, n.ok("designations", "amend", id, "--remove-alias", "Иван Петров", "--add-weak-alias", "Vanya",
		"--add-country", "BY", "--remove-id", "passport:4509876543", "--add-measure", "travel-ban", "-o", "json"))
	if got := aliasNames(r); !slices.Equal(got, []string{"Ivan Petrov", "Vanya"}) || r.Subject.Aliases[1].Strength != "NAME_STRENGTH_WEAK" {
		t.Fatalf("aliases after remove and add: %+v", r.Subject.Aliases)
	}
	if !slices.Equal(r.Subject.Countries, []string{"RU", "BY"}) || len(r.Subject.Identifiers) != 0 ||
		!slices.Equal(r.Designation.Measures, []string{"asset-freeze", "travel-ban"}) || r.ChangeNote != "" {
		t.Fatalf("lists after amend: %+v", r)
	}

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"a plain list flag", []string{"--alias", "X"}, "--alias: amend changes only what it names: use --add-alias VALUE or --remove-alias VALUE"},
		{"removing what is not there", []string{"--remove-alias", "Nobody"}, `--remove-alias "Nobody": the record has no such alias (it has: Ivan Petrov)`},
		{"adding what is there", []string{"--add-country", "RU"}, `--add-country "RU": the record has it already`},
		{"a bad identifier", []string{"--add-id", "shoe:42"}, `type "shoe" is not passport`},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := n.cli("", nil, append([]string{"designations", "amend", id}, c.args...)...)
			if res.code != exitUsage || !strings.Contains(res.stderr, c.want) {
				t.Fatalf("exit %d, want %d with %q\n%s", res.code, exitUsage, c.want, res.stderr)
			}
			if v := get(id).Version; v != 3 {
				t.Fatalf("a refused amend wrote version %d", v)
			}
		})
	}

	// A shell loop feeding amend from stdin, as in the issue: each
	// iteration's amend must leave the loop's input alone.
	loop := exec.Command("sh", "-c", `printf 'first\nsecond\n' | while read note; do "$0" designations amend "$1" --note "$note" >/dev/null || exit 1; done`, watchfedBin, id)
	loop.Env = append(os.Environ(), n.env...)
	if out, err := loop.CombinedOutput(); err != nil {
		t.Fatalf("while-read loop: %v\n%s", err, out)
	}
	hist := decode[[]fullRec](t, n.ok("records", "history", id, "-o", "json"))
	if len(hist) != 5 || hist[3].ChangeNote != "first" || hist[4].ChangeNote != "second" {
		t.Fatalf("the loop made %d versions (want 5, notes first and second): %+v", len(hist), hist)
	}
	// Stdin that is not a terminal is no record document either.
	if res := n.cli(`{"subject":{"name":"EATEN"}}`, nil, "designations", "amend", id, "--note", "stdin ignored"); res.code != 0 || get(id).Subject.Name != "Ivan PETROV" {
		t.Fatalf("amend read stdin without --from-json: exit %d, name %q", res.code, get(id).Subject.Name)
	}

	// The whole record edited as JSON and given back with --from-json -.
	cur := n.ok("records", "get", id, "-o", "json")
	edited := strings.Replace(cur, `"name": "Ivan PETROV"`, `"name": "Ivan PETROVICH"`, 1)
	if edited == cur {
		edited = strings.Replace(cur, `"name":"Ivan PETROV"`, `"name":"Ivan PETROVICH"`, 1)
	}
	if res := n.cli(edited, nil, "designations", "amend", id, "--from-json", "-", "--note", "full document"); res.code != 0 {
		t.Fatalf("amend --from-json -: exit %d\n%s", res.code, res.stderr)
	}
	if r := get(id); r.Subject.Name != "Ivan PETROVICH" || !slices.Equal(aliasNames(r), []string{"Ivan Petrov", "Vanya"}) || r.ChangeNote != "full document" {
		t.Fatalf("after --from-json: %+v", r)
	}
}

// TestRecordJSONSize: a record document over 1 MiB is read whole (here a
// small record padded with JSON whitespace to 3 MiB); one over the limit
// is refused naming it, as is an empty one, with nothing written.
func TestRecordJSONSize(t *testing.T) {
	n := startDevNode(t, t.TempDir(), freeAddr(t))
	doc := `{"subject":{"schema":"SCHEMA_ORGANIZATION","name":"Padded Trading"}, ` + strings.Repeat(" ", 3<<20) +
		`"designation":{"program":"IRAN"},"marking":"MARKING_GREEN"}`
	r := n.cli(doc, nil, "designations", "add", "--from-json", "-", "-o", "json")
	if r.code != 0 || decode[rec](t, r.stdout).Subject.Name != "Padded Trading" {
		t.Fatalf("3 MiB document: exit %d\n%s", r.code, r.stderr)
	}

	path := filepath.Join(t.TempDir(), "huge.json")
	huge := append([]byte(`{"subject":{"name":"`), bytes.Repeat([]byte("A"), maxRecordJSON)...)
	huge = append(huge, `"}}`...)
	if err := os.WriteFile(path, huge, 0o600); err != nil {
		t.Fatal(err)
	}
	r = n.cli("", nil, "designations", "add", "--from-json", path)
	if r.code != exitUsage || !strings.Contains(r.stderr, "larger than 32 MiB, the limit of a record document") {
		t.Fatalf("oversized document: exit %d\n%s", r.code, r.stderr)
	}
	r = n.cli(" \n", nil, "designations", "add", "--from-json", "-")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--from-json -: empty: no record document") {
		t.Fatalf("empty document: exit %d\n%s", r.code, r.stderr)
	}
	if list := decode[[]rec](t, n.ok("records", "list", "--all", "-o", "json")); len(list) != 1 {
		t.Fatalf("%d records, want the padded one only", len(list))
	}
}

// TestDenialAmendParties: denial parties change by role, item by item.
func TestDenialAmendParties(t *testing.T) {
	n := startDevNode(t, t.TempDir(), freeAddr(t))
	d := decode[fullRec](t, n.ok("denials", "add", "--consignee", "Tech Trade LLC", "--item", "FPGA", "--control-list-entry", "3A001.a.1",
		"--destination", "IR", "--reason", "WMD", "--regime", "WASSENAAR", "--marking", "AMBER", "-o", "json"))
	r := decode[fullRec](t, n.ok("denials", "amend", d.ID, "--add-end-user", "Shahid Industrial Group", "--remove-consignee", "Tech Trade LLC",
		"--add-consignee", "Tech Trade FZE", "-o", "json"))
	var got []string
	for _, p := range r.Denial.Parties {
		got = append(got, p.Role+"="+p.Name)
	}
	if want := []string{"PARTY_ROLE_CONSIGNEE=Tech Trade FZE", "PARTY_ROLE_END_USER=Shahid Industrial Group"}; !slices.Equal(got, want) {
		t.Fatalf("parties %q, want %q", got, want)
	}
	if res := n.cli("", nil, "denials", "amend", d.ID, "--consignee", "X"); res.code != exitUsage || !strings.Contains(res.stderr, "--add-consignee") {
		t.Fatalf("--consignee on amend: exit %d\n%s", res.code, res.stderr)
	}
}

// TestUsageErrorsExit2: every usage error exits 2, as the README promises.
func TestUsageErrorsExit2(t *testing.T) {
	n := &devNode{t: t}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate" for "watchfed"`},
		{"unknown subcommand", []string{"designations", "frobnicate"}, `unknown command "frobnicate" for "watchfed designations"`},
		{"unknown flag", []string{"records", "list", "--bogus"}, "unknown flag: --bogus"},
		{"bad flag value", []string{"records", "list", "--limit", "many"}, `invalid argument "many" for "--limit"`},
		{"missing required flag", []string{"import", "sdn.csv"}, `required flag(s) "format" not set`},
		{"too few arguments", []string{"records", "get"}, "accepts 1 arg(s), received 0"},
		{"too many arguments", []string{"records", "list", "extra"}, `unknown command "extra"`},
		{"missing reason", []string{"designations", "delist", "DEV/01J"}, "--reason: must be given"},
		{"testnet restart without agency", []string{"testnet", "restart"}, "accepts 1 arg(s), received 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := n.cli("", nil, c.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("watchfed %s: exit %d, want %d with %q\n%s", strings.Join(c.args, " "), r.code, exitUsage, c.want, r.stderr)
			}
		})
	}
}
