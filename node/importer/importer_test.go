package importer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/watchfed/watchfed/node/record"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func open(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func byRef(t *testing.T, res *Result) map[string]*pb.Record {
	t.Helper()
	out := map[string]*pb.Record{}
	for _, it := range res.Items {
		rec := it.Record
		rec.Marking = pb.Marking_MARKING_CLEAR
		record.Normalize(rec, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		if err := record.Validate(rec); err != nil {
			t.Errorf("line %d %s: %v", it.Line, rec.SourceRef, err)
		}
		out[rec.SourceRef] = rec
	}
	return out
}

func rejects(res *Result) string {
	var ss []string
	for _, r := range res.Rejects {
		ss = append(ss, r.String())
	}
	return strings.Join(ss, "\n")
}

func TestOFAC(t *testing.T) {
	res, err := Parse("ofac-sdn", "", Files{
		Main: open(t, "ofac-sdn-2021/sdn.csv"), Alt: open(t, "ofac-sdn-2021/alt.csv"),
		Add: open(t, "ofac-sdn-2021/add.csv"), Comments: open(t, "ofac-sdn-2021/sdn_comments.csv"),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := rejects(res)
	for _, want := range []string{`line 3: ent_num "abc" is not a number`, "line 5: main file: 3 fields, want 12"} {
		if !strings.Contains(got, want) {
			t.Errorf("rejects:\n%s\nwant %q", got, want)
		}
	}
	if len(res.Rejects) != 2 {
		t.Errorf("%d rejects, want 2:\n%s", len(res.Rejects), got)
	}
	recs := byRef(t, res)
	if len(recs) != 7 {
		t.Fatalf("%d records, want 7", len(recs))
	}
	cubana := recs["ofac-sdn:306"]
	if cubana.Subject.Name != "BANCO NACIONAL DE CUBA" || cubana.Subject.Schema != pb.Schema_SCHEMA_ORGANIZATION || cubana.GetDesignation().Program != "CUBA" {
		t.Errorf("306: %v", cubana)
	}
	var aliases []string
	for _, a := range cubana.Subject.Aliases {
		aliases = append(aliases, a.Name+"/"+a.Strength.String())
	}
	if !strings.Contains(strings.Join(aliases, ","), "NATIONAL BANK OF CUBA/NAME_STRENGTH_STRONG") || !strings.Contains(strings.Join(aliases, ","), "BNC/NAME_STRENGTH_WEAK") {
		t.Errorf("306 aliases %v: want NATIONAL BANK OF CUBA (alt.csv) and weak BNC (remarks)", aliases)
	}
	if len(cubana.Subject.Addresses) == 0 || cubana.Subject.Addresses[0].Country != "CH" {
		t.Errorf("306 addresses %v: want Zurich, CH", cubana.Subject.Addresses)
	}
	vessel := recs["ofac-sdn:15036"]
	var imo bool
	for _, id := range vessel.Subject.Identifiers {
		imo = imo || id.Type == pb.IdentifierType_IDENTIFIER_TYPE_IMO
	}
	if vessel.Subject.Schema != pb.Schema_SCHEMA_VESSEL || !imo {
		t.Errorf("15036 vessel: %v", vessel.Subject)
	}
	if !strings.Contains(recs["ofac-sdn:28263"].GetDesignation().Statement, "LAZARUS GROUP") {
		t.Error("28263: comments file not joined to the remarks")
	}
	m := recs["ofac-sdn:99999"]
	if m == nil || m.Subject.Name != "MÜLLER, Jürgen" {
		t.Fatalf("Latin-1 entry: %v", m)
	}
	if len(m.Subject.BirthDates) != 1 || m.Subject.BirthDates[0] != "1965-03-14" || len(m.Subject.Nationalities) != 1 || m.Subject.Nationalities[0] != "DE" ||
		len(m.Subject.Identifiers) != 1 || m.Subject.Identifiers[0].Value != "C01X00T47" || m.Subject.Identifiers[0].Country != "DE" {
		t.Errorf("remarks not read: %v", m.Subject)
	}
}

func TestUN(t *testing.T) {
	res, err := Parse("un-xml", "", Files{Main: open(t, "un-consolidated.xml")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejects) != 1 || !strings.Contains(res.Rejects[0].String(), "un:9999999") || !strings.Contains(res.Rejects[0].String(), "FIRST_NAME is empty") {
		t.Errorf("rejects: %s", rejects(res))
	}
	recs := byRef(t, res)
	if len(recs) != 6 {
		t.Fatalf("%d records, want 6", len(recs))
	}
	var saddam *pb.Record
	for _, r := range recs {
		if strings.HasPrefix(r.Subject.Name, "SADDAM") {
			saddam = r
		}
	}
	if saddam == nil || saddam.GetDesignation().Program != "UNSC-Iraq" && !strings.HasPrefix(saddam.GetDesignation().Program, "UNSC-") {
		t.Fatalf("Saddam: %v", saddam)
	}
	var arabic, weak bool
	for _, a := range saddam.Subject.Aliases {
		arabic = arabic || a.Script == "Arab"
		weak = weak || a.Strength == pb.NameStrength_NAME_STRENGTH_WEAK
	}
	if !arabic || !weak || len(saddam.Subject.BirthDates) == 0 {
		t.Errorf("Saddam subject: %v", saddam.Subject)
	}
}

func TestDPL(t *testing.T) {
	res, err := Parse("bis-dpl", "", Files{Main: open(t, "bis-dpl.txt")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejects) != 1 || !strings.Contains(res.Rejects[0].String(), `line 8: Effective_Date "2022-01-01" is not MM/DD/YYYY`) {
		t.Errorf("rejects: %s", rejects(res))
	}
	recs := byRef(t, res)
	if len(recs) != 6 {
		t.Fatalf("%d records, want 6 (a party at several addresses is one denial)", len(recs))
	}
	for ref, r := range recs {
		d := r.GetDenial()
		if d.ControlListEntry != "ALL" || d.DeniedOn == "" || !d.AnyDestination || len(d.Parties) != len(r.Subject.Addresses) {
			t.Errorf("%s: want an order for any destination, a party per address: %v", ref, d)
		}
		// The order's own dates; a review date is the importing agency's
		// duty for its own denials only.
		if d.ReviewBy != "" {
			t.Errorf("%s: review_by %q invented", ref, d.ReviewBy)
		}
		switch {
		case strings.Contains(r.Subject.Name, "ASH") && (d.DeniedOn != "2003-06-19" || d.ExpiresOn != "2056-06-29"):
			t.Errorf("%s: denied %s expires %s, want 2003-06-19 until 2056-06-29", ref, d.DeniedOn, d.ExpiresOn)
		case strings.Contains(r.Subject.Name, "MAXWELL") && (d.DeniedOn != "1981-03-02" || d.ExpiresOn != ""):
			t.Errorf("%s: denied %s expires %q, want 1981-03-02 with no end", ref, d.DeniedOn, d.ExpiresOn)
		}
		if strings.Contains(r.Subject.Name, "AIRLINES") && (r.Subject.Schema != pb.Schema_SCHEMA_ORGANIZATION || len(r.Subject.Addresses) < 2) {
			t.Errorf("%s: want an organisation with its addresses: %v", ref, r.Subject)
		}
	}
	// A party listed at addresses in several countries: every address and
	// country is kept, each with its own party entry; a row without a
	// country (ZIMO SHENG in Milwaukee) keeps its address, and the
	// destination falls back to the United States only when the first row
	// has none.
	for _, tc := range []struct {
		ref, dest string
		countries []string
		cities    []string
	}{
		{"bis-dpl:ali-m-hijazi@1981-09-01", "CH", []string{"CH", "FR", "LY"}, []string{"GENEVA", "HAUTE SAVOIE", "TRIPOLI"}},
		{"bis-dpl:zimo-sheng@2020-03-16", "US", []string{"CN"}, []string{"MILWAUKEE", "JIANGSU"}},
		{"bis-dpl:al-naser-airlines@2022-05-13", "IQ", []string{"IQ", "AE", "JO"}, []string{"BAGHDAD", "BAGHDAD", "DUBAI", "AMMAN"}},
	} {
		r := recs[tc.ref]
		if r == nil {
			t.Errorf("%s: missing", tc.ref)
			continue
		}
		var cities, partyCountries []string
		for _, a := range r.Subject.Addresses {
			cities = append(cities, a.City)
		}
		for _, p := range r.GetDenial().Parties {
			partyCountries = append(partyCountries, p.Country)
		}
		if d := r.GetDenial(); d.Destination != tc.dest || !slices.Equal(r.Subject.Countries, tc.countries) || !slices.Equal(cities, tc.cities) {
			t.Errorf("%s: destination %s, countries %v, cities %v; want %s, %v, %v", tc.ref, d.Destination, r.Subject.Countries, cities, tc.dest, tc.countries, tc.cities)
		}
		if len(partyCountries) != len(tc.cities) {
			t.Errorf("%s: parties in %v, want one per address", tc.ref, partyCountries)
		}
	}
}

func TestFTM(t *testing.T) {
	res, err := Parse("ftm", "", Files{Main: open(t, "ftm.json")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejects) != 1 || res.Rejects[0].Line != 3 {
		t.Errorf("rejects: %s", rejects(res))
	}
	recs := byRef(t, res)
	if len(recs) != 5 {
		t.Fatalf("%d records, want 5", len(recs))
	}
	// Addresses: an Address entity joined to its subject by addressEntity
	// (its parts kept), and the texts written on the subject itself.
	z := recs["ftm:NK-aU5ybkbRFJucf8YMwsJvDw"]
	if z == nil || len(z.Subject.Addresses) == 0 {
		t.Fatalf("NK-aU5ybkbRFJucf8YMwsJvDw: no addresses: %v", z)
	}
	if a := z.Subject.Addresses[0]; a.Street != "272 Pushkinskaya Street, Apt 41" || a.City != "Izhevsk" || a.PostalCode != "426008" || a.Country != "RU" {
		t.Errorf("address of the Address entity: %v", a)
	}
	if n := len(recs["ftm:NK-56Edov9bas9puzaChH5pBy"].Subject.Addresses); n != 2 {
		t.Errorf("NK-56Edov9bas9puzaChH5pBy: %d addresses, want its 2 address texts", n)
	}
	var cyrillic bool
	for _, r := range recs {
		for _, a := range r.Subject.Aliases {
			cyrillic = cyrillic || a.Script == "Cyrl"
		}
	}
	if !cyrillic {
		t.Error("no Cyrillic alias")
	}
}

func TestParseIsDeterministic(t *testing.T) {
	a, _ := Parse("ftm", "", Files{Main: open(t, "ftm.json")})
	b, _ := Parse("ftm", "", Files{Main: open(t, "ftm.json")})
	for i := range a.Items {
		if a.Items[i].Record.String() != b.Items[i].Record.String() {
			t.Fatalf("item %d differs between two parses of the same file", i)
		}
	}
}

func TestCountry(t *testing.T) {
	for in, want := range map[string]string{"Russia": "RU", "Iran": "IR", "Korea, North": "KP", "United Kingdom": "GB", "Democratic Republic of the Congo": "CD", "Zurich, Switzerland": "CH", "Atlantis": "",
		// Forms of the real editions: OFAC add.csv, the UN list.
		"Bahamas, The": "BS", "Congo, Republic of the": "CG", "Cote d Ivoire": "CI", "Côte d’Ivoire": "CI", "Region: Gaza": "PS",
		"Region: Northern Mali": "ML", "Saint Vincent and the Grenadines": "VC", "Trinidad and Tobago": "TT",
		"Virgin Islands, British": "VG", "China, Hong Kong Special Administrative Region": "HK", "Türkiye": "TR",
		"United Kingdom of Great Britain and Northern Ireland": "GB", "United States of America": "US",
		"Region: Kafia Kingi": "", "undetermined": ""} {
		if got := Country(in); got != want {
			t.Errorf("Country(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFreeTextIDs(t *testing.T) {
	s := &pb.Subject{}
	builder{s}.freeTextIDs("Vessel. International Maritime Organization (IMO) Number: 9187629. MMSI 572469210; IMO number: 1234568 (bad check digit)")
	var got []string
	for _, id := range s.Identifiers {
		got = append(got, id.Type.String()+" "+id.Value)
	}
	want := []string{"IDENTIFIER_TYPE_IMO 9187629", "IDENTIFIER_TYPE_OTHER 1234568", "IDENTIFIER_TYPE_MMSI 572469210"}
	if !slices.Equal(got, want) {
		t.Errorf("identifiers %v, want %v", got, want)
	}
}

// TestAliasParts splits the UN list's aliases of several names (real
// examples of the 2026-02 edition) and leaves a name with a remark whole.
func TestAliasParts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"Azim Adhajani; Azim Agha-Jani", []string{"Azim Adhajani", "Azim Agha-Jani"}},
		{"Mohammed Sabet; Mohammad Sabet b) M. Javad Kareemi Sabet; M. Jawad Kareemi Sabet", []string{"Mohammed Sabet", "Mohammad Sabet", "M. Javad Kareemi Sabet", "M. Jawad Kareemi Sabet"}},
		{"Jin Tiesan (金铁三)", []string{"Jin Tiesan", "金铁三"}},
		{"Amir Khazmat (original script: Амир Хазмат)", []string{"Amir Khazmat", "Амир Хазмат"}},
		{"حسن غول (Hassan Ghul; Hassan Gul; Hasan Gul)", []string{"حسن غول", "Hassan Ghul", "Hassan Gul", "Hasan Gul"}},
		{"Akhter Mohmad son of Noor Mohmad (اختر محمد ولد نور محمد ),", []string{"Akhter Mohmad son of Noor Mohmad", "اختر محمد ولد نور محمد"}},
		{"أنصار الشريعة بليبيا (Ansar al Charia in Libya (ASL))", []string{"أنصار الشريعة بليبيا", "Ansar al Charia in Libya (ASL)"}},
		{"شبكة أنصار المجاهدين (Ansar al-Mujahideen Network - sub-unit name)", []string{"شبكة أنصار المجاهدين", "Ansar al-Mujahideen Network"}},
		{"Hay’at Tahrir al-Sham (HTS) (هيئة تحرير الشام (original script); Hay’at Tahrir al-Sham; Hay’et Tahrir al-Sham; Hayat Tahrir al-Sham; Assembly for the Liberation of Syria)",
			[]string{"Hay’at Tahrir al-Sham (HTS)", "هيئة تحرير الشام", "Hay’at Tahrir al-Sham", "Hay’et Tahrir al-Sham", "Hayat Tahrir al-Sham", "Assembly for the Liberation of Syria"}},
		// One name: a remark or an acronym in parentheses stays.
		{"Encep Nurjaman (birth name)", nil},
		{"Al-Qaida in Yemen (AQY)", nil},
		{"Lom-ali Butayev (Butaev)", nil},
		{"X (A; B", nil},
	} {
		if got := aliasParts(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("aliasParts(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestWrongFormat reads a file as another format: the error names where
// and what, briefly, and nothing is read.
func TestWrongFormat(t *testing.T) {
	res, err := Parse("bis-dpl", "", Files{Main: open(t, "ftm.json")})
	if err == nil || !strings.Contains(err.Error(), `line 1: header: column "Name" missing`) || len(err.Error()) > 300 {
		t.Errorf("FTM read as the DPL: %v, %v; want the header refused in under 300 characters", res, err)
	}
	if _, err := Parse("un-xml", "", Files{Main: open(t, "ofac-sdn-2021/sdn.csv")}); err == nil || !strings.Contains(err.Error(), "line ") {
		t.Errorf("CSV read as UN XML: %v, want an error naming the line", err)
	}
}
