package importer

import (
	"encoding/csv"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// ofacRow is a CSV row with the line it started on.
type ofacRow struct {
	line   int
	fields []string
}

// readOFAC reads an OFAC legacy CSV file (no header; "-0-" marks an empty
// field). Rows the CSV reader cannot parse are rejected by line.
func readOFAC(r io.Reader, file string, want int, res *Result) ([]ofacRow, error) {
	s, err := text(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	cr := csv.NewReader(strings.NewReader(s))
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	var rows []ofacRow
	for {
		rec, line, err := nextRow(cr, res, file+": ")
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) < want {
			res.reject(line, "", "%s: %d fields, want %d", file, len(rec), want)
			continue
		}
		for i, f := range rec {
			f = strings.TrimSpace(f)
			if f == "-0-" {
				f = ""
			}
			rec[i] = f
		}
		rows = append(rows, ofacRow{line, rec})
	}
	return rows, nil
}

var (
	remarkDOB         = regexp.MustCompile(`(?i)\bDOB ([^;]+)`)
	remarkNationality = regexp.MustCompile(`(?i)\b(?:nationality|citizen) ([^;()]+)`)
	remarkAKA         = regexp.MustCompile(`(?i)\ba\.k\.a\.,? '([^']+)'`)
	remarkIdent       = regexp.MustCompile(`(?i)(?:^|;\s*)(?:alt\. )?(Passport|National ID No\.|Tax ID No\.|Registration (?:Number|ID)|Legal Entity Number|Cedula No\.|Identification Number|SWIFT/BIC) ([^;(]+)(?:\(([^)]+)\))?`)
)

var identTypes = map[string]pb.IdentifierType{
	"passport":              pb.IdentifierType_IDENTIFIER_TYPE_PASSPORT,
	"national id no.":       pb.IdentifierType_IDENTIFIER_TYPE_NATIONAL_ID,
	"cedula no.":            pb.IdentifierType_IDENTIFIER_TYPE_NATIONAL_ID,
	"identification number": pb.IdentifierType_IDENTIFIER_TYPE_NATIONAL_ID,
	"tax id no.":            pb.IdentifierType_IDENTIFIER_TYPE_TAX_ID,
	"registration number":   pb.IdentifierType_IDENTIFIER_TYPE_REGISTRATION_NUMBER,
	"registration id":       pb.IdentifierType_IDENTIFIER_TYPE_REGISTRATION_NUMBER,
	"legal entity number":   pb.IdentifierType_IDENTIFIER_TYPE_LEI,
	"swift/bic":             pb.IdentifierType_IDENTIFIER_TYPE_OTHER,
}

// ParseOFAC reads the OFAC legacy CSV set: the main file (sdn.csv or
// cons_prim.csv: ent_num, name, type, program, title, call sign, vessel type,
// tonnage, GRT, vessel flag, vessel owner, remarks), and optionally alt.csv
// (aliases), add.csv (addresses) and the comments file (remarks that did not
// fit, joined to the entry's remarks).
func ParseOFAC(source string, f Files) (*Result, error) {
	res := &Result{Source: source}
	main, err := readOFAC(f.Main, "main file", 12, res)
	if err != nil {
		return nil, err
	}
	extra := func(r io.Reader, file string, want int) (map[int][]ofacRow, error) {
		out := map[int][]ofacRow{}
		if r == nil {
			return out, nil
		}
		rows, err := readOFAC(r, file, want, res)
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			n, err := strconv.Atoi(row.fields[0])
			if err != nil {
				res.reject(row.line, "", "%s: ent_num %q is not a number", file, row.fields[0])
				continue
			}
			out[n] = append(out[n], row)
		}
		return out, nil
	}
	alts, err := extra(f.Alt, "alt file", 4)
	if err != nil {
		return nil, err
	}
	adds, err := extra(f.Add, "add file", 5)
	if err != nil {
		return nil, err
	}
	comments, err := extra(f.Comments, "comments file", 2)
	if err != nil {
		return nil, err
	}
	seen := map[int]int{}
	for _, row := range main {
		fs := row.fields
		n, err := strconv.Atoi(fs[0])
		if err != nil {
			res.reject(row.line, "", "ent_num %q is not a number", fs[0])
			continue
		}
		ref := fmt.Sprintf("%s:%d", source, n)
		if prev, dup := seen[n]; dup {
			res.reject(row.line, ref, "ent_num %d repeats line %d", n, prev)
			continue
		}
		seen[n] = row.line
		name := cleanName(fs[1])
		if name == "" {
			res.reject(row.line, ref, "SDN_Name is empty")
			continue
		}
		remarks := fs[11]
		for _, c := range comments[n] {
			remarks += c.fields[1]
		}
		s := &pb.Subject{Name: name}
		b := builder{s}
		switch strings.ToLower(fs[2]) {
		case "individual":
			s.Schema = pb.Schema_SCHEMA_PERSON
		case "vessel":
			s.Schema = pb.Schema_SCHEMA_VESSEL
		case "aircraft":
			s.Schema = pb.Schema_SCHEMA_AIRCRAFT
		case "":
			s.Schema = pb.Schema_SCHEMA_ORGANIZATION
		default:
			res.reject(row.line, ref, "SDN_Type %q is not individual, vessel, aircraft or empty", fs[2])
			continue
		}
		if fs[5] != "" {
			b.id(pb.IdentifierType_IDENTIFIER_TYPE_CALL_SIGN, fs[5], "")
		}
		if fs[9] != "" {
			addCountry(&s.Countries, fs[9])
		}
		for _, m := range remarkDOB.FindAllStringSubmatch(remarks, -1) {
			b.birth(partialDate(m[1]))
		}
		for _, m := range remarkNationality.FindAllStringSubmatch(remarks, -1) {
			addCountry(&s.Nationalities, m[1])
		}
		b.freeTextIDs(remarks)
		for _, m := range remarkIdent.FindAllStringSubmatch(remarks, -1) {
			b.id(identTypes[strings.ToLower(m[1])], m[2], m[3])
		}
		for _, m := range remarkAKA.FindAllStringSubmatch(remarks, -1) {
			b.alias(m[1], true)
		}
		for _, a := range alts[n] {
			// alt_type aka, fka, nka: all names the entry is listed under.
			b.alias(a.fields[3], false)
		}
		for _, a := range adds[n] {
			fs := a.fields
			addr := &pb.Address{Street: fs[2], City: fs[3], Country: Country(fs[4])}
			b.address(addr)
			if addr.Country != "" {
				addCountry(&s.Countries, addr.Country)
			}
		}
		program := strings.Join(strings.FieldsFunc(fs[3], func(r rune) bool { return r == '[' || r == ']' || r == ' ' }), " ")
		if program == "" {
			res.reject(row.line, ref, "Program is empty")
			continue
		}
		if fs[4] != "" {
			remarks = strings.TrimSpace("Title: " + fs[4] + ". " + remarks)
		}
		rec := &pb.Record{
			Kind:      pb.Kind_KIND_DESIGNATION,
			Subject:   s,
			SourceRef: ref,
			Detail: &pb.Record_Designation{Designation: &pb.Designation{
				Program:   strings.TrimSpace(program),
				Measures:  []string{"asset-freeze"},
				Statement: strings.TrimSpace(remarks),
			}},
		}
		res.Items = append(res.Items, Item{Line: row.line, Record: rec})
	}
	sortItems(res.Items)
	sort.SliceStable(res.Rejects, func(i, j int) bool { return res.Rejects[i].Line < res.Rejects[j].Line })
	return res, nil
}
