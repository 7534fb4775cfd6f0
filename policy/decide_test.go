package policy

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func testPolicy(t *testing.T) *Policy {
	t.Helper()
	p, err := Load("testdata/good.yaml", Options{ValidID: validID, Members: members})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func designationRec(marking pb.Marking, program string) *pb.Record {
	return &pb.Record{
		Id: "DE-BAFA/01J", Version: 1, Kind: pb.Kind_KIND_DESIGNATION, Origin: "DE-BAFA", Marking: marking,
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_PERSON, Name: "Ivan PETROV", BirthDates: []string{"1965"},
			Addresses: []*pb.Address{{City: "Moscow", Country: "RU"}}},
		Detail: &pb.Record_Designation{Designation: &pb.Designation{Program: program, Statement: "owns the bank"}},
	}
}

func denialRec(marking pb.Marking, regime, dest string) *pb.Record {
	return &pb.Record{
		Id: "DE-BAFA/01K", Version: 2, Kind: pb.Kind_KIND_DENIAL, Origin: "DE-BAFA", Marking: marking,
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: "Tech Trade LLC"},
		Detail:  &pb.Record_Denial{Denial: &pb.Denial{Regime: regime, Destination: dest, EndUse: "missile guidance", ControlListEntry: "3A001.a.1"}},
	}
}

// anyDestination makes a denial an order binding any destination.
func anyDestination(r *pb.Record) *pb.Record {
	r.GetDenial().AnyDestination = true
	return r
}

func TestDecide(t *testing.T) {
	p := testPolicy(t)
	withRel := designationRec(pb.Marking_MARKING_GREEN, "IRAN")
	withRel.RelTo = []string{"FR-SBDU"}
	received := designationRec(pb.Marking_MARKING_GREEN, "IRAN")
	received.Origin = "FR-SBDU"
	local := designationRec(pb.Marking_MARKING_GREEN, "IRAN")
	local.Local = true
	for _, tc := range []struct {
		name     string
		rec      *pb.Record
		partner  string
		share    bool
		marking  pb.Marking
		orcon    bool
		redacted []string
		reason   string
	}{
		{"full designation to FR redacted", designationRec(pb.Marking_MARKING_AMBER, "IRAN"), "FR-SBDU", true, pb.Marking_MARKING_AMBER, false, []string{"addresses", "statement"}, "redacted: addresses, statement"},
		{"above max marking", designationRec(pb.Marking_MARKING_AMBER_STRICT, "IRAN"), "FR-SBDU", false, 0, false, nil, "marking AMBER+STRICT is above max_marking AMBER"},
		{"US gets green designation whole", designationRec(pb.Marking_MARKING_GREEN, "IRAN"), "US-BIS", true, pb.Marking_MARKING_GREEN, false, nil, "marking GREEN is within max_marking GREEN"},
		{"US excluded programme", designationRec(pb.Marking_MARKING_GREEN, "NATIONAL-ONLY"), "US-BIS", false, 0, false, nil, "programme NATIONAL-ONLY is excluded"},
		{"US no denials", denialRec(pb.Marking_MARKING_CLEAR, "WASSENAAR", "IR"), "US-BIS", false, 0, false, nil, "kind denial is not in kinds of US-BIS (line 9)"},
		{"NL denial narrowed with ORCON", denialRec(pb.Marking_MARKING_GREEN, "MTCR", "IR"), "NL-CDIU", true, pb.Marking_MARKING_AMBER, true, nil, "marking narrowed from GREEN to AMBER"},
		{"NL never widened", denialRec(pb.Marking_MARKING_AMBER_STRICT, "MTCR", "IR"), "NL-CDIU", true, pb.Marking_MARKING_AMBER_STRICT, true, nil, "regime MTCR is included"},
		{"NL other regime", denialRec(pb.Marking_MARKING_GREEN, "NSG", "IR"), "NL-CDIU", false, 0, false, nil, `regime "NSG" is not among WASSENAAR, MTCR`},
		{"NL excluded destination", denialRec(pb.Marking_MARKING_GREEN, "MTCR", "NL"), "NL-CDIU", false, 0, false, nil, "destination NL is excluded"},
		{"NL order for any destination, NL excluded", anyDestination(denialRec(pb.Marking_MARKING_GREEN, "MTCR", "IR")), "NL-CDIU", false, 0, false, nil, "the order binds any destination, NL among them, and that is excluded"},
		{"FR order for any destination", anyDestination(denialRec(pb.Marking_MARKING_GREEN, "MTCR", "IR")), "FR-SBDU", true, pb.Marking_MARKING_GREEN, false, []string{"addresses"}, "marking GREEN is within max_marking AMBER"},
		{"partner not named", designationRec(pb.Marking_MARKING_CLEAR, "IRAN"), "IT-UAMA", false, 0, false, nil, "default deny: the policy has no block for IT-UAMA"},
		{"rel_to excludes US", withRel, "US-BIS", false, 0, false, nil, "releasable only to FR-SBDU"},
		{"rel_to includes FR", withRel, "FR-SBDU", true, pb.Marking_MARKING_GREEN, false, []string{"addresses", "statement"}, "releasable to FR-SBDU"},
		{"third-party rule", received, "US-BIS", false, 0, false, nil, "third-party rule: FR-SBDU originated this record"},
		{"local-only", local, "US-BIS", false, 0, false, nil, "record is local-only"},
		{"unset marking counts as RED", designationRec(pb.Marking_MARKING_UNSPECIFIED, "IRAN"), "FR-SBDU", false, 0, false, nil, "marking RED is above max_marking AMBER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(tc.rec, tc.partner)
			if d.Share != tc.share {
				t.Fatalf("share = %v, want %v (reasons %q)", d.Share, tc.share, d.Reasons)
			}
			if !slices.ContainsFunc(d.Reasons, func(r string) bool { return strings.Contains(r, tc.reason) }) {
				t.Fatalf("reasons %q lack %q", d.Reasons, tc.reason)
			}
			if !tc.share {
				return
			}
			if d.Marking != tc.marking || d.OriginatorControl != tc.orcon || !slices.Equal(d.Redacted, tc.redacted) {
				t.Fatalf("marking %v orcon %v redacted %v", d.Marking, d.OriginatorControl, d.Redacted)
			}
			body := d.Body(tc.rec)
			if body.Marking != tc.marking || body.Subject.Name != tc.rec.Subject.Name {
				t.Fatalf("body marking %v name %q", body.Marking, body.Subject.Name)
			}
		})
	}
}

func TestRedactRemovesFromMessage(t *testing.T) {
	rec := designationRec(pb.Marking_MARKING_GREEN, "IRAN")
	got := Redact(rec, []string{"statement", "addresses", "birth_dates"})
	if got.GetDesignation().Statement != "" || len(got.Subject.Addresses) != 0 || len(got.Subject.BirthDates) != 0 {
		t.Fatalf("not redacted: %v", got)
	}
	if rec.GetDesignation().Statement == "" || got.Subject.Name != "Ivan PETROV" || got.GetDesignation().Program != "IRAN" {
		t.Fatal("redaction touched the original or a kept field")
	}
}

// randomRecord fills every redactable field with a token unique to it, so
// a test can find any trace of that field in the sealed bytes.
func randomRecord(r *rand.Rand) *pb.Record {
	tok := func(f string) string { return "TOK-" + f + "-" + fmt.Sprint(r.Uint32()) }
	rec := &pb.Record{
		Id: "DE-BAFA/X", Version: uint64(r.IntN(5) + 1), Origin: "DE-BAFA",
		Marking:           pb.Marking(r.IntN(6)),
		OriginatorControl: r.IntN(4) == 0,
		ChangeNote:        tok("change_note"), SourceRef: tok("source_ref"), UpdatedBy: tok("updated_by"),
		Subject: &pb.Subject{Name: "NAME", Aliases: []*pb.Alias{{Name: tok("aliases")}},
			Identifiers: []*pb.Identifier{{Value: tok("identifiers")}}, BirthDates: []string{tok("birth_dates")},
			Nationalities: []string{tok("nationalities")}, Countries: []string{tok("countries")},
			Addresses: []*pb.Address{{Street: tok("addresses")}}},
	}
	if r.IntN(3) == 0 {
		rec.RelTo = []string{pool[r.IntN(len(pool))]}
	}
	if r.IntN(2) == 0 {
		rec.Kind = pb.Kind_KIND_DESIGNATION
		rec.Detail = &pb.Record_Designation{Designation: &pb.Designation{Program: programs[r.IntN(len(programs))],
			LegalBasis: tok("legal_basis"), Measures: []string{tok("measures")}, Statement: tok("statement"), DelistingReason: tok("delisting_reason")}}
	} else {
		rec.Kind = pb.Kind_KIND_DENIAL
		rec.Detail = &pb.Record_Denial{Denial: &pb.Denial{Regime: programs[r.IntN(len(programs))], Destination: "IR",
			Item: tok("item"), EndUse: tok("end_use"), Reason: tok("reason"), Parties: []*pb.Party{{Name: tok("parties")}}, StatusReason: tok("status_reason")}}
	}
	return rec
}

var (
	pool     = []string{"FR-SBDU", "US-BIS", "NL-CDIU", "IT-UAMA", "ES-SGCE"}
	programs = []string{"IRAN", "RUSSIA", "WASSENAAR", "MTCR"}
)

func pick[T any](r *rand.Rand, from []T) []T {
	var out []T
	for _, v := range from {
		if r.IntN(2) == 0 {
			out = append(out, v)
		}
	}
	return out
}

// randomPolicy writes a random but valid policy file and parses it, so the
// property covers the parser and the engine together.
func randomPolicy(t *testing.T, r *rand.Rand) *Policy {
	var b strings.Builder
	b.WriteString("agency: DE-BAFA\ndefault: deny\npartners:\n")
	markings := []string{"CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"}
	for _, id := range pick(r, pool) {
		kinds := pick(r, []string{"designation", "denial"})
		if len(kinds) == 0 {
			kinds = []string{"designation"}
		}
		max := r.IntN(5)
		fmt.Fprintf(&b, "  %s:\n    kinds: [%s]\n    max_marking: %s\n", id, strings.Join(kinds, ", "), markings[max])
		if r.IntN(2) == 0 {
			fmt.Fprintf(&b, "    marking: %s\n", markings[r.IntN(max+1)])
		}
		if r.IntN(3) == 0 {
			b.WriteString("    originator_control: true\n")
		}
		if slices.Contains(kinds, "designation") && r.IntN(2) == 0 {
			fmt.Fprintf(&b, "    exclude_programs: [%s]\n", programs[r.IntN(len(programs))])
		}
		var fields []string
		for _, f := range redactable {
			for _, k := range kinds {
				kk, _ := ParseKind(k)
				if slices.Contains(f.kinds, kk) && !slices.Contains(fields, f.name) {
					fields = append(fields, f.name)
				}
			}
		}
		if red := pick(r, fields); len(red) > 0 {
			fmt.Fprintf(&b, "    redact: [%s]\n", strings.Join(red, ", "))
		}
	}
	p, err := Parse("random.yaml", []byte(b.String()), Options{ValidID: validID})
	if err != nil {
		t.Fatalf("random policy refused: %v\n%s", err, b.String())
	}
	return p
}

// For random records and random policies a decision never widens the
// marking, never includes a redacted field, never shares to a partner the
// policy does not name.
func TestDecideProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 2026))
	for i := 0; i < 3000; i++ {
		p := randomPolicy(t, r)
		rec := randomRecord(r)
		for _, partner := range append(slices.Clone(pool), "DE-BAFA") {
			d := p.Decide(rec, partner)
			if !d.Share {
				continue
			}
			pt := p.Partners[partner]
			if pt == nil {
				t.Fatalf("shared with %s, which the policy does not name:\n%s", partner, p.Source)
			}
			if d.Marking < effective(rec.Marking) {
				t.Fatalf("marking widened from %v to %v", rec.Marking, d.Marking)
			}
			if rec.OriginatorControl && !d.OriginatorControl {
				t.Fatal("originator control dropped")
			}
			data, err := d.Plaintext(rec)
			if err != nil {
				t.Fatal(err)
			}
			// The bytes are the body's, whether or not Plaintext copied the record.
			if want, _ := (proto.MarshalOptions{Deterministic: true}).Marshal(d.Body(rec)); !bytes.Equal(data, want) {
				t.Fatalf("plaintext for %s differs from its body's encoding", partner)
			}
			body := &pb.Record{}
			if err := proto.Unmarshal(data, body); err != nil || body.Marking < effective(rec.Marking) {
				t.Fatalf("sealed body marking %v from %v (%v)", body.Marking, rec.Marking, err)
			}
			for _, f := range pt.Redact {
				if bytes.Contains(data, []byte("TOK-"+f+"-")) {
					t.Fatalf("redacted field %s is in the body for %s", f, partner)
				}
			}
			for _, f := range d.Kept {
				if !bytes.Contains(data, []byte("TOK-"+f+"-")) {
					t.Fatalf("kept field %s is missing from the body", f)
				}
			}
		}
	}
}

func TestConsumerMayGet(t *testing.T) {
	for m, want := range map[pb.Marking]bool{pb.Marking_MARKING_CLEAR: true, pb.Marking_MARKING_GREEN: true, pb.Marking_MARKING_AMBER: true,
		pb.Marking_MARKING_AMBER_STRICT: false, pb.Marking_MARKING_RED: false, pb.Marking_MARKING_UNSPECIFIED: false} {
		if got := ConsumerMayGet(&pb.Record{Marking: m}); got != want {
			t.Errorf("%v: %v", m, got)
		}
	}
	if ConsumerMayGet(&pb.Record{Marking: pb.Marking_MARKING_GREEN, OriginatorControl: true}) {
		t.Error("originator-controlled entry reached a consumer")
	}
}

// BenchmarkDecidePlaintext is the policy's cost per record and partner at
// publication: a decision and the redacted body's bytes.
func BenchmarkDecidePlaintext(b *testing.B) {
	p, err := Load("testdata/good.yaml", Options{ValidID: validID})
	if err != nil {
		b.Fatal(err)
	}
	rec := randomRecord(rand.New(rand.NewPCG(1, 2)))
	rec.Marking, rec.RelTo, rec.OriginatorControl = pb.Marking_MARKING_GREEN, nil, false
	for b.Loop() {
		for _, partner := range []string{"FR-SBDU", "US-BIS", "NL-CDIU"} {
			if d := p.Decide(rec, partner); d.Share {
				if _, err := d.Plaintext(rec); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

// TestSelectsEvery: an order binding any destination is for every
// destination a partner's lists name.
func TestSelectsEvery(t *testing.T) {
	for _, tc := range []struct {
		name             string
		include, exclude []string
		share            bool
		reason           string
	}{
		{"no lists", nil, nil, true, ""},
		{"every destination", []string{"*"}, nil, true, ""},
		{"some destinations", []string{"CN", "RU"}, nil, true, "the order binds any destination, CN, RU among them, and that is included"},
		{"an exclusion", nil, []string{"NL"}, false, "the order binds any destination, NL among them, and that is excluded"},
		{"both", []string{"CN"}, []string{"NL"}, false, "NL among them, and that is excluded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pt := &Partner{Destinations: tc.include, ExcludeDestinations: tc.exclude}
			r, ok := pt.selectsEvery("destination", "US", &pt.Destinations, &pt.ExcludeDestinations)
			if ok != tc.share || !strings.Contains(r, tc.reason) || (tc.reason == "" && r != "") {
				t.Fatalf("selectsEvery = %q, %v; want %v and %q", r, ok, tc.share, tc.reason)
			}
		})
	}
}
