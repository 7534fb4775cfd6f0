// Package importer reads the public sanctions and export-control list
// formats and maps their entries onto records. Parsing is separate from
// storing: the node compares what a parse yields with what it holds (by
// source_ref) and writes only the additions, amendments and delistings.
package importer

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
	"golang.org/x/text/unicode/norm"

	"github.com/watchfed/watchfed/node/record"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Item is one entry of a list mapped onto a record (its SourceRef set).
type Item struct {
	Line   int
	Record *pb.Record
}

// Reject is an entry that could not be read, with where and why.
type Reject struct {
	Line   int
	Ref    string
	Reason string
}

func (r Reject) String() string {
	if r.Ref != "" {
		return fmt.Sprintf("line %d (%s): %s", r.Line, r.Ref, r.Reason)
	}
	return fmt.Sprintf("line %d: %s", r.Line, r.Reason)
}

// Result is what one parse yields: the source name all SourceRefs start
// with ("ofac-sdn" gives "ofac-sdn:36"), the items and the rejects.
type Result struct {
	Source  string
	Items   []Item
	Rejects []Reject
}

func (r *Result) reject(line int, ref, format string, args ...any) {
	r.Rejects = append(r.Rejects, Reject{Line: line, Ref: ref, Reason: fmt.Sprintf(format, args...)})
}

// nextRow reads the next CSV row and the line it starts on. A malformed row
// is rejected, named by its line (prefix before the reason), and skipped;
// io.EOF ends the input.
func nextRow(cr *csv.Reader, res *Result, prefix string) ([]string, int, error) {
	for {
		row, err := cr.Read()
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			res.reject(pe.StartLine, "", "%s%v", prefix, pe.Err)
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		line, _ := cr.FieldPos(0)
		return row, line, nil
	}
}

// Formats are the names `watchfed import --format` accepts.
var Formats = []string{"ofac-sdn", "un-xml", "bis-dpl", "ftm"}

// Files are the inputs of one import: for OFAC the main file and optional
// alt, add and comments files; for the others one file.
type Files struct {
	Main, Alt, Add, Comments io.Reader
}

// Parse reads one list in the given format. source names the list for its
// SourceRefs (empty: a default per format).
func Parse(format, source string, f Files) (*Result, error) {
	if f.Main == nil {
		return nil, fmt.Errorf("%s: no main file", format)
	}
	switch format {
	case "ofac-sdn":
		return ParseOFAC(orDefault(source, "ofac-sdn"), f)
	case "un-xml":
		return ParseUN(orDefault(source, "un"), f.Main)
	case "bis-dpl":
		return ParseDPL(orDefault(source, "bis-dpl"), f.Main)
	case "ftm":
		return ParseFTM(orDefault(source, "ftm"), f.Main)
	}
	return nil, fmt.Errorf("format %q: want one of %s", format, strings.Join(Formats, ", "))
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// text decodes a file: UTF-8 if it is valid UTF-8, else Latin-1 (as OFAC
// publishes); a trailing DOS end-of-file byte (0x1A) is dropped.
func text(r io.Reader) (string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	b = bytes.TrimRight(b, "\x1a")
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if utf8.Valid(b) {
		return string(b), nil
	}
	rs := make([]rune, len(b))
	for i, c := range b {
		rs[i] = rune(c)
	}
	return string(rs), nil
}

// countryCodes maps English country names (and the forms lists use) to
// ISO 3166 alpha-2 codes.
var countryCodes = func() map[string]string {
	m := map[string]string{}
	names := display.English.Regions()
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			code := string([]rune{a, b})
			if !record.IsCountry(code) {
				continue
			}
			reg, err := language.ParseRegion(code)
			if err != nil {
				continue
			}
			m[countryKey(names.Name(reg))] = code
			m[countryKey(code)] = code
		}
	}
	for name, code := range map[string]string{
		"burma": "MM", "myanmar": "MM", "korea north": "KP", "north korea": "KP", "democratic peoples republic of korea": "KP",
		"korea south": "KR", "south korea": "KR", "republic of korea": "KR", "iran islamic republic of": "IR",
		"syrian arab republic": "SY", "russian federation": "RU", "congo democratic republic of the": "CD",
		"democratic republic of the congo": "CD", "congo": "CG", "republic of the congo": "CG", "ivory coast": "CI",
		"cote divoire": "CI", "united states": "US", "usa": "US", "united kingdom": "GB", "uk": "GB",
		"west bank": "PS", "gaza": "PS", "palestinian": "PS", "state of palestine": "PS", "palestine": "PS",
		"vietnam": "VN", "viet nam": "VN", "laos": "LA", "lao peoples democratic republic": "LA",
		"bosnia and herzegovina": "BA", "the gambia": "GM", "gambia": "GM", "the bahamas": "BS", "bahamas": "BS",
		"turkey": "TR", "turkiye": "TR", "czech republic": "CZ", "czechia": "CZ", "macedonia": "MK", "north macedonia": "MK",
		"kosovo": "XK", "moldova": "MD", "republic of moldova": "MD", "tanzania": "TZ", "united republic of tanzania": "TZ",
		"venezuela": "VE", "bolivarian republic of venezuela": "VE", "libya": "LY", "libyan arab jamahiriya": "LY",
		"hong kong": "HK", "macau": "MO", "taiwan": "TW", "brunei": "BN", "cape verde": "CV", "swaziland": "SZ",
		"eswatini": "SZ", "east timor": "TL", "timor leste": "TL", "region crimea": "UA", "crimea": "UA",
		"netherlands antilles": "CW", "curacao": "CW", "st kitts and nevis": "KN", "saint kitts and nevis": "KN",
		"st vincent and the grenadines": "VC", "st lucia": "LC", "belarus": "BY", "kyrgyzstan": "KG",
		// Forms found in the real editions (OFAC add.csv, UN XML).
		"saint vincent and the grenadines": "VC", "cote d ivoire": "CI", "british virgin islands": "VG",
		"united states of america": "US", "united kingdom of great britain and northern ireland": "GB",
		"hong kong special administrative region": "HK", "macao special administrative region": "MO",
		"northern mali": "ML", "trinidad and tobago": "TT",
	} {
		m[name] = code
	}
	return m
}()

func countryKey(s string) string {
	var b strings.Builder
	space := false
	// "Türkiye", "Côte d'Ivoire": compared without their accents; "&" as
	// "and" ("Trinidad & Tobago" is how the region names write it).
	s = strings.ReplaceAll(s, "&", " and ")
	for _, r := range norm.NFD.String(strings.ToLower(s)) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case unicode.IsLetter(r):
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
		case r == '\'' || r == '’' || r == '.':
		default:
			space = true
		}
	}
	return b.String()
}

// Country returns the ISO code of a country name or code, or "".
func Country(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if c, ok := countryCodes[countryKey(s)]; ok {
		return c
	}
	// OFAC's "Region: Gaza".
	if rest, ok := strings.CutPrefix(s, "Region:"); ok {
		return Country(rest)
	}
	if i := strings.LastIndex(s, ","); i >= 0 {
		// Inverted names: "Bahamas, The", "Congo, Republic of the",
		// "Virgin Islands, British".
		if c, ok := countryCodes[countryKey(s[i+1:]+" "+s[:i])]; ok {
			return c
		}
		// "Tehran, Iran" and the like: the last comma part.
		return Country(s[i+1:])
	}
	return ""
}

var months = map[string]string{"jan": "01", "feb": "02", "mar": "03", "apr": "04", "may": "05", "jun": "06",
	"jul": "07", "aug": "08", "sep": "09", "oct": "10", "nov": "11", "dec": "12"}

var (
	dmy = regexp.MustCompile(`^(\d{1,2}) ([A-Za-z]{3})[a-z]* (\d{4})$`)
	my  = regexp.MustCompile(`^([A-Za-z]{3})[a-z]* (\d{4})$`)
	yr  = regexp.MustCompile(`(\d{4})`)
)

// partialDate reads "07 Oct 1952", "Oct 1952", "1952", "circa 1960",
// "1960 to 1962" (the first year) into YYYY[-MM[-DD]], or "".
func partialDate(s string) string {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.Format(time.DateOnly)
	}
	if m := dmy.FindStringSubmatch(s); m != nil {
		if mm, ok := months[strings.ToLower(m[2])]; ok {
			d := fmt.Sprintf("%s-%s-%02s", m[3], mm, m[1])
			if _, err := time.Parse(time.DateOnly, d); err == nil {
				return d
			}
		}
	}
	if m := my.FindStringSubmatch(s); m != nil {
		if mm, ok := months[strings.ToLower(m[1])]; ok {
			return m[2] + "-" + mm
		}
	}
	if m := yr.FindString(s); m != "" && m >= "1850" && m <= "2100" {
		return m
	}
	return ""
}

// script returns the ISO 15924 code of the script a name is written in, ""
// for Latin.
func script(s string) string {
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Cyrillic, r):
			return "Cyrl"
		case unicode.Is(unicode.Arabic, r):
			return "Arab"
		case unicode.Is(unicode.Greek, r):
			return "Grek"
		case unicode.Is(unicode.Hebrew, r):
			return "Hebr"
		case unicode.Is(unicode.Han, r):
			return "Hani"
		case unicode.Is(unicode.Hangul, r):
			return "Hang"
		}
	}
	return ""
}

// builder collects a subject's parts without duplicates. Fields are never
// cut to the record limits: an entry over one is refused, naming the field.
type builder struct {
	s *pb.Subject
}

func (b builder) alias(name string, weak bool) {
	name = cleanName(name)
	if name == "" || name == b.s.Name {
		return
	}
	for _, a := range b.s.Aliases {
		if a.Name == name {
			return
		}
	}
	st := pb.NameStrength_NAME_STRENGTH_STRONG
	if weak {
		st = pb.NameStrength_NAME_STRENGTH_WEAK
	}
	b.s.Aliases = append(b.s.Aliases, &pb.Alias{Name: name, Strength: st, Script: script(name)})
}

// Vessels' numbers written in free text (OFAC remarks, UN comments):
// "IMO 9187629", "International Maritime Organization (IMO) Number:
// 1790183", "MMSI 572469210".
var (
	freeIMO  = regexp.MustCompile(`(?i)\bIMO\)?(?:\s+(?:number|no\.?))?[:\s]+(\d{7})\b`)
	freeMMSI = regexp.MustCompile(`(?i)\bMMSI(?:\s+(?:number|no\.?))?[:\s]+(\d{9})\b`)
	mmsi     = regexp.MustCompile(`^\d{9}$`)
)

// freeTextIDs adds the IMO and MMSI numbers written in a text.
func (b builder) freeTextIDs(text string) {
	for _, m := range freeIMO.FindAllStringSubmatch(text, -1) {
		b.id(pb.IdentifierType_IDENTIFIER_TYPE_IMO, m[1], "")
	}
	for _, m := range freeMMSI.FindAllStringSubmatch(text, -1) {
		b.id(pb.IdentifierType_IDENTIFIER_TYPE_MMSI, m[1], "")
	}
}

func (b builder) id(t pb.IdentifierType, v, country string) {
	v = strings.TrimSpace(strings.TrimRight(v, ".;,"))
	// A value this long is prose a list's remarks pattern caught (OFAC's
	// "(Following data derived from ...)"), not a document number.
	if v == "" || len(v) > 64 {
		return
	}
	if t == pb.IdentifierType_IDENTIFIER_TYPE_IMO && !record.ValidIMO(v) {
		t = pb.IdentifierType_IDENTIFIER_TYPE_OTHER
	}
	if t == pb.IdentifierType_IDENTIFIER_TYPE_LEI && !record.ValidLEI(v) {
		t = pb.IdentifierType_IDENTIFIER_TYPE_OTHER
	}
	if t == pb.IdentifierType_IDENTIFIER_TYPE_MMSI && !mmsi.MatchString(v) {
		t = pb.IdentifierType_IDENTIFIER_TYPE_OTHER
	}
	for _, x := range b.s.Identifiers {
		if x.Type == t && x.Value == v {
			return
		}
	}
	b.s.Identifiers = append(b.s.Identifiers, &pb.Identifier{Type: t, Value: v, Country: Country(country)})
}

func (b builder) birth(d string) {
	if d == "" {
		return
	}
	for _, x := range b.s.BirthDates {
		if x == d {
			return
		}
	}
	b.s.BirthDates = append(b.s.BirthDates, d)
}

func addCountry(list *[]string, name string) {
	c := Country(name)
	if c == "" {
		return
	}
	for _, x := range *list {
		if x == c {
			return
		}
	}
	*list = append(*list, c)
}

func (b builder) address(a *pb.Address) {
	// Address lines are one line each: lists wrap long ones (UN XML), and a
	// record refuses line feeds outside its free-text fields.
	a.Street, a.City, a.Region, a.PostalCode = oneLine(a.Street), oneLine(a.City), oneLine(a.Region), oneLine(a.PostalCode)
	if a.Street == "" && a.City == "" && a.Region == "" && a.PostalCode == "" && a.Country == "" {
		return
	}
	b.s.Addresses = append(b.s.Addresses, a)
}

// oneLine joins the lines and words of a text with single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// cleanName trims a name and joins its words with single spaces. A name over
// the record limit is kept whole: the node refuses the entry naming the field
// (a clipped name would be screened as another party).
func cleanName(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// sortItems orders items by line, for stable output.
func sortItems(items []Item) {
	sort.SliceStable(items, func(i, j int) bool { return items[i].Line < items[j].Line })
}
