package importer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/watchfed/watchfed/node/record"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

type ftmEntity struct {
	ID         string              `json:"id"`
	Schema     string              `json:"schema"`
	Properties map[string][]string `json:"properties"`
}

var ftmSchemas = map[string]pb.Schema{
	"Person": pb.Schema_SCHEMA_PERSON, "Company": pb.Schema_SCHEMA_ORGANIZATION, "Organization": pb.Schema_SCHEMA_ORGANIZATION,
	"LegalEntity": pb.Schema_SCHEMA_ORGANIZATION, "PublicBody": pb.Schema_SCHEMA_ORGANIZATION,
	"Vessel": pb.Schema_SCHEMA_VESSEL, "Airplane": pb.Schema_SCHEMA_AIRCRAFT,
}

// ftmIdentifiers are the identifier properties, in a fixed order so that
// importing the same file twice gives the same record.
var ftmIdentifiers = []struct {
	prop string
	t    pb.IdentifierType
}{
	{"passportNumber", pb.IdentifierType_IDENTIFIER_TYPE_PASSPORT}, {"idNumber", pb.IdentifierType_IDENTIFIER_TYPE_NATIONAL_ID},
	{"innCode", pb.IdentifierType_IDENTIFIER_TYPE_TAX_ID}, {"taxNumber", pb.IdentifierType_IDENTIFIER_TYPE_TAX_ID},
	{"registrationNumber", pb.IdentifierType_IDENTIFIER_TYPE_REGISTRATION_NUMBER}, {"ogrnCode", pb.IdentifierType_IDENTIFIER_TYPE_REGISTRATION_NUMBER},
	{"leiCode", pb.IdentifierType_IDENTIFIER_TYPE_LEI}, {"imoNumber", pb.IdentifierType_IDENTIFIER_TYPE_IMO},
	{"callSign", pb.IdentifierType_IDENTIFIER_TYPE_CALL_SIGN}, {"mmsi", pb.IdentifierType_IDENTIFIER_TYPE_MMSI},
}

// ParseFTM reads FollowTheMoney entities as JSON lines (OpenSanctions'
// export). Persons, companies, organisations, vessels and airplanes become
// designations; Sanction entities give their programme and listing date;
// other schemas (ownership, addresses, family links) are skipped.
func ParseFTM(source string, r io.Reader) (*Result, error) {
	res := &Result{Source: source}
	type line struct {
		n int
		e ftmEntity
	}
	var subjects []line
	sanctions := map[string][]ftmEntity{}
	// Addresses and passports are entities of their own that name their
	// subject (OpenSanctions' export): read whole first, then joined.
	addresses := map[string]ftmEntity{}
	passports := map[string][]ftmEntity{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		raw := strings.TrimSpace(sc.Text())
		if raw == "" {
			continue
		}
		var e ftmEntity
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			res.reject(n, "", "not a JSON entity: %v", err)
			continue
		}
		if e.ID == "" || e.Schema == "" {
			res.reject(n, "", "id and schema are required")
			continue
		}
		switch {
		case e.Schema == "Sanction":
			for _, ent := range e.Properties["entity"] {
				sanctions[ent] = append(sanctions[ent], e)
			}
		case e.Schema == "Address":
			addresses[e.ID] = e
		case e.Schema == "Passport" || e.Schema == "Identification":
			for _, h := range e.Properties["holder"] {
				passports[h] = append(passports[h], e)
			}
		case ftmSchemas[e.Schema] != pb.Schema_SCHEMA_UNSPECIFIED:
			subjects = append(subjects, line{n, e})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	for _, l := range subjects {
		e, p := l.e, l.e.Properties
		ref := source + ":" + e.ID
		names := p["name"]
		if len(names) == 0 {
			res.reject(l.n, ref, "properties.name is empty")
			continue
		}
		s := &pb.Subject{Schema: ftmSchemas[e.Schema], Name: cleanName(names[0])}
		b := builder{s}
		for _, a := range names[1:] {
			b.alias(a, false)
		}
		for _, k := range []string{"alias", "previousName"} {
			for _, a := range p[k] {
				b.alias(a, false)
			}
		}
		for _, a := range p["weakAlias"] {
			b.alias(a, true)
		}
		for _, d := range append(p["birthDate"], p["incorporationDate"]...) {
			b.birth(partialDate(d))
		}
		for _, c := range append(p["nationality"], p["citizenship"]...) {
			addCountry(&s.Nationalities, c)
		}
		for _, c := range append(p["country"], p["jurisdiction"]...) {
			addCountry(&s.Countries, c)
		}
		for _, k := range ftmIdentifiers {
			for _, v := range p[k.prop] {
				b.id(k.t, v, "")
			}
		}
		for _, doc := range passports[e.ID] {
			t := pb.IdentifierType_IDENTIFIER_TYPE_NATIONAL_ID
			if doc.Schema == "Passport" {
				t = pb.IdentifierType_IDENTIFIER_TYPE_PASSPORT
			}
			for _, v := range doc.Properties["number"] {
				b.id(t, v, first(doc.Properties["country"]))
			}
		}
		ftmAddresses(b, p, addresses)
		des := &pb.Designation{Program: "FTM", Measures: []string{"asset-freeze"}}
		if ss := sanctions[e.ID]; len(ss) > 0 {
			sp := ss[0].Properties
			if v := first(sp["programId"], sp["program"], sp["authority"]); v != "" {
				des.Program = strings.TrimSpace(v)
			}
			des.LegalBasis = strings.TrimSpace(first(sp["authority"]))
			des.ListedOn = partialDate(first(sp["listingDate"], sp["startDate"]))
			if len(des.ListedOn) != 10 {
				des.ListedOn = ""
			}
			des.Statement = strings.TrimSpace(first(sp["reason"], sp["summary"]))
		}
		res.Items = append(res.Items, Item{Line: l.n, Record: &pb.Record{
			Kind: pb.Kind_KIND_DESIGNATION, Subject: s, SourceRef: ref,
			Detail: &pb.Record_Designation{Designation: des},
		}})
	}
	return res, nil
}

func first(lists ...[]string) string {
	for _, l := range lists {
		for _, v := range l {
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
	}
	return ""
}

// ftmAddresses adds a subject's addresses: its Address entities
// (addressEntity), parts kept where the entity has them, else its full
// text; then the address texts written on the subject itself that no entity
// already gave.
func ftmAddresses(b builder, p map[string][]string, entities map[string]ftmEntity) {
	written := map[string]bool{}
	add := func(a *pb.Address, full []string) {
		for _, f := range full {
			written[oneLine(f)] = true
		}
		// Aggregated exports give a company dozens of spellings of a few
		// addresses: past the record's limit the rest are left out rather
		// than the entity refused (addresses were not read at all before,
		// and an entity must not be lost to them).
		if len(b.s.Addresses) >= record.MaxListItems {
			return
		}
		b.address(a)
		if a.Country != "" {
			addCountry(&b.s.Countries, a.Country)
		}
	}
	for _, id := range p["addressEntity"] {
		e, ok := entities[id]
		if !ok {
			continue
		}
		ap := e.Properties
		a := &pb.Address{Street: first(ap["street"]), City: first(ap["city"]), Region: first(ap["region"]), PostalCode: first(ap["postalCode"]),
			Country: Country(first(ap["country"]))}
		if a.Street == "" {
			a.Street = first(ap["postOfficeBox"])
		}
		if a.Street == "" && a.City == "" {
			a.Street = first(ap["full"])
			if a.Country == "" {
				a.Country = countryOfText(a.Street)
			}
		}
		add(a, ap["full"])
	}
	for _, f := range p["address"] {
		if f = oneLine(f); f != "" && !written[f] {
			add(&pb.Address{Street: f, Country: countryOfText(f)}, []string{f})
		}
	}
}

// countryOfText is the country an address written as one text ends with
// ("..., Moscow, 127055, Russia"), by name only: a two-letter last part is
// more often a state ("..., CA") than a country code.
func countryOfText(s string) string {
	last := s[strings.LastIndex(s, ",")+1:]
	if utf8.RuneCountInString(strings.TrimSpace(last)) <= 2 {
		return ""
	}
	return Country(last)
}
