package importer

import (
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/watchfed/watchfed/node/record"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

type unValues struct {
	Values []string `xml:"VALUE"`
}

type unAlias struct {
	Quality string `xml:"QUALITY"`
	Name    string `xml:"ALIAS_NAME"`
}

type unAddress struct {
	Street  string `xml:"STREET"`
	City    string `xml:"CITY"`
	State   string `xml:"STATE_PROVINCE"`
	Zip     string `xml:"ZIP_CODE"`
	Country string `xml:"COUNTRY"`
}

type unDate struct {
	Type     string `xml:"TYPE_OF_DATE"`
	Date     string `xml:"DATE"`
	Year     string `xml:"YEAR"`
	FromYear string `xml:"FROM_YEAR"`
	ToYear   string `xml:"TO_YEAR"`
}

type unDocument struct {
	Type    string `xml:"TYPE_OF_DOCUMENT"`
	Number  string `xml:"NUMBER"`
	Country string `xml:"ISSUING_COUNTRY"`
}

// unEntry is an INDIVIDUAL or an ENTITY of the UN consolidated list.
type unEntry struct {
	DataID       string       `xml:"DATAID"`
	First        string       `xml:"FIRST_NAME"`
	Second       string       `xml:"SECOND_NAME"`
	Third        string       `xml:"THIRD_NAME"`
	Fourth       string       `xml:"FOURTH_NAME"`
	ListType     string       `xml:"UN_LIST_TYPE"`
	Reference    string       `xml:"REFERENCE_NUMBER"`
	ListedOn     string       `xml:"LISTED_ON"`
	Comments     string       `xml:"COMMENTS1"`
	Original     string       `xml:"NAME_ORIGINAL_SCRIPT"`
	Nationality  unValues     `xml:"NATIONALITY"`
	Aliases      []unAlias    `xml:"INDIVIDUAL_ALIAS"`
	EntAliases   []unAlias    `xml:"ENTITY_ALIAS"`
	Addresses    []unAddress  `xml:"INDIVIDUAL_ADDRESS"`
	EntAddresses []unAddress  `xml:"ENTITY_ADDRESS"`
	Births       []unDate     `xml:"INDIVIDUAL_DATE_OF_BIRTH"`
	Documents    []unDocument `xml:"INDIVIDUAL_DOCUMENT"`
}

// ParseUN reads the UN Security Council consolidated list (XML):
// individuals and entities with aliases (QUALITY "Low" is a weak alias),
// original-script names, dates of birth, documents and addresses.
func ParseUN(source string, r io.Reader) (*Result, error) {
	res := &Result{Source: source}
	d := xml.NewDecoder(r)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			// A broken or truncated document is not an edition: none of it is taken.
			line, _ := d.InputPos()
			return nil, fmt.Errorf("line %d: XML: %v (the document is broken or cut short)", line, err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || (se.Name.Local != "INDIVIDUAL" && se.Name.Local != "ENTITY") {
			continue
		}
		line, _ := d.InputPos()
		var e unEntry
		if err := d.DecodeElement(&e, &se); err != nil {
			return nil, fmt.Errorf("line %d: %s: %v (the document is broken or cut short)", line, se.Name.Local, err)
		}
		if it, why := e.record(source, se.Name.Local == "INDIVIDUAL"); why != "" {
			res.reject(line, it, "%s", why)
		} else {
			res.Items = append(res.Items, Item{Line: line, Record: itemRecord(it, e, se.Name.Local == "INDIVIDUAL")})
		}
	}
	return res, nil
}

// record checks an entry and returns its source ref, or a reason to reject it.
func (e unEntry) record(source string, person bool) (string, string) {
	id := strings.TrimSpace(e.DataID)
	if id == "" {
		return "", "DATAID is empty"
	}
	ref := source + ":" + id
	if e.name() == "" {
		return ref, "FIRST_NAME is empty"
	}
	if strings.TrimSpace(e.ListType) == "" {
		return ref, "UN_LIST_TYPE is empty"
	}
	return ref, ""
}

func (e unEntry) name() string {
	return cleanName(strings.Join([]string{e.First, e.Second, e.Third, e.Fourth}, " "))
}

func itemRecord(ref string, e unEntry, person bool) *pb.Record {
	s := &pb.Subject{Name: e.name(), Schema: pb.Schema_SCHEMA_ORGANIZATION}
	if person {
		s.Schema = pb.Schema_SCHEMA_PERSON
	}
	b := builder{s}
	if o := strings.TrimSpace(e.Original); o != "" {
		b.alias(o, false)
	}
	for _, a := range append(e.Aliases, e.EntAliases...) {
		weak := strings.EqualFold(strings.TrimSpace(a.Quality), "low")
		// An alias of several names is kept as written (when within the
		// record's limit) and also name by name: each of them is a name the
		// party goes by, and one alias of them all would be refused whole.
		if utf8.RuneCountInString(cleanName(a.Name)) <= record.MaxNameRunes {
			b.alias(a.Name, weak)
		}
		for _, p := range aliasParts(a.Name) {
			b.alias(p, weak)
		}
	}
	for _, n := range e.Nationality.Values {
		addCountry(&s.Nationalities, n)
	}
	for _, a := range append(e.Addresses, e.EntAddresses...) {
		addr := &pb.Address{Street: a.Street, City: a.City, Region: a.State, PostalCode: a.Zip, Country: Country(a.Country)}
		b.address(addr)
		if addr.Country != "" {
			addCountry(&s.Countries, addr.Country)
		}
	}
	for _, bd := range e.Births {
		switch {
		case bd.Date != "":
			b.birth(partialDate(bd.Date))
		case bd.Year != "":
			b.birth(partialDate(bd.Year))
		case bd.FromYear != "":
			b.birth(partialDate(bd.FromYear))
		}
	}
	for _, doc := range e.Documents {
		t := pb.IdentifierType_IDENTIFIER_TYPE_OTHER
		switch low := strings.ToLower(doc.Type); {
		case strings.Contains(low, "passport"):
			t = pb.IdentifierType_IDENTIFIER_TYPE_PASSPORT
		case strings.Contains(low, "national identification"), strings.Contains(low, "identity card"):
			t = pb.IdentifierType_IDENTIFIER_TYPE_NATIONAL_ID
		case strings.Contains(low, "tax"):
			t = pb.IdentifierType_IDENTIFIER_TYPE_TAX_ID
		}
		b.id(t, doc.Number, doc.Country)
	}
	b.freeTextIDs(e.Comments)
	listed := strings.TrimSpace(e.ListedOn)
	if len(listed) > 10 {
		listed = listed[:10]
	}
	return &pb.Record{
		Kind:      pb.Kind_KIND_DESIGNATION,
		Subject:   s,
		SourceRef: ref,
		Detail: &pb.Record_Designation{Designation: &pb.Designation{
			Program:    strings.TrimSpace("UNSC-" + strings.TrimSpace(e.ListType)),
			LegalBasis: strings.TrimSpace(fmt.Sprintf("UN Security Council, reference %s", strings.TrimSpace(e.Reference))),
			Measures:   []string{"asset-freeze", "travel-ban", "arms-embargo"},
			ListedOn:   listed,
			Statement:  strings.TrimSpace(strings.TrimSpace(e.Comments)),
		}},
	}
}

// enumerator is a list's "b)" between two names of one alias.
var enumerator = regexp.MustCompile(`\s[b-h]\)\s`)

// aliasParts splits an alias that holds several names, as the UN list
// writes some: "A; B; C", "أنصار الشريعة (Ansar al Charia)", "Amir Khazmat
// (original script: Амир Хазмат)", "Hay’at Tahrir al-Sham (HTS) (هيئة تحرير
// الشام (original script); Hay’at Tahrir al-Sham; ...)". A parenthesis is a
// list of names only when it holds a ";", says "original script" or is
// written in another script than the name before it; other parentheses
// ("(birth name)", "(AQY)") stay part of the name. It returns nil for an
// alias of one name.
func aliasParts(s string) []string {
	s = strings.TrimRight(strings.TrimSpace(s), ",; ")
	var parts []string
	var walk func(s string)
	walk = func(s string) {
		for _, p := range splitTop(s, ';') {
			if q := enumerator.ReplaceAllString(p, "; "); q != p {
				walk(q)
				continue
			}
			p = strings.TrimSpace(p)
			p = strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(p, "(original script)"), "- sub-unit name"))
			open := lastTopParen(p)
			if open > 0 {
				outer, inner := strings.TrimSpace(p[:open]), strings.TrimSpace(p[open+1:len(p)-1])
				inner, orig := strings.CutPrefix(inner, "original script:")
				if orig || len(splitTop(inner, ';')) > 1 || script(outer) != script(inner) {
					parts = append(parts, cleanName(outer))
					walk(inner)
					continue
				}
			}
			if p = cleanName(p); p != "" {
				parts = append(parts, p)
			}
		}
	}
	walk(s)
	if len(parts) < 2 {
		return nil
	}
	return parts
}

// splitTop splits s at sep outside parentheses.
func splitTop(s string, sep rune) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case sep:
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + len(string(sep))
			}
		}
	}
	return append(out, s[start:])
}

// lastTopParen returns where the parenthesis closing s opens, or -1 when s
// does not end with one.
func lastTopParen(s string) int {
	if !strings.HasSuffix(s, ")") {
		return -1
	}
	depth := 0
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case ')':
			depth++
		case '(':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}
