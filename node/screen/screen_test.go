package screen

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/watchfed/watchfed/node/names"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// listed is a small list in the shapes real lists have.
func listed() *Index {
	x := NewIndex()
	add := func(id string, schema pb.Schema, names []string, births []string, countries []string, ids ...Identifier) {
		e := &Entry{ID: id, Origin: "US-OFAC", Kind: pb.Kind_KIND_DESIGNATION, Schema: schema, BirthDates: births, Countries: countries, Identifiers: ids}
		for _, n := range names {
			e.Names = append(e.Names, Name{Text: n})
		}
		x.Put(e)
	}
	P, O, V := pb.Schema_SCHEMA_PERSON, pb.Schema_SCHEMA_ORGANIZATION, pb.Schema_SCHEMA_VESSEL
	add("putin", P, []string{"PUTIN, Vladimir Vladimirovich"}, []string{"1952-10-07"}, []string{"RU"})
	add("rotenberg", P, []string{"ROTENBERG, Arkady Romanovich"}, []string{"1951-12-15"}, []string{"RU"})
	add("bin-laden", P, []string{"BIN LADIN, Usama", "Osama bin Laden"}, []string{"1957"}, []string{"SA"})
	add("zawahiri", P, []string{"AL-ZAWAHIRI, Ayman Muhammad Rabi"}, []string{"1951-06-19"}, []string{"EG"})
	add("kim", P, []string{"KIM, Jong Un"}, []string{"1984-01-08"}, []string{"KP"})
	add("ivan-ivanov", P, []string{"IVANOV, Ivan Petrovich"}, []string{"1970"}, []string{"RU"}, Identifier{Type: pb.IdentifierType_IDENTIFIER_TYPE_PASSPORT, Value: "515731854"})
	add("al-haq", O, []string{"AL-HAQ FOUNDATION"}, nil, nil)
	add("abu-al-khayr", P, []string{"ABUALKHAYR, Muhsin"}, nil, nil)
	add("van-der-berg", P, []string{"VAN DER BERG, Pieter"}, nil, nil)
	add("zia-ul-haq", P, []string{"ZIA UL HAQ, Tariq"}, nil, nil)
	add("karim", P, []string{"KARIM AHMED KARIM"}, nil, nil)
	add("jj", O, []string{"J & J TRADING"}, nil, nil)
	add("smith", P, []string{"SMITH, John Robert"}, nil, nil)
	add("mohammed-ali", P, []string{"ALI, Mohammed Hassan"}, []string{"1975"}, []string{"IQ"})
	add("sovcomflot", O, []string{"PAO SOVCOMFLOT", "Sovkomflot PJSC"}, nil, []string{"RU"})
	add("tech-trade", O, []string{"TECH TRADE LLC"}, nil, []string{"AE"})
	add("rosneft", O, []string{"ROSNEFT OIL COMPANY", "NK Rosneft OAO"}, nil, []string{"RU"})
	add("nordic-corp", O, []string{"NORDIC INDUSTRIAL CORP"}, nil, []string{"SE"})
	add("aria", V, []string{"ARIA"}, nil, []string{"IR"}, Identifier{Type: pb.IdentifierType_IDENTIFIER_TYPE_IMO, Value: "IMO 9187629"})
	// Filler so that word weights look like a real list.
	for i := range 300 {
		add(fmt.Sprintf("filler-%d", i), P, []string{fmt.Sprintf("%s %s %s", firsts[i%len(firsts)], seconds[(i/3)%len(seconds)], lasts[(i*7)%len(lasts)])}, nil, nil)
	}
	return x
}

var (
	firsts  = []string{"Mohammed", "Ivan", "Ali", "John", "Ahmad", "Sergei", "Maria", "Abdul", "Hassan", "Omar"}
	seconds = []string{"Ibrahim", "Nikolaevich", "Karim", "Hussein", "Petrovich", "Yusuf", "Mahmoud", "Saleh"}
	lasts   = []string{"Smirnov", "Al-Rashid", "Haddad", "Kovalenko", "Qureshi", "Nasser", "Fedorov", "Mansour", "Khalil", "Darwish", "Sokolov", "Popov", "Hamdan", "Yilmaz", "Rahman"}
)

func TestScreenFinds(t *testing.T) {
	x := listed()
	for _, tc := range []struct {
		name  string
		q     Query
		want  string
		atMin float64
	}{
		{"exact, reordered", Query{Name: "Vladimir Vladimirovich Putin"}, "putin", 1},
		{"Russian in Cyrillic", Query{Name: "Владимир Владимирович Путин"}, "putin", 0.95},
		{"Russian in Cyrillic, no patronymic", Query{Name: "Путин Владимир"}, "putin", 0.8},
		{"missing middle name", Query{Name: "Vladimir Putin"}, "putin", 0.8},
		{"another transliteration", Query{Name: "Arkadiy Rotenberg"}, "rotenberg", 0.8},
		{"one typo", Query{Name: "Vladimir Vladimirovich Puttin"}, "putin", 0.9},
		{"two typos", Query{Name: "Vladimr Vladimirovich Putim"}, "putin", 0.85},
		{"Arabic script", Query{Name: "أسامة بن لادن"}, "bin-laden", 0.85},
		{"Arabic transliteration variant", Query{Name: "Usama bin Ladin"}, "bin-laden", 0.95},
		{"Arabic, other spelling and honorific", Query{Name: "Sheikh Ayman Mohammed Rabie al-Zawahri"}, "zawahiri", 0.85},
		{"initials", Query{Name: "J. U. Kim"}, "kim", 0.8},
		{"legal form variant", Query{Name: "Tech Trade GmbH"}, "tech-trade", 1},
		{"Russian legal form", Query{Name: "OOO Tech Trade"}, "tech-trade", 1},
		{"company, Cyrillic", Query{Name: "ПАО Совкомфлот"}, "sovcomflot", 0.9},
		{"vessel by IMO", Query{Name: "unknown vessel", IDs: []string{"9187629"}}, "aria", 1},
		{"IMO with its type words", Query{IDs: []string{"IMO number: 9187629"}}, "aria", 1},
		{"passport with its type word", Query{IDs: []string{"Passport 515731854"}}, "ivan-ivanov", 1},
		{"particle joined", Query{Name: "Alhaq Foundation"}, "al-haq", 0.95},
		{"particles split", Query{Name: "Muhsin Abu al-Khayr"}, "abu-al-khayr", 0.95},
		{"particles joined", Query{Name: "Pieter Vanderberg"}, "van-der-berg", 0.95},
		{"connective joined", Query{Name: "Tariq Ziaulhaq"}, "zia-ul-haq", 0.95},
		{"repeated word", Query{Name: "Karim Ahmed Karim"}, "karim", 0.99},
		{"repeated initial", Query{Name: "J&J Trading"}, "jj", 0.99},
		{"several initials", Query{Name: "J.R. Smith"}, "smith", 0.8},
		{"initial for the surname", Query{Name: "John Robert S."}, "smith", 0.8},
		{"birth date agrees", Query{Name: "Ivan Ivanov", BirthDate: "1970", Schema: pb.Schema_SCHEMA_PERSON}, "ivan-ivanov", 0.8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := x.Search(tc.q)
			if len(rs) == 0 {
				t.Fatalf("%q: no result", tc.q.Name)
			}
			if rs[0].Entry.ID != tc.want || rs[0].Score < tc.atMin {
				t.Fatalf("%q: top is %s at %.3f (%s), want %s at ≥ %.2f", tc.q.Name, rs[0].Entry.ID, rs[0].Score, rs[0].Explanation, tc.want, tc.atMin)
			}
			if rs[0].Explanation.String() == "" {
				t.Error("no explanation")
			}
		})
	}
}

func TestScreenRejects(t *testing.T) {
	x := listed()
	for _, tc := range []struct {
		name string
		q    Query
		not  string
	}{
		{"common first name alone", Query{Name: "Mohammed"}, "mohammed-ali"},
		{"common first name alone, Russian", Query{Name: "Ivan"}, "ivan-ivanov"},
		{"legal form alone", Query{Name: "Corp"}, "nordic-corp"},
		{"generic words", Query{Name: "Industrial Trading Corp"}, "nordic-corp"},
		{"unrelated person", Query{Name: "Emily Johnson"}, ""},
		{"birth date far off", Query{Name: "Ivan Petrovich Ivanov", BirthDate: "1999"}, "ivan-ivanov"},
		{"other schema and country", Query{Name: "Aria", Schema: pb.Schema_SCHEMA_PERSON, Countries: []string{"DE"}}, "aria"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Threshold = DefaultThreshold
			for _, r := range x.Search(tc.q) {
				if tc.not == "" || r.Entry.ID == tc.not {
					t.Errorf("%q matched %s at %.3f (%s), want below %.2f", tc.q.Name, r.Entry.ID, r.Score, r.Explanation, DefaultThreshold)
				}
			}
		})
	}
}

func TestThresholdZero(t *testing.T) {
	x := listed()
	q := Query{Name: "Vladimir Karimov"}
	if rs := x.Search(q); len(rs) == 0 || rs[0].Score >= DefaultThreshold {
		t.Fatalf("threshold 0: want every candidate, however low, got %d results", len(rs))
	}
	q.Threshold = DefaultThreshold
	if rs := x.Search(q); len(rs) != 0 {
		t.Errorf("threshold 0.8: want none, got %+v", rs[0])
	}
}

func TestExplainsRuns(t *testing.T) {
	x := listed()
	rs := x.Search(Query{Name: "Alhaq Foundation"})
	if len(rs) == 0 || !strings.Contains(rs[0].Explanation.String(), "alhaq~al haq(joined") {
		t.Errorf("want alhaq~al haq(joined) in the explanation, got %+v", rs)
	}
	// A short word one letter off counts a little: enough to rank, not
	// to match alone.
	rs = x.Search(Query{Name: "Kim Jonk Un", Threshold: 0.5})
	if len(rs) == 0 || rs[0].Entry.ID != "kim" || !strings.Contains(rs[0].Explanation.String(), "jonk~jong(typo 0.50)") || rs[0].Score >= 0.9 {
		t.Errorf("want kim first with jonk~jong(typo 0.50) below 0.9, got %+v", rs)
	}
}

func TestExplanation(t *testing.T) {
	x := listed()
	rs := x.Search(Query{Name: "Vladimir Puttin", Countries: []string{"RU"}, BirthDate: "1952-10-07"})
	if len(rs) == 0 || rs[0].Entry.ID != "putin" {
		t.Fatalf("want putin, got %+v", rs)
	}
	e := rs[0].Explanation
	if e.Matched != "PUTIN, Vladimir Vladimirovich" {
		t.Errorf("matched %q", e.Matched)
	}
	var typo, missing bool
	for _, w := range e.Words {
		typo = typo || (w.Query == "puttin" && w.Listed == "putin" && w.Similarity < 1)
		missing = missing || (w.Listed == "vladimirovich" && w.How == "missing")
	}
	if !typo || !missing {
		t.Errorf("words %+v: want puttin~putin and vladimirovich missing", e.Words)
	}
	var country, birth bool
	for _, f := range e.Features {
		country = country || (f.Name == "country" && f.Agrees)
		birth = birth || (f.Name == "birth_date" && f.Agrees && f.Effect > 0)
	}
	if !country || !birth {
		t.Errorf("features %+v: want country and birth date agreeing", e.Features)
	}
}

func TestIndexFollowsWrites(t *testing.T) {
	x := listed()
	if rs := x.Search(Query{Name: "Tech Trade"}); len(rs) == 0 {
		t.Fatal("tech trade not found")
	}
	// Amended: a new name replaces the old one.
	x.Put(&Entry{ID: "tech-trade", Schema: pb.Schema_SCHEMA_ORGANIZATION, Names: []Name{{Text: "Quantum Widgets FZE"}}})
	if rs := x.Search(Query{Name: "Tech Trade"}); len(rs) > 0 && rs[0].Entry.ID == "tech-trade" {
		t.Errorf("old name still matches: %+v", rs[0])
	}
	if rs := x.Search(Query{Name: "Quantum Widgets"}); len(rs) == 0 || rs[0].Entry.ID != "tech-trade" {
		t.Errorf("new name not found: %+v", rs)
	}
	// Delisted: gone, identifiers too.
	x.Remove("aria", 0)
	if rs := x.Search(Query{IDs: []string{"IMO 9187629"}}); len(rs) != 0 {
		t.Errorf("removed vessel still matches by IMO: %+v", rs)
	}
	entries, _ := x.Len()
	if entries != 318 {
		t.Errorf("%d entries, want 318", entries)
	}
	// A late write of an older version changes nothing.
	x.Put(&Entry{ID: "v", Version: 3, Names: []Name{{Text: "Version Three"}}})
	x.Put(&Entry{ID: "v", Version: 2, Names: []Name{{Text: "Version Two"}}})
	x.Remove("v", 1)
	if rs := x.Search(Query{Name: "Version Three"}); len(rs) == 0 || rs[0].Entry.Version != 3 {
		t.Errorf("version 3 lost to older writes: %+v", rs)
	}
}

func TestJaroWinkler(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want float64
	}{
		{"martha", "marhta", 0.961},
		{"dixon", "dicksonx", 0.813},
		{"abc", "xyz", 0},
		{"same", "same", 1},
	} {
		if got := jaroWinkler(tc.a, tc.b); got < tc.want-0.001 || got > tc.want+0.001 {
			t.Errorf("jw(%q, %q) = %.3f, want %.3f", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestJaroWinklerBits checks the bit-set Jaro-Winkler against the plain one
// on words that share letters in all sorts of places.
func TestJaroWinklerBits(t *testing.T) {
	ws := []string{"a", "ab", "ba", "martha", "marhta", "dixon", "dicksonx", "muhammad", "mohammed", "mhmd",
		"abdullah", "abdallah", "aaaaaaaa", "aaab", "baaa", "abcabcabc", "cbacbacba", "ra86572", "ra85672",
		"hussein", "husayn", "hsyn", "alkhayr", "khayr", "x1y2z3", "zyx321", strings.Repeat("ab", 32), strings.Repeat("ba", 32)}
	for _, a := range ws {
		for _, b := range ws {
			want := jw([]byte(a), []byte(b))
			got, ok := jwBits(a, b)
			if !ok || got != want {
				t.Errorf("jwBits(%q, %q) = %v, %v; jw says %v", a, b, got, ok, want)
			}
		}
	}
	// Random words of few letters, where the window and repeats matter.
	r := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		b := make([]byte, 1+r.IntN(20))
		for i := range b {
			b[i] = "abc1"[r.IntN(4)]
		}
		return string(b)
	}
	for range 20000 {
		a, b := word(), word()
		if got, _ := jwBits(a, b); got != jw([]byte(a), []byte(b)) {
			t.Fatalf("jwBits(%q, %q) = %v; jw says %v", a, b, got, jw([]byte(a), []byte(b)))
		}
	}
	if _, ok := jwBits("abc", "a-c"); ok {
		t.Error("jwBits took a word with a hyphen")
	}
}

func TestTopK(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		n := 1 + r.IntN(300)
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.IntN(20)) // many ties
		}
		want := slices.Clone(s)
		slices.SortFunc(want, func(a, b float32) int { return cmp.Compare(b, a) })
		k := 1 + r.IntN(n)
		got := topK(slices.Clone(s), k, func(v float32) float32 { return v })
		if !slices.Equal(got, want[:k]) {
			t.Fatalf("topK(%v, %d) = %v, want %v", s, k, got, want[:k])
		}
	}
}

func TestOneEdit(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"bank", "banp", true}, {"snam", "sanam", true}, {"kony", "konb", true}, {"abcd", "bacd", true},
		{"abcd", "abdc", true}, {"abc", "abcd", true}, {"abcd", "abcd", true},
		{"abcd", "badc", false}, {"abcd", "ab", false}, {"htut", "haubt", false}, {"abcd", "xbcy", false},
	} {
		if got := oneEdit(tc.a, tc.b); got != tc.want {
			t.Errorf("oneEdit(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestJWBound: the bound the candidate lookup skips words by is never below
// the similarity itself.
func TestJWBound(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	word := func() string {
		b := make([]byte, 1+r.IntN(12))
		for i := range b {
			b[i] = "abcdeiy17"[r.IntN(9)]
		}
		return string(b)
	}
	for range 50000 {
		a, b := word(), word()
		s, _ := jwBits(a, b)
		if bd := jwBound(len(a), letterBag(a), a[0], len(b), letterBag(b), b[0]); bd < s-1e-12 {
			t.Fatalf("jwBound(%q, %q) = %v below jw %v", a, b, bd, s)
		}
	}
}

// TestOtherNames: words that differ in their ending, or a query word some
// listed name has with other consonants than the listed word, count as
// other names (0.7 at most), while typos and romanisations keep theirs.
func TestOtherNames(t *testing.T) {
	for _, tc := range []struct {
		q, l, how string
	}{
		{"andrew", "andre", "ending"}, {"evgenia", "evgeni", "ending"}, {"ivanova", "ivanov", "ending"},
		{"mario", "maria", "ending"}, {"abdullahi", "abdullah", "ending"},
		{"abdullah", "abdulla", "similar"}, {"rabie", "rabi", "similar"}, // a final h or e is a romanisation
		{"dzhavkhar", "jawhar", "transliteration"},
		{"vladimirvich", "vladimirovich", "similar"},
	} {
		sim, how := tokenSim(tc.q, tc.l, 0)
		if how != tc.how || how == "ending" && sim > endingSim {
			t.Errorf("tokenSim(%q, %q) = %.2f %s, want %s", tc.q, tc.l, sim, how, tc.how)
		}
	}
	x := NewIndex()
	x.Put(&Entry{ID: "farshad", Names: []Name{{Text: "HAKEMZADEH, Farshad"}}})
	x.Put(&Entry{ID: "farhad", Names: []Name{{Text: "MAHFUD, Farhad"}}})
	rs := x.Search(Query{Name: "Farhad Hakemzadeh", Threshold: 0})
	if len(rs) == 0 || rs[0].Entry.ID != "farshad" || rs[0].Score >= 0.9 || !strings.Contains(rs[0].Explanation.String(), "farhad~farshad(another 0.70)") {
		t.Errorf("want farshad first below 0.9 with farhad~farshad(another 0.70), got %+v", rs)
	}
	// A typo that makes no listed word keeps its similarity.
	rs = x.Search(Query{Name: "Farsshad Hakemzadeh", Threshold: 0})
	if len(rs) == 0 || rs[0].Entry.ID != "farshad" || rs[0].Score < 0.9 {
		t.Errorf("want farshad first at 0.9 or more, got %+v", rs)
	}
}

// TestOtherPersonsName: a person's name with a word judged another name
// (another given name of the list, another ending) stays under the
// threshold however rare the surname written the same, and says why; a
// typo does not, nor does a company's name. These are the rules without a
// lexicon of given names (TestGivenNamesLexicon, TestDefaultGivenNames).
func TestOtherPersonsName(t *testing.T) {
	x := listed()
	x.UseGivenNames(nil)
	P, O := pb.Schema_SCHEMA_PERSON, pb.Schema_SCHEMA_ORGANIZATION
	for _, e := range []*Entry{
		{ID: "beseda", Schema: P, Names: []Name{{Text: "BESEDA, Sergey"}}},
		{ID: "lopez", Schema: P, Names: []Name{{Text: "LOPEZ OBRADOR, Sergio"}}},
		{ID: "husayn", Schema: P, Names: []Name{{Text: "HUSAYN, Wahid"}}},
		{ID: "andre", Schema: P, Names: []Name{{Text: "ANDRE, Johnson"}}},
		{ID: "milovan", Schema: P, Names: []Name{{Text: "MARIJANOVIC, Milovan"}}},
		{ID: "petro", Schema: O, Names: []Name{{Text: "PETRO ROYAL FZE"}}},
		{ID: "petroleum", Schema: O, Names: []Name{{Text: "PETROLEUM DEVELOPMENT CO"}}},
		{ID: "milan", Schema: O, Names: []Name{{Text: "MILAN SHIPPING"}}},
		{ID: "krylov", Schema: P, Names: []Name{{Text: "KRYLOV, Vladimir"}}},
		{ID: "keita", Schema: P, Names: []Name{{Text: "KEITA, Karim"}}},
	} {
		x.Put(e)
	}
	for _, tc := range []struct {
		query, first string
		atLeast08    bool
		capped       string // the pair other_name names, "" for none
	}{
		{"Sergio Beseda", "beseda", false, "sergio~sergey"},      // another given name of the list
		{"Andrew Johnson", "andre", false, "andrew~andre"},       // another ending
		{"Milan Marijanovic", "milovan", false, "milan~milovan"}, // a word of the list, two edits off
		{"Vadim Krylov", "krylov", false, "vadim~vladimir"},      // other consonants, more than one edit off
		{"Sergey Beseda", "beseda", true, ""},
		{"Karin Keita", "keita", true, ""},         // one letter off: a typo as often                    // as listed
		{"Segrey Beseda", "beseda", true, ""},      // a typo
		{"Husay Wahid", "husayn", true, ""},        // the last letter dropped: a typo as often
		{"Petroleum Royal FZE", "petro", true, ""}, // a company: no cap
	} {
		t.Run(tc.query, func(t *testing.T) {
			rs := x.Search(Query{Name: tc.query})
			if len(rs) == 0 || rs[0].Entry.ID != tc.first {
				t.Fatalf("%q: want %s first, got %+v", tc.query, tc.first, rs)
			}
			r := rs[0]
			if (r.Score >= DefaultThreshold) != tc.atLeast08 {
				t.Errorf("%q: %.3f (%s), want at least %.2f: %v", tc.query, r.Score, r.Explanation, DefaultThreshold, tc.atLeast08)
			}
			got := strings.Contains(r.Explanation.String(), "other_name")
			if got != (tc.capped != "") || tc.capped != "" && !strings.Contains(r.Explanation.String(), "other_name differs") ||
				tc.capped != "" && !strings.Contains(r.Explanation.String(), tc.capped+": another person's name") {
				t.Errorf("%q: explanation %s, want other_name for %q", tc.query, r.Explanation, tc.capped)
			}
		})
	}
}

// TestGivenNamesLexicon checks the matching with a lexicon of given names:
// another given name of it is another person's name however alike, the same
// name in another language is the same name, and without a lexicon nothing
// changes.
func TestGivenNamesLexicon(t *testing.T) {
	const lexicon = `name;gender;GB;ES;RU;TR
Edward;M;-2;;;
Eduardo;M;;-2;;
Karin;F;-4;;;
Karim;M;;;;-3
Sergey;M;;;-1;
Sergio;M;;-2;;
Yusuf;M;;;;-1
Yousef;M;;;;-3
`
	g, err := names.ParseGivenNames(strings.NewReader(lexicon), -8)
	if err != nil {
		t.Fatal(err)
	}
	P := pb.Schema_SCHEMA_PERSON
	build := func(g *names.GivenNames) *Index {
		x := listed()
		x.UseGivenNames(g)
		for _, e := range []*Entry{
			{ID: "keita", Schema: P, Names: []Name{{Text: "KEITA, Karim"}}},
			{ID: "pardo", Schema: P, Names: []Name{{Text: "PARDO ESPINO, Eduardo"}}},
			{ID: "beseda", Schema: P, Names: []Name{{Text: "BESEDA, Sergey"}}},
			{ID: "qasim", Schema: P, Names: []Name{{Text: "QASIM, Yusuf"}}},
		} {
			x.Put(e)
		}
		return x
	}
	for _, tc := range []struct {
		query, first  string
		with, without bool   // at 0.8 or more with the lexicon, without it
		explains      string // with the lexicon
	}{
		{"Karin Keita", "keita", false, true, "(karin~karim: another person's name, under 0.80)"},
		{"Edward Pardo Espino", "pardo", true, true, "edward~eduardo(equivalent 0.90)"},
		{"Sergio Beseda", "beseda", true, false, "sergio~sergey(equivalent 0.90)"},
		{"Yousef Qasim", "qasim", true, true, ""}, // another romanisation: not capped
		{"Kerim Keita", "keita", true, true, ""},  // a typo the lexicon does not know
	} {
		for _, with := range []bool{true, false} {
			x := build(nil)
			if with {
				x = build(g)
			}
			rs := x.Search(Query{Name: tc.query})
			if len(rs) == 0 || rs[0].Entry.ID != tc.first {
				t.Fatalf("%q (lexicon %v): want %s first, got %+v", tc.query, with, tc.first, rs)
			}
			r := rs[0]
			want := tc.without
			if with {
				want = tc.with
			}
			if (r.Score >= DefaultThreshold) != want {
				t.Errorf("%q (lexicon %v): %.3f (%s), want at least %.2f: %v", tc.query, with, r.Score, r.Explanation, DefaultThreshold, want)
			}
			if with && !strings.Contains(r.Explanation.String(), tc.explains) {
				t.Errorf("%q: explanation %s, want %q", tc.query, r.Explanation, tc.explains)
			}
			if with && tc.explains == "" && strings.Contains(r.Explanation.String(), "other_name") {
				t.Errorf("%q: explanation %s, want no other_name", tc.query, r.Explanation)
			}
		}
	}
}

// TestInitialW: a w before a listed person's given name makes another given
// name where the query word is some listed person's given name too, without
// a lexicon ("Warin" and "Arin"); a word no list has as a given name is
// left a typo.
func TestInitialW(t *testing.T) {
	x := listed()
	x.UseGivenNames(nil)
	P := pb.Schema_SCHEMA_PERSON
	for _, e := range []*Entry{
		{ID: "janpra", Schema: P, Names: []Name{{Text: "JANPRAPAPORN, Arin"}}},
		{ID: "other", Schema: P, Names: []Name{{Text: "SOMCHAI, Warin"}}},
	} {
		x.Put(e)
	}
	for _, tc := range []struct {
		query     string
		atLeast08 bool
		explains  string
	}{
		{"Warin Janprapaporn", false, "warin~arin(other-given"},
		{"Arin Janprapaporn", true, ""},
	} {
		rs := x.Search(Query{Name: tc.query})
		if len(rs) == 0 || rs[0].Entry.ID != "janpra" {
			t.Fatalf("%q: want janpra first, got %+v", tc.query, rs)
		}
		r := rs[0]
		if (r.Score >= DefaultThreshold) != tc.atLeast08 || !strings.Contains(r.Explanation.String(), tc.explains) {
			t.Errorf("%q: %.3f (%s), want at least %.2f: %v, explained %q", tc.query, r.Score, r.Explanation, DefaultThreshold, tc.atLeast08, tc.explains)
		}
	}
}

// TestOneEditGivenName: a query word attested as a given name (some listed
// person's, or the lexicon's) one letter from a listed given name with other
// consonants is another person's name ("Saud" for "Saul"); a word attested
// nowhere as a given name is left a typo, and so is a pair of one consonant
// key.
func TestOneEditGivenName(t *testing.T) {
	g, err := names.ParseGivenNames(strings.NewReader("name;gender;VN\nMai;F;-2\n"), -8)
	if err != nil {
		t.Fatal(err)
	}
	P := pb.Schema_SCHEMA_PERSON
	for _, tc := range []struct {
		query, first string
		lexicon      *names.GivenNames
		atLeast08    bool
		explains     string
	}{
		{"Saud Paez Lopez", "paez", nil, false, "saud~saul(other-given"}, // a listed given name
		{"Saul Paez Lopez", "paez", nil, true, ""},
		{"Sauk Paez Lopez", "paez", nil, true, ""},                 // no given name: a typo
		{"Mai Jafari", "jafari", g, false, "mai~mani(other-given"}, // a given name of the lexicon
		{"Mai Jafari", "jafari", nil, true, ""},
		{"Jamal Hamdan", "hamdan", nil, true, ""},                       // jamal, jamil: one consonant key
		{"Rabie Sharif", "sharif", names.DefaultGivenNames(), true, ""}, // a final e: another romanisation
	} {
		x := listed()
		x.UseGivenNames(tc.lexicon)
		for _, e := range []*Entry{
			{ID: "paez", Schema: P, Names: []Name{{Text: "PAEZ LOPEZ, Saul"}}},
			{ID: "faisal", Schema: P, Names: []Name{{Text: "AL-FAISAL, Saud"}}},
			{ID: "jafari", Schema: P, Names: []Name{{Text: "JAFARI, Mani"}}},
			{ID: "hamdan", Schema: P, Names: []Name{{Text: "HAMDAN, Jamil"}}},
			{ID: "other", Schema: P, Names: []Name{{Text: "NASSER, Jamal"}}},
			{ID: "sharif", Schema: P, Names: []Name{{Text: "SHARIF, Rabi"}}},
		} {
			x.Put(e)
		}
		rs := x.Search(Query{Name: tc.query})
		if len(rs) == 0 || rs[0].Entry.ID != tc.first {
			t.Fatalf("%q: want %s first, got %+v", tc.query, tc.first, rs)
		}
		r := rs[0]
		if (r.Score >= DefaultThreshold) != tc.atLeast08 || !strings.Contains(r.Explanation.String(), tc.explains) {
			t.Errorf("%q (lexicon %v): %.3f (%s), want at least %.2f: %v, explained %q", tc.query, tc.lexicon != nil, r.Score, r.Explanation, DefaultThreshold, tc.atLeast08, tc.explains)
		}
	}
}

// TestDefaultGivenNames: a new index tells given names apart with the
// project's lexicon (names.DefaultGivenNames), and says so in the result.
func TestDefaultGivenNames(t *testing.T) {
	x := listed()
	P := pb.Schema_SCHEMA_PERSON
	for _, e := range []*Entry{
		{ID: "keita", Schema: P, Names: []Name{{Text: "KEITA, Karim"}}},
		{ID: "pardo", Schema: P, Names: []Name{{Text: "PARDO ESPINO, Eduardo"}}},
		{ID: "beseda", Schema: P, Names: []Name{{Text: "BESEDA, Sergey"}}},
		{ID: "moran", Schema: P, Names: []Name{{Text: "MORAN, Bilal"}}},
		{ID: "kovac", Schema: P, Names: []Name{{Text: "KOVAC, Asim"}}},
	} {
		x.Put(e)
	}
	for _, tc := range []struct {
		query, first string
		atLeast08    bool
		explains     string
	}{
		// two names of the lexicon, one consonant key, no form group
		{"Bilawal Moran", "moran", false, "bilawal~bilal(other-given"},
		// a w before a given name
		{"Wasim Kovac", "kovac", false, "wasim~asim(other-given"},
		{"Asim Kovac", "kovac", true, ""},
		// a woman's form the lexicon lacks of a man's name it has
		{"Eduarda Pardo Espino", "pardo", false, "eduarda~eduardo(other-given"},
		{"Karin Keita", "keita", false, "karin~karim(other-given"},
		{"Edward Pardo Espino", "pardo", true, "edward~eduardo(equivalent 0.90)"},
		{"Sergio Beseda", "beseda", true, "sergio~sergey(equivalent 0.90)"},
		{"Karum Keita", "keita", true, ""}, // a typo the lexicon does not know
		{"Karim Keita", "keita", true, ""},
	} {
		rs := x.Search(Query{Name: tc.query})
		if len(rs) == 0 || rs[0].Entry.ID != tc.first {
			t.Fatalf("%q: want %s first, got %+v", tc.query, tc.first, rs)
		}
		r := rs[0]
		if (r.Score >= DefaultThreshold) != tc.atLeast08 {
			t.Errorf("%q: %.3f (%s), want at least %.2f: %v", tc.query, r.Score, r.Explanation, DefaultThreshold, tc.atLeast08)
		}
		if !strings.Contains(r.Explanation.String(), tc.explains) || tc.explains == "" && strings.Contains(r.Explanation.String(), "other_name") {
			t.Errorf("%q: explanation %s, want %q", tc.query, r.Explanation, tc.explains)
		}
	}
}

// TestAlikeGivenName: a person's given name matched only as alike (a few
// letters off, or the same consonants without vowels) keeps the name under
// 0.9 however rare its surname, and a one-letter typo of it still at 0.8 or
// more, first; the same name as written, in another romanisation or by the
// lexicon is not held down.
func TestAlikeGivenName(t *testing.T) {
	P := pb.Schema_SCHEMA_PERSON
	x := listed()
	for _, e := range []*Entry{
		{ID: "parra", Schema: P, Names: []Name{{Text: "PARRA SANCHEZ, Mario"}}},
		{ID: "zagaria", Schema: P, Names: []Name{{Text: "ZAGARIA, Carmine"}}},
		{ID: "hamdan", Schema: P, Names: []Name{{Text: "HAMDAN, Ahmad"}}},
		{ID: "kuznetsov", Schema: P, Names: []Name{{Text: "KUZNETSOV, Muhammad"}}},
		{ID: "pardo", Schema: P, Names: []Name{{Text: "PARDO ESPINO, Eduardo"}}},
	} {
		x.Put(e)
	}
	for _, tc := range []struct {
		query, first string
		atLeast09    bool
		explains     string
	}{
		{"Marcio Parra Sanchez", "parra", false, "alike_given"}, // another given name two letters off
		{"Karine Zagaria", "zagaria", false, "alike_given"},
		{"Mairo Parra Sanchez", "parra", false, "alike_given"}, // a typo: still found
		{"Carmien Zagaria", "zagaria", false, "alike_given"},   // a typo: still found
		{"احمد همدان", "hamdan", false, "alike_given"},         // ahmd: Ahmad's consonants, as much Ahmed, Hamad
		{"Mario Parra Sanchez", "parra", true, ""},             // as written
		{"Mukhammad Kuznetsov", "kuznetsov", true, ""},         // another romanisation
		{"Edward Pardo Espino", "pardo", true, "equivalent"},   // the same name by the lexicon
	} {
		rs := x.Search(Query{Name: tc.query})
		if len(rs) == 0 || rs[0].Entry.ID != tc.first {
			t.Fatalf("%q: want %s first, got %+v", tc.query, tc.first, rs)
		}
		r := rs[0]
		if r.Score < DefaultThreshold || (r.Score >= 0.9) != tc.atLeast09 || !strings.Contains(r.Explanation.String(), tc.explains) {
			t.Errorf("%q: %.3f (%s), want at least 0.8, at least 0.9: %v, explained %q", tc.query, r.Score, r.Explanation, tc.atLeast09, tc.explains)
		}
	}
}

// TestConsonantsWrittenWithVowels: the consonant key pairs words of which
// one was written without vowels (Arabic, Hebrew, Persian), in the query or
// in the listed name being scored; not two words written with their vowels
// because some other listed name writes one of them without ("star" of
// GOLDEN STAR and ستار).
func TestConsonantsWrittenWithVowels(t *testing.T) {
	x := listed()
	for _, e := range []*Entry{
		{ID: "golden", Schema: pb.Schema_SCHEMA_ORGANIZATION, Names: []Name{{Text: "GOLDEN STAR CO"}}},
		{ID: "sattar", Schema: pb.Schema_SCHEMA_ORGANIZATION, Names: []Name{{Text: "ستار"}}},
	} {
		x.Put(e)
	}
	for _, tc := range []struct {
		query, first string
		atLeast09    bool
		explains     string
	}{
		{"Golden Stroy S.A.", "golden", false, ""},
		{"Golden Star", "golden", true, ""},
		{"Satar", "sattar", false, "consonants"}, // against the word written without vowels (one word: 0.9²)
		{"ستار", "sattar", true, ""},
	} {
		rs := x.Search(Query{Name: tc.query, Threshold: 0.01})
		if len(rs) == 0 || rs[0].Entry.ID != tc.first {
			t.Fatalf("%q: want %s first, got %+v", tc.query, tc.first, rs)
		}
		r := rs[0]
		if (r.Score >= 0.9) != tc.atLeast09 || !strings.Contains(r.Explanation.String(), tc.explains) {
			t.Errorf("%q: %.3f (%s), want at least 0.9: %v, explained %q", tc.query, r.Score, r.Explanation, tc.atLeast09, tc.explains)
		}
	}
}

// TestAbjadLongVowels: a word written without short vowels writes its long
// ones, where the other word has a vowel of that kind; two such words
// write the same; three consonants or fewer say little when the Latin word
// has a first or last vowel the other does not write. Issue 18's false
// matches of ordinary names written in Arabic and Hebrew letters.
func TestAbjadLongVowels(t *testing.T) {
	for _, tc := range []struct {
		q, l     string
		abjad    uint8
		min, max float64
	}{
		{"mhmd", "muhammad", abjadQ, 0.9, 1},
		{"muhammad", "mhmd", abjadL, 0.9, 1},
		{"hsyn", "hussein", abjadQ, 0.9, 1},
		{"hsyn", "husayn", abjadQ, 0.9, 1},
		{"hsn", "hasan", abjadQ, 0.9, 1},
		{"ahmd", "ahmad", abjadQ, 0.9, 1},
		{"sjad", "sajjad", abjadQ, 0.9, 1},
		{"bghdady", "baghdadi", abjadQ, 0.9, 1},
		{"ywsf", "yousef", abjadQ, 0.9, 1},
		{"alastadz", "alustadz", abjadQ, 0.9, 1}, // أ after the article carries any vowel
		{"alasd", "alassad", abjadQ, 0.9, 1},
		{"hsyn", "hisn", abjadQ, 0, 0.75},         // آل حسين, AL-HISN
		{"alhjar", "alhijra", abjadQ, 0, 0.75},    // الحجار, AL-HIJRA
		{"hmdy", "hamoud", abjadQ, 0, 0.75},       // حمدي, HAMOUD
		{"alshykh", "alshawakh", abjadQ, 0, 0.75}, // الشيخ, AL-SHAWAKH
		{"twly", "tile", abjadQ, 0, 0.75},         // تولي, TILE
		{"krymy", "karami", abjadQ, 0, 0.7},       // کریمی, KARAMI
		{"rswly", "rasoul", abjadQ, 0, 0.75},
		{"hmyd", "ahmad", abjadQ, 0, 0.75}, // حميد, Hamid
		{"tile", "twly", abjadL, 0, 0.75},
		{"stroy", "star", abjadL, 0, 0.75},                // ستار
		{"alansary", "alansar", abjadQ | abjadL, 0, 0.75}, // الأنصاري, الأنصار
		{"rvnn", "arvin", abjadQ, 0, 0.85},                // רונן, ARVIN
		{"gld", "gilda", abjadQ, 0, 0.85},                 // גלעד, GILDA
		{"bkr", "abukar", abjadQ, 0, 0.85},                // בכר, ABUKAR
		{"shrf", "ashraf", abjadQ, 0, 0.85},               // شرف, ASHRAF
		{"ashrfy", "sharifi", abjadQ, 0, 0.75},            // اشرفی, SHARIFI: its alif is a vowel
		{"sharifi", "ashrfy", abjadL, 0, 0.75},
		{"ashrfy", "ashrafi", abjadQ, 0.9, 1},
		{"alastadz", "alstadz", abjadQ, 0, 0.75}, // أ after the article is a vowel too
	} {
		if sim, how := tokenSim(tc.q, tc.l, tc.abjad); sim < tc.min || sim > tc.max {
			t.Errorf("tokenSim(%q, %q, %d) = %.2f %s, want %.2f..%.2f", tc.q, tc.l, tc.abjad, sim, how, tc.min, tc.max)
		}
	}

	x := listed()
	for _, e := range []*Entry{
		{ID: "hisn", Schema: pb.Schema_SCHEMA_ORGANIZATION, Names: []Name{{Text: "AL-HISN"}}},
		{ID: "hijra", Schema: pb.Schema_SCHEMA_ORGANIZATION, Names: []Name{{Text: "AL-HIJRA"}}},
		{ID: "usba", Schema: pb.Schema_SCHEMA_ORGANIZATION, Names: []Name{{Text: "عصبة الأنصار"}}},
		{ID: "arvin", Schema: pb.Schema_SCHEMA_PERSON, Names: []Name{{Text: "ARVIN"}}},
		{ID: "shawakh", Schema: pb.Schema_SCHEMA_PERSON, Names: []Name{{Text: "Ali al-Hamoud al-Shawakh"}}},
		{ID: "baghdadi", Schema: pb.Schema_SCHEMA_PERSON, Names: []Name{{Text: "AL-BAGHDADI, Abu Bakr"}}},
		{ID: "hussein", Schema: pb.Schema_SCHEMA_PERSON, Names: []Name{{Text: "HUSSEIN, Saddam"}}},
	} {
		x.Put(e)
	}
	for _, tc := range []struct {
		query, id string
		min, max  float64
	}{
		{"آل حسين Inc", "hisn", 0, 0.85}, // al as written, hsyn~hisn at most 0.7
		{"الحجار PLC", "hijra", 0, 0.8},
		{"سبأ الأنصاري", "usba", 0, 0.9},
		{"רונן LLC", "arvin", 0, 0.8},
		{"حمدي آل الشيخ", "shawakh", 0, 0.8},
		{"أبو بكر البغدادي", "baghdadi", 0.75, 1}, // abw~abu a short word's typo
		{"صدام حسين", "hussein", 0.85, 1},         // sdam~saddam a given name alike
	} {
		score := 0.0
		for _, r := range x.Search(Query{Name: tc.query, Threshold: 0.01}) {
			if r.Entry.ID == tc.id {
				score = r.Score
			}
		}
		if score < tc.min || score >= tc.max && tc.max < 1 {
			t.Errorf("%q against %s: %.3f, want %.2f..%.2f", tc.query, tc.id, score, tc.min, tc.max)
		}
	}
}

// TestAyinStartsWord: an ع that starts a word (علي, عمر, عثمان, عبد) stands
// for the vowel the Latin spelling writes there, as أ does, so a listed name
// written in Arabic letters is found first; transliteration dropped it
// (علي read "ly", one consonant, no longer "ali").
func TestAyinStartsWord(t *testing.T) {
	P, O := pb.Schema_SCHEMA_PERSON, pb.Schema_SCHEMA_ORGANIZATION
	x := listed()
	for _, e := range []*Entry{
		{ID: "omar", Schema: P, Names: []Name{{Text: "OMAR, Mullah Mohammed"}}},
		{ID: "uthman", Schema: P, Names: []Name{{Text: "UTHMAN, Abd al-Rahman"}}},
		{ID: "omari", Schema: P, Names: []Name{{Text: "AL-OMARI, Ali Saleh"}}},
		{ID: "ali-abd", Schema: P, Names: []Name{{Text: "Ali Abd al-Karim Mustafa"}}},
		{ID: "ansar", Schema: O, Names: []Name{{Text: "ASBAT AL-ANSAR"}}},
	} {
		x.Put(e)
	}
	for _, tc := range []struct{ query, id string }{
		{"علي محمد حسن", "mohammed-ali"},
		{"محمد عمر", "omar"},
		{"عبد الرحمن عثمان", "uthman"},
		{"علي صالح العمري", "omari"},
		{"علي عبد الكريم مصطفى", "ali-abd"},
		{"عصبة الأنصار", "ansar"},
	} {
		rs := x.Search(Query{Name: tc.query, Threshold: 0.01})
		if len(rs) == 0 || rs[0].Entry.ID != tc.id || rs[0].Score < 0.8 {
			got := "nothing"
			if len(rs) > 0 {
				got = fmt.Sprintf("%s %.3f", rs[0].Entry.ID, rs[0].Score)
			}
			t.Errorf("%q: first %s, want %s at 0.8 or more", tc.query, got, tc.id)
		}
	}
}

// TestTwoEditsGivenName: a given name of the lexicon or of a listed person
// two letters from a listed person's given name with other consonants, which
// the lexicon does not relate to it, is another person's name (capped under
// DefaultThreshold, the entry still first); a word attested nowhere as a given
// name two letters off stays what it was, and so does one consonant key.
func TestTwoEditsGivenName(t *testing.T) {
	P := pb.Schema_SCHEMA_PERSON
	x := listed()
	for _, e := range []*Entry{
		{ID: "shen", Schema: P, Names: []Name{{Text: "SHEN, Luqian"}}},
		{ID: "khouri", Schema: P, Names: []Name{{Text: "KHOURI, Atiya"}}},
		{ID: "fakhri", Schema: P, Names: []Name{{Text: "FAKHRI, Abdulkarim"}}},
	} {
		x.Put(e)
	}
	for _, tc := range []struct {
		query, first string
		atLeast08    bool
		explains     string
	}{
		{"Lucia Shen", "shen", false, "lucia~luqian(other-given"},      // lucia: the lexicon's
		{"Attila Khouri", "khouri", false, "attila~atiya(other-given"}, // attila: the lexicon's
		{"Luqiaa Shen", "shen", true, "luqiaa~luqian"},                 // one edit, no given name: a typo
		{"Atilya Khouri", "khouri", true, "atilya~atiya"},              // no given name: a typo
	} {
		rs := x.Search(Query{Name: tc.query, Threshold: 0.01})
		if len(rs) == 0 || rs[0].Entry.ID != tc.first {
			t.Fatalf("%q: want %s first, got %+v", tc.query, tc.first, rs)
		}
		r := rs[0]
		if (r.Score >= DefaultThreshold) != tc.atLeast08 || !strings.Contains(r.Explanation.String(), tc.explains) {
			t.Errorf("%q: %.3f (%s), want at least %.2f: %v, explained %q", tc.query, r.Score, r.Explanation, DefaultThreshold, tc.atLeast08, tc.explains)
		}
	}
}

// A word two edits from a listed word may share a single trigram of the
// seven counted with it (gahnvem~ghanem: a swap and a letter added; szriif~
// sizif); similar took it only when it shared two.
func TestTwoTyposOneTrigram(t *testing.T) {
	x := listed()
	P, O := pb.Schema_SCHEMA_PERSON, pb.Schema_SCHEMA_ORGANIZATION
	for _, e := range []struct {
		id     string
		schema pb.Schema
		name   string
	}{{"ghanem", P, "GHANEM, Ali"}, {"sizif", O, "SIZIF V OOD"}} {
		x.Put(&Entry{ID: e.id, Origin: "US-OFAC", Kind: pb.Kind_KIND_DESIGNATION, Schema: e.schema, Names: []Name{{Text: e.name}}})
	}
	for _, tc := range []struct{ query, want, pair string }{
		{"gahnvem", "ghanem", "gahnvem~ghanem"}, // with "ali", "ali" finds it on a list this small
		{"szriif v", "sizif", "szriif~sizif"},
	} {
		rs := x.Search(Query{Name: tc.query})
		i := slices.IndexFunc(rs, func(r Result) bool { return r.Entry.ID == tc.want })
		if i < 0 || !strings.Contains(rs[i].Explanation.String(), tc.pair) {
			t.Errorf("%q: want %s among the first ten, %s paired: %v", tc.query, tc.want, tc.pair, rs)
		}
	}
}

func TestEditsWithin2(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"lucia", "luqian", true}, // changed, added
		{"saud", "saul", true},
		{"abcd", "bacd", true},     // swapped
		{"abcdef", "badcef", true}, // two swaps
		{"attila", "atiya", true},
		{"maarit", "mario", true},
		{"samuel", "ismael", false},
		{"ab", "abcde", false},
		{"karim", "karim", true},
		{"vladimir", "ladimr", true},
		{"vladimir", "ldimr", false},
	} {
		if got := editsWithin2(tc.a, tc.b); got != tc.want {
			t.Errorf("editsWithin2(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := editsWithin2(tc.b, tc.a); got != tc.want {
			t.Errorf("editsWithin2(%q, %q) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestSpoilable(t *testing.T) {
	for _, tc := range []struct {
		at   string // positions of the trigrams not shared, as x; the one shared as o
		d    int
		want bool
	}{
		{"xxxoxxx", 0, true}, // a letter changed or added in each half
		{"xxxoxxx", -2, true},
		{"xxxoxxx", 1, false}, // a letter dropped spoils two
		{"oxxxxxx", 0, true},
		{"xoxxxxx", 0, false},
		{"xxoxxxx", -1, false},
		{"xxxxxxo", 0, true},
		{"xxoxxx", 1, true},
		{"xoxxxx", 1, false},
		{"xxoxx", 2, true},
		{"xxxox", 2, false},
	} {
		var m uint64
		for i, c := range tc.at {
			if c == 'x' {
				m |= 1 << i
			}
		}
		if got := spoilable(m, tc.d); got != tc.want {
			t.Errorf("spoilable(%s, %d) = %v, want %v", tc.at, tc.d, got, tc.want)
		}
	}
}

func TestTwoTyposOneWord(t *testing.T) {
	x := listed()
	P, O := pb.Schema_SCHEMA_PERSON, pb.Schema_SCHEMA_ORGANIZATION
	for _, e := range []struct {
		id     string
		schema pb.Schema
		name   string
	}{
		{"photon", O, "PHOTON PRO LLP"}, {"etalon", O, "LLC ETALON PRO"},
		{"ibs-soft", O, "IBS SOFT LTD"}, {"ep-ibs", O, "EP-IBS"},
		{"htut", P, "HTUT, Soe"}, {"soe-aung", P, "SOE, Aung"},
		{"rojas", P, "ROJAS FRANCO, Jaime"}, {"qadir", P, "ABD-AL-QADIR, Abd-al-'Aziz"},
		{"labor", O, "MINISTRY OF LABOR"},
	} {
		x.Put(&Entry{ID: e.id, Origin: "US-OFAC", Kind: pb.Kind_KIND_DESIGNATION, Schema: e.schema, Names: []Name{{Text: e.name}}})
	}
	for _, tc := range []struct {
		query, first, pair string
		below              float64 // the first result scores under it
	}{
		{"pohtoz pro", "photon", "pohtoz~photon(typo2 0.40)", 0.8},
		{"ibs sotn", "ibs-soft", "sotn~soft(typo2 0.40)", 0.8},
		{"haubt soe", "htut", "haubt~htut(typo2 0.40)", 0.8},
		// a listed surname with another given name two edits off: ranked,
		// never a match
		{"maite rojas franco", "rojas", "maite~jaime(typo2 0.40)", 0.8},
		// not with a particle: as if "abahd" were left over
		{"abd al qadir abahd al aziz", "qadir", "+abahd", 1},
		// within two edits, Jaro-Winkler little alike: no less than two edits
		{"miistry labor", "labor", "miistry~ministry(similar 0.40)", 0.8},
	} {
		rs := x.Search(Query{Name: tc.query, Threshold: 0.01})
		if len(rs) == 0 || rs[0].Entry.ID != tc.first || !strings.Contains(rs[0].Explanation.String(), tc.pair) || rs[0].Score >= tc.below {
			t.Errorf("%q: want %s first under %.2f, %s paired: %v", tc.query, tc.first, tc.below, tc.pair, rs)
		}
	}
}

// A short word one letter off a listed word finds candidates when the list
// lacks it as written and few listed words are one letter from it, and a
// word holding digits always: "kim jtng joqg" is KIM JUNG JONG among a
// hundred other KIMs (joqg is one letter from jong alone, jtng from twelve
// listed words: too many), "fu yun yu 7e00" FU YUAN YU 7900 among a
// hundred other numbers of FU YUAN YU.
func TestShortTypoCandidates(t *testing.T) {
	x := NewIndex()
	P, V := pb.Schema_SCHEMA_PERSON, pb.Schema_SCHEMA_VESSEL
	put := func(id string, schema pb.Schema, name string) {
		x.Put(&Entry{ID: id, Origin: "US-OFAC", Kind: pb.Kind_KIND_DESIGNATION, Schema: schema, Names: []Name{{Text: name}}})
	}
	for i := range 100 {
		// (names shorter or of commoner words, which rank first by
		// the words in common alone)
		put(fmt.Sprintf("kim-%d", i), P, fmt.Sprintf("KIM %s", strings.Repeat("x", 1+i%3)+string(rune('a'+i/3%26))+string(rune('a'+i%26))))
		put(fmt.Sprintf("fu-%d", i), V, fmt.Sprintf("FU YUAN YU %d", 8000+i/2*2))
	}
	for c := 'a'; c <= 'k'; c++ {
		put("j"+string(c), P, "HONG J"+string(c)+"NG") // eleven words j?ng
	}
	// (last: a name's weight in ranking candidates is its words' when
	// it was indexed)
	put("kim-jung-jong", P, "KIM JUNG JONG")
	put("fu-7900", V, "FU YUAN YU 7900")
	put("fu-yun", V, "FU YUAN YU YUN 993")
	for _, tc := range []struct {
		word      string
		find, not []string
	}{
		{"joqg", []string{"jong"}, nil},
		{"jtng", nil, []string{"jung", "jang"}}, // jang..jkng, jung: twelve, too many
		{"jong", nil, []string{"jung", "jang"}}, // listed as written
		{"7e00", []string{"7900"}, nil},
		{"80x8", []string{"8008", "8018", "8028", "8038", "8048", "8058", "8068", "8078", "8088", "8098"}, nil}, // a number: however many
	} {
		s := <-x.scratch
		sims := x.similar(names.Word{Text: tc.word}, s, byTrigrams)
		x.scratch <- s
		var got []string
		for _, st := range sims {
			got = append(got, x.toks[st.id].text)
		}
		for _, w := range tc.find {
			if !slices.Contains(got, w) {
				t.Errorf("similar(%q) = %v, want %s among them", tc.word, got, w)
			}
		}
		for _, w := range tc.not {
			if slices.Contains(got, w) {
				t.Errorf("similar(%q) = %v, want no %s", tc.word, got, w)
			}
		}
	}
	for _, tc := range []struct{ query, want string }{
		{"kim jtng joqg", "kim-jung-jong"},
		{"fu yun yu 7e00", "fu-7900"},
	} {
		rs := x.Search(Query{Name: tc.query, Candidates: 20}) // of 100 alike
		if len(rs) == 0 || rs[0].Entry.ID != tc.want {
			t.Errorf("%q: want %s first, got %v", tc.query, tc.want, rs)
		}
	}
}

// A word holding digits is compared as written, one edit wherever after
// its first character counting the same: "761q" is as near "7619" as
// "7611" (their keys would fold "7611" to "761", of which "761q" would be
// another ending), "86o1" as near "8641" as "8661" (the same phonetic key).
func TestNumberTypos(t *testing.T) {
	for _, tc := range []struct {
		q, a, b string // q is as near a as b (b empty: a is nothing)
		more    bool   // a is nearer than b
	}{
		{"761q", "7619", "7611", false},
		{"86o1", "8641", "8661", false},
		{"7e00", "7900", "7000", false},
		{"886", "8686", "7886", true}, // a first digit added is less near
		{"7848", "78844", "", false},  // two edits
	} {
		sa, ha := tokenSim(tc.q, tc.a, 0)
		if tc.b == "" {
			if sa != 0 {
				t.Errorf("%s~%s = %.2f (%s), want 0", tc.q, tc.a, sa, ha)
			}
			continue
		}
		sb, hb := tokenSim(tc.q, tc.b, 0)
		if tc.more && sa <= sb || !tc.more && sa != sb {
			t.Errorf("%s~%s = %.2f (%s), %s~%s = %.2f (%s): want the first %s", tc.q, tc.a, sa, ha, tc.q, tc.b, sb, hb, map[bool]string{true: "higher", false: "the same"}[tc.more])
		}
	}
}
