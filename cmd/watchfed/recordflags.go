package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/watchfed/watchfed/policy"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// maxRecordJSON bounds a record document read by --from-json: far above
// any record the node accepts, well under its 64 MiB message limit.
const maxRecordJSON = 32 << 20

// recordFlags is the content of a record as flags, for `add` and `amend`.
// Only flags the user set are applied, so `amend` changes exactly what was
// given: a scalar flag sets its field; a list field is set whole by `add`
// (--alias A --alias B) and changed item by item by `amend` (--add-alias,
// --remove-alias), so an amendment never drops an item it did not name.
// A record document is read only with --from-json, never from stdin
// unasked (that would eat a `while read` loop's input).
type recordFlags struct {
	fromJSON string
	amend    bool
	// common
	schema, name, marking, note string
	originatorControl, local    bool
	// designation
	program, legalBasis, listedOn, reviewBy, statement string
	// denial
	item, cle, destination, endUse, reason, regime, deniedOn string
	// lists, by listField.name
	lists map[string]*listValues
}

// listValues are the values given for one list field: set (add), or
// added and removed (amend).
type listValues struct{ set, add, remove []string }

// listField is a repeated field of a record as the command line writes it.
type listField struct {
	name string  // --NAME on add, --add-NAME and --remove-NAME on amend
	help string  // what one item is
	kind pb.Kind // the kind of record it belongs to; unspecified: both
	ops  func(*pb.Record) listOps
}

const idHelp = "identifier TYPE:VALUE[:COUNTRY], TYPE one of passport, national-id, tax-id, registration-number, lei, imo, call-sign, other"

// listFields are every list field a record's flags reach, in the order
// they are applied.
var listFields = []listField{
	{"alias", "strong alias (any script)", 0, func(r *pb.Record) listOps { return aliasOps(r, pb.NameStrength_NAME_STRENGTH_STRONG) }},
	{"weak-alias", "weak alias: nickname, short form", 0, func(r *pb.Record) listOps { return aliasOps(r, pb.NameStrength_NAME_STRENGTH_WEAK) }},
	{"country", "ISO 3166 country code linked to the subject", 0, func(r *pb.Record) listOps { return stringOps(&r.Subject.Countries) }},
	{"nationality", "ISO 3166 nationality", 0, func(r *pb.Record) listOps { return stringOps(&r.Subject.Nationalities) }},
	{"birth-date", "birth date, possibly partial: 1965, 1965-03 or 1965-03-14", 0, func(r *pb.Record) listOps { return stringOps(&r.Subject.BirthDates) }},
	{"id", idHelp, 0, identifierOps},
	{"rel-to", "agency the record is releasable to (then to these only)", 0, func(r *pb.Record) listOps { return stringOps(&r.RelTo) }},
	{"measure", "measure, e.g. asset-freeze, travel-ban", pb.Kind_KIND_DESIGNATION, func(r *pb.Record) listOps { return stringOps(&r.GetDesignation().Measures) }},
	{"consignee", "consignee name", pb.Kind_KIND_DENIAL, func(r *pb.Record) listOps { return partyOps(r, pb.PartyRole_PARTY_ROLE_CONSIGNEE) }},
	{"end-user", "end-user name", pb.Kind_KIND_DENIAL, func(r *pb.Record) listOps { return partyOps(r, pb.PartyRole_PARTY_ROLE_END_USER) }},
	{"purchaser", "purchaser name", pb.Kind_KIND_DENIAL, func(r *pb.Record) listOps { return partyOps(r, pb.PartyRole_PARTY_ROLE_PURCHASER) }},
	{"intermediary", "intermediary name", pb.Kind_KIND_DENIAL, func(r *pb.Record) listOps { return partyOps(r, pb.PartyRole_PARTY_ROLE_INTERMEDIARY) }},
}

func (lf listField) appliesTo(kind pb.Kind) bool {
	return lf.kind == pb.Kind_KIND_UNSPECIFIED || lf.kind == kind
}

func (f *recordFlags) bind(cmd *cobra.Command, kind pb.Kind, amend bool) {
	f.amend = amend
	fl := cmd.Flags()
	fl.StringVar(&f.fromJSON, "from-json", "", "read the record as a JSON document from FILE ('-': stdin); the flags apply on top")
	fl.StringVarP(&f.fromJSON, "file", "f", "", "")
	_ = fl.MarkDeprecated("file", "use --from-json")
	fl.StringVar(&f.schema, "schema", "", "subject schema: person, organization, vessel, aircraft")
	fl.StringVar(&f.name, "name", "", "primary name of the subject")
	fl.StringVar(&f.marking, "marking", "", "TLP marking: CLEAR, GREEN, AMBER, AMBER+STRICT, RED")
	fl.BoolVar(&f.originatorControl, "originator-control", false, "recipients may not pass the record on without consent")
	fl.BoolVar(&f.local, "local", false, "local-only: national use, never leaves this node")
	fl.StringVar(&f.note, "note", "", "why this version is written (kept in the history)")
	if kind == pb.Kind_KIND_DESIGNATION {
		fl.StringVar(&f.program, "program", "", "programme or regime, e.g. RUSSIA-EO14024")
		fl.StringVar(&f.legalBasis, "legal-basis", "", "legal basis of the listing")
		fl.StringVar(&f.listedOn, "listed-on", "", "listing date YYYY-MM-DD (default today)")
		fl.StringVar(&f.reviewBy, "review-by", "", "sunset: review date YYYY-MM-DD")
		fl.StringVar(&f.statement, "statement", "", "statement of reasons")
	} else {
		fl.StringVar(&f.item, "item", "", "description of the item denied")
		fl.StringVar(&f.cle, "control-list-entry", "", "control-list entry, e.g. 3A001.a.1 (ALL for a denial of all items)")
		fl.StringVar(&f.destination, "destination", "", "ISO 3166 destination country")
		fl.StringVar(&f.endUse, "end-use", "", "stated end use")
		fl.StringVar(&f.reason, "reason", "", "reason code, e.g. WMD, MILITARY-END-USE, DIVERSION")
		fl.StringVar(&f.regime, "regime", "", "regime, e.g. WASSENAAR, NSG, AG, MTCR, EU-DUAL-USE")
		fl.StringVar(&f.deniedOn, "denied-on", "", "date of the refusal YYYY-MM-DD (default today)")
		fl.StringVar(&f.reviewBy, "review-by", "", "review date YYYY-MM-DD (default three years after --denied-on)")
	}
	f.lists = map[string]*listValues{}
	for _, lf := range listFields {
		if !lf.appliesTo(kind) {
			continue
		}
		v := &listValues{}
		f.lists[lf.name] = v
		if !amend {
			fl.StringArrayVar(&v.set, lf.name, nil, lf.help+" (repeatable)")
			continue
		}
		fl.StringArrayVar(&v.add, "add-"+lf.name, nil, "add this "+lf.help+" (repeatable)")
		fl.StringArrayVar(&v.remove, "remove-"+lf.name, nil, "remove this "+lf.help+" (repeatable)")
		// Known, so that its use is explained rather than "unknown flag".
		fl.StringArrayVar(&v.set, lf.name, nil, "")
		_ = fl.MarkHidden(lf.name)
	}
}

// readJSON returns the record given with --from-json, or nil without it.
func (f *recordFlags) readJSON(cmd *cobra.Command) (*pb.Record, error) {
	var r io.Reader
	switch f.fromJSON {
	case "":
		return nil, nil
	case "-":
		r = cmd.InOrStdin()
	default:
		fh, err := os.Open(f.fromJSON)
		if err != nil {
			return nil, usagef("--from-json: %v", err)
		}
		defer fh.Close()
		r = fh
	}
	data, err := io.ReadAll(io.LimitReader(r, maxRecordJSON+1))
	if err != nil {
		return nil, fmt.Errorf("read --from-json %s: %w", f.fromJSON, err)
	}
	if len(data) > maxRecordJSON {
		return nil, usagef("--from-json %s: larger than %d MiB, the limit of a record document", f.fromJSON, maxRecordJSON>>20)
	}
	if strings.TrimSpace(string(data)) == "" {
		return nil, usagef("--from-json %s: empty: no record document", f.fromJSON)
	}
	rec := &pb.Record{}
	if err := protojson.Unmarshal(data, rec); err != nil {
		return nil, usagef("--from-json %s: record JSON: %v", f.fromJSON, err)
	}
	return rec, nil
}

// apply writes the flags the user set onto rec.
func (f *recordFlags) apply(cmd *cobra.Command, rec *pb.Record, kind pb.Kind) error {
	set := cmd.Flags().Changed
	if rec.Subject == nil {
		rec.Subject = &pb.Subject{}
	}
	s := rec.Subject
	if set("schema") {
		v, ok := pb.Schema_value["SCHEMA_"+strings.ToUpper(f.schema)]
		if !ok || v == 0 {
			return usagef("--schema: %q is not person, organization, vessel or aircraft", f.schema)
		}
		s.Schema = pb.Schema(v)
	}
	if set("name") {
		s.Name = f.name
	}
	if set("marking") {
		m, err := policy.ParseMarking(f.marking)
		if err != nil {
			return usagef("--marking: %v", err)
		}
		rec.Marking = m
	}
	if set("originator-control") {
		rec.OriginatorControl = f.originatorControl
	}
	if set("local") {
		rec.Local = f.local
	}
	if set("note") {
		rec.ChangeNote = f.note
	}
	if kind == pb.Kind_KIND_DESIGNATION {
		f.applyDesignation(set, rec)
	} else {
		f.applyDenial(set, rec)
	}
	for _, lf := range listFields {
		if lf.appliesTo(kind) {
			if err := f.applyList(set, lf, rec); err != nil {
				return err
			}
		}
	}
	if d := rec.GetDenial(); d != nil {
		// The subject of a denial is its main denied party unless named otherwise.
		if s.Name == "" && len(d.Parties) > 0 {
			s.Name = d.Parties[0].Name
		}
		if s.Schema == pb.Schema_SCHEMA_UNSPECIFIED {
			s.Schema = pb.Schema_SCHEMA_ORGANIZATION
		}
	}
	return nil
}

// applyList sets a list field whole (add), or removes then adds the items
// named (amend). Removing an item the record lacks, or adding one it has,
// is refused: the amendment would not do what was asked.
func (f *recordFlags) applyList(set func(string) bool, lf listField, rec *pb.Record) error {
	v := f.lists[lf.name]
	ops := lf.ops(rec)
	if !f.amend {
		if !set(lf.name) {
			return nil
		}
		ops.clear()
		for _, x := range v.set {
			if err := ops.add(x); err != nil {
				return err
			}
		}
		return nil
	}
	if set(lf.name) {
		return usagef("--%s: amend changes only what it names: use --add-%s VALUE or --remove-%s VALUE (repeatable)", lf.name, lf.name, lf.name)
	}
	for _, x := range v.remove {
		found, err := ops.remove(x)
		if err != nil {
			return err
		}
		if !found {
			return usagef("--remove-%s %q: the record has no such %s (it has: %s)", lf.name, x, lf.name, listed(ops.keys()))
		}
	}
	for _, x := range v.add {
		if found, err := ops.has(x); err != nil {
			return err
		} else if found {
			return usagef("--add-%s %q: the record has it already", lf.name, x)
		}
		if err := ops.add(x); err != nil {
			return err
		}
	}
	return nil
}

func listed(keys []string) string {
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, ", ")
}

func (f *recordFlags) applyDesignation(set func(string) bool, rec *pb.Record) {
	d := rec.GetDesignation()
	if d == nil {
		d = &pb.Designation{}
		rec.Detail = &pb.Record_Designation{Designation: d}
	}
	for flag, p := range map[string]*string{"program": &d.Program, "legal-basis": &d.LegalBasis, "listed-on": &d.ListedOn, "review-by": &d.ReviewBy, "statement": &d.Statement} {
		if set(flag) {
			*p = map[string]string{"program": f.program, "legal-basis": f.legalBasis, "listed-on": f.listedOn, "review-by": f.reviewBy, "statement": f.statement}[flag]
		}
	}
}

func (f *recordFlags) applyDenial(set func(string) bool, rec *pb.Record) {
	d := rec.GetDenial()
	if d == nil {
		d = &pb.Denial{}
		rec.Detail = &pb.Record_Denial{Denial: d}
	}
	strs := map[string]*string{"item": &d.Item, "control-list-entry": &d.ControlListEntry, "destination": &d.Destination, "end-use": &d.EndUse,
		"reason": &d.Reason, "regime": &d.Regime, "denied-on": &d.DeniedOn, "review-by": &d.ReviewBy}
	vals := map[string]string{"item": f.item, "control-list-entry": f.cle, "destination": f.destination, "end-use": f.endUse,
		"reason": f.reason, "regime": f.regime, "denied-on": f.deniedOn, "review-by": f.reviewBy}
	for flag, p := range strs {
		if set(flag) {
			*p = vals[flag]
		}
	}
}

// listOps edit the items of one list field of a record.
type listOps struct {
	keys   func() []string                // the items as the command line writes them
	has    func(arg string) (bool, error) // an item matches arg
	remove func(arg string) (bool, error) // remove the first item matching arg
	add    func(arg string) error
	clear  func()
}

// sliceOps edits the items of *s that sel selects (all others are kept in
// place): key writes one, parse reads one, match says whether one is the
// item an argument names.
func sliceOps[T any](s *[]T, sel func(T) bool, key func(T) string, parse func(string) (T, error), match func(T, string) (bool, error)) listOps {
	find := func(arg string) (int, error) {
		for i, x := range *s {
			if !sel(x) {
				continue
			}
			if ok, err := match(x, arg); err != nil || ok {
				return i, err
			}
		}
		return -1, nil
	}
	return listOps{
		keys: func() []string {
			var out []string
			for _, x := range *s {
				if sel(x) {
					out = append(out, key(x))
				}
			}
			return out
		},
		has: func(arg string) (bool, error) {
			i, err := find(arg)
			return i >= 0, err
		},
		remove: func(arg string) (bool, error) {
			i, err := find(arg)
			if i >= 0 {
				*s = slices.Delete(*s, i, i+1)
			}
			return i >= 0, err
		},
		add: func(arg string) error {
			x, err := parse(arg)
			if err == nil {
				*s = append(*s, x)
			}
			return err
		},
		clear: func() { *s = slices.DeleteFunc(*s, sel) },
	}
}

func stringOps(s *[]string) listOps {
	return sliceOps(s, func(string) bool { return true }, func(x string) string { return x },
		func(a string) (string, error) { return a, nil }, func(x, a string) (bool, error) { return x == a, nil })
}

func aliasOps(r *pb.Record, strength pb.NameStrength) listOps {
	return sliceOps(&r.Subject.Aliases, func(a *pb.Alias) bool { return a.Strength == strength }, (*pb.Alias).GetName,
		func(n string) (*pb.Alias, error) { return &pb.Alias{Name: n, Strength: strength}, nil },
		func(a *pb.Alias, n string) (bool, error) { return a.Name == n, nil })
}

func partyOps(r *pb.Record, role pb.PartyRole) listOps {
	d := r.GetDenial()
	return sliceOps(&d.Parties, func(p *pb.Party) bool { return p.Role == role }, (*pb.Party).GetName,
		func(n string) (*pb.Party, error) { return &pb.Party{Role: role, Name: n, Country: d.Destination}, nil },
		func(p *pb.Party, n string) (bool, error) { return p.Name == n, nil })
}

// identifierOps: an identifier is removed by TYPE:VALUE, and by its
// country too if one is given.
func identifierOps(r *pb.Record) listOps {
	return sliceOps(&r.Subject.Identifiers, func(*pb.Identifier) bool { return true }, formatIdentifier, parseIdentifier,
		func(id *pb.Identifier, arg string) (bool, error) {
			want, err := parseIdentifier(arg)
			if err != nil {
				return false, err
			}
			return id.Type == want.Type && id.Value == want.Value && (want.Country == "" || id.Country == want.Country), nil
		})
}

func formatIdentifier(id *pb.Identifier) string {
	s := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(id.Type.String(), "IDENTIFIER_TYPE_"), "_", "-")) + ":" + id.Value
	if id.Country != "" {
		s += ":" + id.Country
	}
	return s
}

func parseIdentifier(raw string) (*pb.Identifier, error) {
	parts := strings.SplitN(raw, ":", 3)
	if len(parts) < 2 || parts[1] == "" {
		return nil, usagef("--id %q: want TYPE:VALUE[:COUNTRY]", raw)
	}
	t := strings.ToUpper(strings.ReplaceAll(parts[0], "-", "_"))
	v, ok := pb.IdentifierType_value["IDENTIFIER_TYPE_"+t]
	if !ok || v == 0 {
		return nil, usagef("--id %q: type %q is not passport, national-id, tax-id, registration-number, lei, imo, call-sign or other", raw, parts[0])
	}
	id := &pb.Identifier{Type: pb.IdentifierType(v), Value: parts[1]}
	if len(parts) == 3 {
		id.Country = parts[2]
	}
	return id, nil
}
