package importer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

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
	{"callSign", pb.IdentifierType_IDENTIFIER_TYPE_CALL_SIGN},
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
