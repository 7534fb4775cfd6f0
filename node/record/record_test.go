package record

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func validDesignation() *pb.Record {
	return &pb.Record{
		Marking: pb.Marking_MARKING_GREEN,
		Subject: &pb.Subject{
			Schema: pb.Schema_SCHEMA_PERSON, Name: "Ivan PETROV",
			Aliases:     []*pb.Alias{{Name: "Иван Петров", Script: "Cyrl"}},
			Identifiers: []*pb.Identifier{{Type: pb.IdentifierType_IDENTIFIER_TYPE_PASSPORT, Value: "7512345678", Country: "ru"}},
			BirthDates:  []string{"1965"},
			Countries:   []string{"ru"},
		},
		Detail: &pb.Record_Designation{Designation: &pb.Designation{Program: "RUSSIA-EO14024", ListedOn: "2024-02-23"}},
	}
}

func validDenial() *pb.Record {
	return &pb.Record{
		Marking: pb.Marking_MARKING_AMBER,
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: "Tech Trade LLC"},
		Detail: &pb.Record_Denial{Denial: &pb.Denial{
			ControlListEntry: "3a001.a.1", Item: "FPGA", Destination: "ir", DeniedOn: "2026-01-15",
			Parties: []*pb.Party{{Role: pb.PartyRole_PARTY_ROLE_CONSIGNEE, Name: "Tech Trade LLC"}},
		}},
	}
}

func TestNormalizeDefaults(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	d := validDenial()
	Normalize(d, now)
	den := d.GetDenial()
	if d.Kind != pb.Kind_KIND_DENIAL || den.Status != pb.DenialStatus_DENIAL_STATUS_DENIED || den.ReviewBy != "2029-01-15" ||
		den.Destination != "IR" || den.ControlListEntry != "3A001.a.1" {
		t.Fatalf("denial defaults: kind %v status %v review %q dest %q cle %q", d.Kind, den.Status, den.ReviewBy, den.Destination, den.ControlListEntry)
	}
	r := validDesignation()
	r.GetDesignation().ListedOn = ""
	Normalize(r, now)
	if r.GetDesignation().ListedOn != "2026-11-22" || r.GetDesignation().Status != pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE ||
		r.Subject.Aliases[0].Strength != pb.NameStrength_NAME_STRENGTH_STRONG || r.Subject.Countries[0] != "RU" {
		t.Fatalf("designation defaults: %v", r)
	}
}

func TestValidate(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name   string
		mutate func(*pb.Record)
		base   func() *pb.Record
		fields []string // every one must be named; none means valid
	}{
		{"valid designation", func(*pb.Record) {}, validDesignation, nil},
		{"valid denial", func(*pb.Record) {}, validDenial, nil},
		{"empty name and bad country", func(r *pb.Record) { r.Subject.Name = ""; r.Subject.Countries = []string{"QQ"} }, validDesignation,
			[]string{"subject.name", "subject.countries[0]"}},
		{"impossible birth date", func(r *pb.Record) { r.Subject.BirthDates = []string{"1965", "1965-02-30", "65"} }, validDesignation,
			[]string{"subject.birth_dates[1]", "subject.birth_dates[2]"}},
		{"unknown schema", func(r *pb.Record) { r.Subject.Schema = 42 }, validDesignation, []string{"subject.schema"}},
		{"no marking", func(r *pb.Record) { r.Marking = 0 }, validDesignation, []string{"marking"}},
		{"bad alias", func(r *pb.Record) {
			r.Subject.Aliases = append(r.Subject.Aliases, &pb.Alias{Name: "a\x00b", Script: "cyrillic"})
		}, validDesignation,
			[]string{"subject.aliases[1].name", "subject.aliases[1].script"}},
		{"bad IMO check digit", func(r *pb.Record) {
			r.Subject.Identifiers = []*pb.Identifier{{Type: pb.IdentifierType_IDENTIFIER_TYPE_IMO, Value: "9176188"}}
		}, validDesignation, []string{"subject.identifiers[0].value"}},
		{"good IMO", func(r *pb.Record) {
			r.Subject.Identifiers = []*pb.Identifier{{Type: pb.IdentifierType_IDENTIFIER_TYPE_IMO, Value: "9176187"}}
		}, validDesignation, nil},
		{"no program", func(r *pb.Record) { r.GetDesignation().Program = "" }, validDesignation, []string{"designation.program"}},
		{"review before listing", func(r *pb.Record) { r.GetDesignation().ReviewBy = "2020-01-01" }, validDesignation, []string{"designation.review_by"}},
		{"delisted without reason", func(r *pb.Record) {
			r.GetDesignation().Status = pb.DesignationStatus_DESIGNATION_STATUS_DELISTED
			r.GetDesignation().DelistedOn = "2025-01-01"
		}, validDesignation, []string{"designation.delisting_reason"}},
		{"bad control-list entry", func(r *pb.Record) { r.GetDenial().ControlListEntry = "3Z9" }, validDenial, []string{"denial.control_list_entry"}},
		{"denial without parties", func(r *pb.Record) { r.GetDenial().Parties = nil }, validDenial, []string{"denial.parties"}},
		{"bad destination", func(r *pb.Record) { r.GetDenial().Destination = "Iran" }, validDenial, []string{"denial.destination"}},
		{"no detail", func(r *pb.Record) { r.Detail = nil }, validDesignation, []string{"detail"}},
		{"bad rel_to", func(r *pb.Record) { r.RelTo = []string{"fr sbdu"} }, validDesignation, []string{"rel_to[0]"}},
		{"oversized", func(r *pb.Record) {
			for i := 0; i < 40; i++ {
				r.Subject.Addresses = append(r.Subject.Addresses, &pb.Address{Street: strings.Repeat("x", 300), City: strings.Repeat("y", 250)})
			}
			r.GetDesignation().Statement = strings.Repeat("s", 9000)
		}, validDesignation, []string{"designation.statement", "subject.addresses[0].street"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.base()
			Normalize(r, now)
			tc.mutate(r)
			err := Validate(r)
			if len(tc.fields) == 0 {
				if err != nil {
					t.Fatalf("valid record rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid record accepted")
			}
			for _, f := range tc.fields {
				if !strings.Contains(err.Error(), f+":") {
					t.Errorf("error does not name %s: %v", f, err)
				}
			}
		})
	}
}

func TestControlListEntry(t *testing.T) {
	cases := []struct {
		in, canon string
		ok        bool
	}{
		{"3A001", "3A001", true}, {"3a001.a.1", "3A001.a.1", true}, {"5A002.a.1.b", "5A002.a.1.b", true},
		{"9A610.x", "9A610.x", true}, {"ML10.a", "ML10.a", true}, {"ML22.b.1", "ML22.b.1", true}, {"all", "ALL", true},
		{"3Z001", "", false}, {"3A01", "", false}, {"3A001.1", "", false}, {"3A001.a.b", "", false}, {"", "", false}, {"3A001.", "", false},
	}
	for _, tc := range cases {
		c, err := ParseControlListEntry(tc.in)
		if (err == nil) != tc.ok || (tc.ok && c.String() != tc.canon) {
			t.Errorf("ParseControlListEntry(%q) = %q, %v", tc.in, c, err)
		}
	}
	within := []struct {
		child, parent string
		want          bool
	}{
		{"3A001.a.1", "3A001", true}, {"3A001.a.1", "3A001.a", true}, {"3A001.a.1", "3A001.a.1", true},
		{"3A001.a.1", "3A002", false}, {"3A001", "3A001.a", false}, {"3A001.a.12", "3A001.a.1", false}, {"ML10", "ALL", true},
	}
	for _, tc := range within {
		c, _ := ParseControlListEntry(tc.child)
		p, _ := ParseControlListEntry(tc.parent)
		if got := c.Within(p); got != tc.want {
			t.Errorf("%s within %s = %v", tc.child, tc.parent, got)
		}
	}
}

func TestIDs(t *testing.T) {
	id := NewID("DE-BAFA", time.Now())
	agency, err := ParseID(id)
	if err != nil || agency != "DE-BAFA" {
		t.Fatalf("ParseID(%q) = %q, %v", id, agency, err)
	}
	for _, bad := range []string{"DE-BAFA", "de/01J", "DE-BAFA/notaulid"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
	if !ValidLEI("5493001KJTIIGC8Y1R12") || ValidLEI("5493001KJTIIGC8Y1R13") {
		t.Error("LEI check digits")
	}
}

func FuzzParseControlListEntry(f *testing.F) {
	for _, s := range []string{"3A001.a.1", "ML10.a", "ALL", "3Z", ".."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseControlListEntry(s)
		if err != nil {
			return
		}
		// The canonical form parses to itself.
		c2, err := ParseControlListEntry(c.String())
		if err != nil || c2.String() != c.String() {
			t.Fatalf("%q → %q does not round-trip: %v", s, c, err)
		}
	})
}

func FuzzValidate(f *testing.F) {
	for _, r := range []*pb.Record{validDesignation(), validDenial()} {
		b, _ := protojson.Marshal(r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &pb.Record{}
		if protojson.Unmarshal(data, r) != nil {
			return
		}
		before := proto.Clone(r)
		_ = Validate(r) // must not panic, must not change the record
		if !proto.Equal(before, r) {
			t.Fatal("Validate changed the record")
		}
	})
}
