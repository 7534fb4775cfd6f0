package bench

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode"

	"github.com/watchfed/watchfed/node/importer"
	"github.com/watchfed/watchfed/node/names"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// EvalKinds are the kinds of variant the quality evaluation draws, each
// from the listed names it applies to: today's (typos, reordering, a dropped
// middle word, Cyrillic script, another legal form) and those issue 18 found
// missed (particles joined or split, repeated words, initials), and names
// written in Arabic script without short vowels (last, so that the other
// kinds draw the same names as before it was added).
var EvalKinds = []string{"exact", "typo1", "typo2", "reorder", "drop", "cyrillic", "legal-form",
	"joined", "split", "repeated", "initials", "initial-surname", "arabic"}

// particles are the words that lists write joined to the next word or apart
// ("AL-HAQ", "ALHAQ", "AL HAQ"); the evaluation joins and splits them.
var particles = map[string]bool{"al": true, "el": true, "abu": true, "abd": true, "bin": true, "bint": true, "ibn": true,
	"ul": true, "van": true, "der": true, "de": true, "la": true, "del": true, "mac": true}

// splitPrefixes are the particles a joined word is split after, when what
// follows is a word of the list ("ALSAYED" → "AL SAYED", "MACDONALD" → "MAC DONALD").
var splitPrefixes = []string{"abdul", "abdel", "abu", "abd", "bint", "bin", "ibn", "al", "el", "vander", "van", "dela", "del", "mac"}

// EvalVariants draws, with its own random source, perKind variant queries of
// each kind from the primary names (and strong aliases, for the exact kind)
// of the items that pass keep: the entries of one split.
func EvalVariants(items []importer.Item, keep func(ref string) bool, perKind int, seed uint64) []Variant {
	rng := rand.New(rand.NewPCG(seed, 0))
	dict := map[string]bool{}
	var pool []importer.Item
	for _, it := range items {
		for _, w := range strings.Fields(names.Normalize(it.Record.Subject.Name)) {
			dict[w] = true
		}
		if keep(it.Record.SourceRef) {
			pool = append(pool, it)
		}
	}
	// Entries in a random order; each kind takes the first perKind that
	// it applies to, looking at no more than maxScan (a million synthetic
	// names have no particles to join: scanning them all for each kind
	// would take minutes).
	const maxScan = 100_000
	var out []Variant
	for _, kind := range EvalKinds {
		n := 0
		for k, i := range rng.Perm(len(pool)) {
			if n == perKind || k == maxScan {
				break
			}
			it := pool[i]
			for _, q := range variantsOf(kind, it.Record, dict, rng) {
				out = append(out, Variant{Kind: kind, Query: q, Source: it.Record.Subject.Name, Ref: it.Record.SourceRef})
				n++
			}
		}
	}
	return out
}

// variantsOf returns the queries of one kind that a record's primary name
// gives (none when the kind does not apply to it).
func variantsOf(kind string, r *pb.Record, dict map[string]bool, rng *rand.Rand) []string {
	src := r.Subject.Name
	words := strings.Fields(names.Normalize(src))
	person := r.Subject.Schema == pb.Schema_SCHEMA_PERSON
	org := r.Subject.Schema == pb.Schema_SCHEMA_ORGANIZATION
	switch kind {
	case "exact":
		return []string{src}
	case "typo1", "typo2", "reorder":
		if len(words) < 2 {
			return nil
		}
		switch kind {
		case "typo1":
			return []string{typo(rng, words, 1)}
		case "typo2":
			return []string{typo(rng, words, 2)}
		}
		ws := slices.Clone(words)
		slices.Reverse(ws)
		return []string{strings.Join(ws, " ")}
	case "drop":
		// A middle name dropped: a given name after the first of a person
		// listed "SURNAME, First Middle...", or a word between the first
		// and the last of a person listed in given-name order.
		if !person {
			return nil
		}
		lo, hi := 1, len(words)-1
		if surname, given, ok := strings.Cut(src, ","); ok {
			lo = len(strings.Fields(names.Normalize(surname))) + 1
			hi = lo + len(strings.Fields(names.Normalize(given))) - 1
		}
		if hi-lo < 1 || hi > len(words) {
			return nil
		}
		i := lo + rng.IntN(hi-lo)
		return []string{strings.Join(slices.Delete(slices.Clone(words), i, i+1), " ")}
	case "cyrillic":
		if !person || len(words) < 2 {
			return nil
		}
		return []string{toCyrillic(strings.Join(words, " "))}
	case "arabic":
		// Parties of the programs and countries of lands that write
		// Arabic script, whose names a clerk there writes in it.
		if !person && !org || len(words) < 2 || !arabicScriptParty(r) {
			return nil
		}
		return []string{toArabic(words, rng)}
	case "legal-form":
		if !org || len(words) < 2 {
			return nil
		}
		return []string{strings.Join(words, " ") + " " + []string{"LLC", "GmbH", "OOO", "S.A.", "Ltd", "JSC"}[rng.IntN(6)]}
	case "joined":
		// Join a run of particles to the word after it: "ABU AL KHAYR" → "ABUALKHAYR".
		for i := 0; i+1 < len(words); i++ {
			if !particles[words[i]] {
				continue
			}
			j := i
			for j+1 < len(words) && particles[words[j]] {
				j++
			}
			if particles[words[j]] {
				return nil
			}
			ws := append(slices.Clone(words[:i]), strings.Join(words[i:j+1], ""))
			return []string{strings.ToUpper(strings.Join(append(ws, words[j+1:]...), " "))}
		}
	case "split":
		for i, w := range words {
			for _, p := range splitPrefixes {
				if rest, ok := strings.CutPrefix(w, p); ok && len(rest) >= 4 && dict[rest] {
					ws := slices.Clone(words)
					ws[i] = p + " " + rest
					return []string{strings.ToUpper(strings.Join(ws, " "))}
				}
			}
		}
	case "repeated":
		for i, w := range words {
			if slices.Contains(words[i+1:], w) {
				return []string{src}
			}
		}
	case "initials", "initial-surname":
		surname, given, ok := strings.Cut(src, ",")
		gs := strings.Fields(names.Normalize(given))
		if !person || !ok || len(gs) < 2 || len(strings.Fields(names.Normalize(surname))) == 0 {
			return nil
		}
		if kind == "initial-surname" {
			// the initial of the surname's first word that is not a particle ("AL-MASLI": M.)
			sw := strings.Fields(names.Normalize(surname))
			for len(sw) > 1 && particles[sw[0]] {
				sw = sw[1:]
			}
			return []string{strings.TrimSpace(given) + " " + strings.ToUpper(sw[0][:1]) + "."}
		}
		var b strings.Builder
		for i, g := range gs {
			b.WriteString(strings.ToUpper(g[:1]) + ".")
			if i%2 == 0 || rng.IntN(2) == 0 {
				b.WriteByte(' ')
			}
		}
		return []string{strings.TrimSpace(b.String()) + " " + strings.TrimSpace(surname)}
	}
	return nil
}

// Ordinary is a name on no list: an ordinary person or company, or a common
// first name with a surname one letter off a listed one ("near").
type Ordinary struct {
	Kind   string // person, company, near
	Locale string
	Name   string
	// Given is, for a name made by pairing a given name with a listed
	// person's surname (given-near, re-paired), that person's given name.
	Given string
}

// OrdinaryKinds are the kinds of ordinary names, in table order.
// Each kind is followed by the names SeparateSameName moves out of it.
var OrdinaryKinds = slices.Concat([]string{"person", "person" + sameNameKind, "company", "company" + sameNameKind, "near", "near" + sameNameKind},
	FreshKinds, CrossKinds)

// ReadOrdinary reads the ordinary-names file (tab-separated: schema, locale,
// name, with a header row).
func ReadOrdinary(r io.Reader) ([]Ordinary, error) {
	var out []Ordinary
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Split(sc.Text(), "\t")
		if line == 1 && len(f) > 0 && f[0] == "schema" {
			continue
		}
		if len(f) != 3 || (f[0] != "person" && f[0] != "company") || strings.TrimSpace(f[2]) == "" {
			return nil, fmt.Errorf("ordinary names line %d: want schema (person or company), locale, name", line)
		}
		out = append(out, Ordinary{Kind: f[0], Locale: f[1], Name: f[2]})
	}
	return out, sc.Err()
}

// NearNames makes n names that put a common first name (from the ordinary
// persons written in Latin letters) before a listed person's surname with
// one letter changed into a word no listed name has: someone else, whom a
// matcher too fond of typos would flag.
func NearNames(items []importer.Item, ordinary []Ordinary, n int, seed uint64) []Ordinary {
	rng := rand.New(rand.NewPCG(seed, 0))
	dict := map[string]bool{}
	var surnames []string
	for _, it := range items {
		for _, w := range strings.Fields(names.Normalize(it.Record.Subject.Name)) {
			dict[w] = true
		}
		if sur, _, ok := strings.Cut(it.Record.Subject.Name, ","); ok && it.Record.Subject.Schema == pb.Schema_SCHEMA_PERSON {
			if ws := strings.Fields(names.Normalize(sur)); len(ws) == 1 && len(ws[0]) >= 5 {
				surnames = append(surnames, ws[0])
			}
		}
	}
	var firsts []string
	for _, o := range ordinary {
		if f := strings.Fields(o.Name); o.Kind == "person" && len(f) >= 2 && latin(f[0]) && len(f[0]) >= 3 {
			firsts = append(firsts, f[0])
		}
	}
	var out []Ordinary
	for tries := 0; len(out) < n && len(surnames) > 0 && len(firsts) > 0 && tries < 100*n; tries++ {
		s := typo(rng, []string{surnames[rng.IntN(len(surnames))]}, 1)
		if dict[s] {
			continue
		}
		out = append(out, Ordinary{Kind: "near", Name: firsts[rng.IntN(len(firsts))] + " " + strings.ToUpper(s[:1]) + s[1:]})
	}
	return out
}

func latin(w string) bool {
	for _, r := range w {
		if unicode.IsLetter(r) && !unicode.Is(unicode.Latin, r) {
			return false
		}
	}
	return true
}

// Variant is a query derived from a listed name.
type Variant struct {
	Kind   string // one of variantKinds
	Query  string
	Source string // the listed name it came from
	Ref    string // the source entry's source_ref
}

var variantKinds = []string{"typo1", "typo2", "reorder", "drop", "cyrillic", "legal-form"}

// Variants derives n variant queries from the primary names of items with
// at least two identifying words: one and two typos, reordered words, a
// dropped middle word, Cyrillic transliteration of persons, another legal
// form for organisations.
func Variants(items []importer.Item, n int, seed uint64) []Variant {
	rng := rand.New(rand.NewPCG(seed, 0))
	var pool []importer.Item
	for _, it := range items {
		if len(strings.Fields(names.Normalize(it.Record.Subject.Name))) >= 2 {
			pool = append(pool, it)
		}
	}
	if len(pool) == 0 {
		return nil
	}
	var out []Variant
	for len(out) < n {
		it := pool[rng.IntN(len(pool))]
		src := it.Record.Subject.Name
		words := strings.Fields(names.Normalize(src))
		kind := variantKinds[len(out)%len(variantKinds)]
		var q string
		switch kind {
		case "typo1":
			q = typo(rng, words, 1)
		case "typo2":
			q = typo(rng, words, 2)
		case "reorder":
			ws := append([]string(nil), words...)
			for i, j := 0, len(ws)-1; i < j; i, j = i+1, j-1 {
				ws[i], ws[j] = ws[j], ws[i]
			}
			q = strings.Join(ws, " ")
		case "drop":
			if len(words) < 3 {
				continue
			}
			i := 1 + rng.IntN(len(words)-2)
			q = strings.Join(append(append([]string(nil), words[:i]...), words[i+1:]...), " ")
		case "cyrillic":
			if it.Record.Subject.Schema != pb.Schema_SCHEMA_PERSON {
				continue
			}
			q = toCyrillic(strings.Join(words, " "))
		case "legal-form":
			if it.Record.Subject.Schema != pb.Schema_SCHEMA_ORGANIZATION {
				continue
			}
			q = strings.Join(words, " ") + " " + []string{"LLC", "GmbH", "OOO", "S.A.", "Ltd", "JSC"}[rng.IntN(6)]
		}
		out = append(out, Variant{Kind: kind, Query: q, Source: src, Ref: it.Record.SourceRef})
	}
	return out
}

// typo applies edits (substitution, deletion, insertion, transposition) to
// words of four letters or more, at most one per word.
func typo(rng *rand.Rand, words []string, edits int) string {
	ws := append([]string(nil), words...)
	var long []int
	for i, w := range ws {
		if len(w) >= 4 {
			long = append(long, i)
		}
	}
	rng.Shuffle(len(long), func(i, j int) { long[i], long[j] = long[j], long[i] })
	for e := 0; e < edits; e++ {
		var i int
		if e < len(long) {
			i = long[e]
		} else if len(long) > 0 {
			i = long[0] // a second edit in the same word
		} else {
			break
		}
		ws[i] = edit(rng, ws[i], 1, true) // keep the first letter, as most typos do
	}
	return strings.Join(ws, " ")
}

// edit makes one edit of w at a random place from its letter at from on: a
// letter changed, dropped or added, or two neighbours swapped. A swap drawn
// at the last letter, which has no neighbour after it, changes that letter
// instead where orChange, and else leaves w as it was.
func edit(rng *rand.Rand, w string, from int, orChange bool) string {
	b := []byte(w)
	p := from + rng.IntN(len(b)-from)
	c := byte('a' + rng.IntN(26))
	switch rng.IntN(4) {
	case 0:
		b[p] = c
	case 1:
		b = append(b[:p], b[p+1:]...)
	case 2:
		b = append(b[:p], append([]byte{c}, b[p:]...)...)
	default:
		if p+1 < len(b) {
			b[p], b[p+1] = b[p+1], b[p]
		} else if orChange {
			b[p] = c
		}
	}
	return string(b)
}

var cyrillic = []struct{ lat, cyr string }{
	{"shch", "щ"}, {"sh", "ш"}, {"ch", "ч"}, {"kh", "х"}, {"zh", "ж"}, {"ts", "ц"}, {"ya", "я"}, {"yu", "ю"}, {"yo", "ё"},
	{"a", "а"}, {"b", "б"}, {"v", "в"}, {"g", "г"}, {"d", "д"}, {"e", "е"}, {"z", "з"}, {"i", "и"}, {"y", "й"},
	{"k", "к"}, {"l", "л"}, {"m", "м"}, {"n", "н"}, {"o", "о"}, {"p", "п"}, {"r", "р"}, {"s", "с"}, {"t", "т"},
	{"u", "у"}, {"f", "ф"}, {"h", "х"}, {"c", "к"}, {"j", "дж"}, {"q", "к"}, {"w", "в"}, {"x", "кс"},
}

// toCyrillic writes a Latin name in Cyrillic letters, as a Russian
// document would.
func toCyrillic(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		matched := false
		for _, m := range cyrillic {
			if strings.HasPrefix(s[i:], m.lat) {
				b.WriteString(m.cyr)
				i += len(m.lat)
				matched = true
				break
			}
		}
		if !matched {
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// arabicScriptCountries write names in Arabic script (Arabic, Persian, Dari, Urdu, Pashto).
var arabicScriptCountries = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields("AE AF BH DZ EG IQ IR JO KW LB LY MA MR OM PK PS QA SA SD SY TN YE") {
		m[c] = true
	}
	return m
}()

// arabicScriptPrograms are the OFAC programs and UN lists (by a word of
// their name) of lands that write Arabic script.
var arabicScriptPrograms = strings.Fields("sdgt fto iran irgc ifsr hrit-ir syria iraq lebanon yemen libya sudan qaida isil taliban")

// arabicScriptParty reports a listed party of a program or a country of
// lands that write Arabic script.
func arabicScriptParty(r *pb.Record) bool {
	if slices.ContainsFunc(r.Subject.Countries, func(c string) bool { return arabicScriptCountries[strings.ToUpper(c)] }) {
		return true
	}
	prog := strings.ToLower(r.GetDesignation().GetProgram())
	for _, w := range strings.FieldsFunc(prog, func(r rune) bool { return r == ' ' || r == '/' || r == ',' }) {
		for _, p := range arabicScriptPrograms {
			if strings.HasPrefix(w, p) || strings.Contains(w, p) && strings.HasPrefix(w, "unsc-") {
				return true
			}
		}
	}
	return false
}

// arabicWords are the words of names that a clerk writing Arabic knows as
// Arabic words and writes as they are spelt (with the ع and the long vowels
// that the Latin spelling does not tell), not letter by letter.
var arabicWords = func() map[string]string {
	m := map[string]string{}
	for _, g := range []struct{ ar, lat string }{
		{"عبد", "abd"}, {"عبد ال", "abdul abdel abdal abdol abdoul"}, {"عبد الله", "abdullah abdallah abdullahi"},
		{"الله", "allah ullah"}, {"أبو", "abu abou"}, {"بن", "bin ibn ben"}, {"بنت", "bint"},
		{"محمد", "muhammad mohammad mohammed muhammed mohamed mohamad mohd"}, {"أحمد", "ahmad ahmed"},
		{"علي", "ali"}, {"عمر", "omar umar"}, {"عثمان", "othman uthman osman"}, {"عباس", "abbas"},
		{"عزيز", "aziz"}, {"عادل", "adel adil"}, {"عيسى", "issa isa"}, {"عماد", "imad"}, {"عمار", "ammar"},
		{"حسن", "hasan hassan"}, {"حسين", "husayn hussein hussain husain hossein hosein"},
		{"محمود", "mahmoud mahmud"}, {"يوسف", "yusuf youssef yousef yousif"}, {"إبراهيم", "ibrahim"},
		{"إسماعيل", "ismail"}, {"خالد", "khalid khaled"}, {"سعيد", "said saeed"}, {"جعفر", "jafar jaafar"},
		{"علاء", "ala alaa"}, {"عراق", "iraq"}, {"عراقي", "iraqi"},
	} {
		for _, w := range strings.Fields(g.lat) {
			m[w] = g.ar
		}
	}
	return m
}()

// arabicLetters write Latin letters in Arabic script, the longest first;
// sounds Arabic lacks (p, g, ch, zh, v) with the letters of Persian.
var arabicLetters = []struct{ lat, ar string }{
	{"sh", "ش"}, {"kh", "خ"}, {"gh", "غ"}, {"th", "ث"}, {"dh", "ذ"}, {"ch", "چ"}, {"zh", "ژ"}, {"ph", "ف"},
	{"b", "ب"}, {"t", "ت"}, {"j", "ج"}, {"h", "ح"}, {"d", "د"}, {"r", "ر"}, {"z", "ز"}, {"s", "س"},
	{"f", "ف"}, {"q", "ق"}, {"k", "ك"}, {"l", "ل"}, {"m", "م"}, {"n", "ن"}, {"w", "و"}, {"y", "ي"},
	{"p", "پ"}, {"v", "و"}, {"g", "گ"}, {"c", "ك"}, {"x", "كس"},
}

// arabicVowels are the Latin vowels that Arabic writes as long vowels when
// it writes them: ا, و, ي.
var arabicVowels = []struct{ lat, ar string }{
	{"aa", "ا"}, {"ou", "و"}, {"oo", "و"}, {"uu", "و"}, {"ee", "ي"}, {"ii", "ي"}, {"ei", "ي"}, {"ey", "ي"},
	{"ai", "ي"}, {"ay", "ي"}, {"ie", "ي"}, {"aw", "و"}, {"au", "و"},
	{"a", "ا"}, {"e", "ي"}, {"i", "ي"}, {"o", "و"}, {"u", "و"},
}

// toArabic writes the words of a Latin name in Arabic script as a clerk
// would: the article al- (el-, and the assimilated ad-, ar-, as-, ...)
// as ال joined to the next word; known words as Arabic spells them; other
// words letter by letter with the consonants (a doubled one once) and the
// long vowels, which the Latin spelling does not tell apart from short
// ones: a vowel written twice or a diphthong always, a single vowel in the
// middle of a word one time in three, a final vowel always (a as ا or ة), a
// vowel at the start as أ or إ. Short vowels are not written.
func toArabic(words []string, rng *rand.Rand) string {
	var out []string
	article := false
	for _, w := range words {
		switch w {
		case "al", "el", "ad", "ar", "as", "ash", "at", "az", "an":
			article = true
			continue
		}
		a, ok := arabicWords[w]
		if !ok {
			a = arabicWord(w, rng)
		}
		if article {
			a = "ال" + a
			article = false
		}
		out = append(out, a)
	}
	if article {
		out = append(out, "ال")
	}
	return strings.Join(out, " ")
}

// arabicWord writes one Latin word in Arabic letters (see toArabic).
func arabicWord(w string, rng *rand.Rand) string {
	var b strings.Builder
	last := ""
	for i := 0; i < len(w); {
		if c := w[i]; c < 'a' || c > 'z' {
			b.WriteByte(c)
			i++
			last = ""
			continue
		}
		matched := false
		for _, v := range arabicVowels {
			if !strings.HasPrefix(w[i:], v.lat) {
				continue
			}
			end := i+len(v.lat) == len(w)
			switch {
			case i == 0:
				// a carrier of the first vowel, and a diphthong's second letter
				if strings.IndexByte("aou", v.lat[0]) >= 0 {
					b.WriteString("أ")
				} else {
					b.WriteString("إ")
				}
				if len(v.lat) == 2 && v.lat[0] != v.lat[1] && v.lat != "ou" && v.lat != "ie" {
					b.WriteString(v.ar)
				}
			case end && v.lat == "a":
				b.WriteString([]string{"ا", "ة"}[rng.IntN(2)])
			case end || len(v.lat) == 2 || rng.IntN(3) == 0:
				b.WriteString(v.ar)
			}
			i += len(v.lat)
			last, matched = "", true
			break
		}
		if matched {
			continue
		}
		for _, l := range arabicLetters {
			if strings.HasPrefix(w[i:], l.lat) {
				if l.ar != last {
					b.WriteString(l.ar)
				}
				last = l.ar
				i += len(l.lat)
				matched = true
				break
			}
		}
		if !matched {
			b.WriteByte(w[i])
			i++
		}
	}
	return b.String()
}

var (
	commonFirst = strings.Fields(`Emily Oliver Sophie Lukas Hannah Jack Chloe Noah Amelia Leon Laura Thomas Emma Liam Olivia
		Mia Lucas Ella Felix Grace Henry Isla Oscar Ruby Jonas Clara Elias Lena Paul Julia Max Anna Theo Marie Finn Nora Jan Eva
		Hugo Alice Louis Camille Mateo Lucia Daniel Sara Martin Ines Pablo Elena David Carla`)
	commonLast = strings.Fields(`Johnson Schneider Dupont Williams Fischer Martin Brown Weber Bernard Taylor Meyer Dubois Wilson
		Wagner Moreau Evans Becker Laurent Thompson Hoffmann Simon Walker Schulz Michel Wright Koch Lefebvre Robinson Richter
		Leroy Wood Klein Roux Hall Wolf Fournier Green Schroeder Girard Clarke Neumann Bonnet Hughes Braun Lambert Edwards
		Zimmermann Fontaine Jackson Hartmann Rousseau Lewis Lange Vincent Turner Krause Muller Harris Lehmann Blanc`)
)

// Unrelated returns n names of ordinary Western Europeans, which a
// sanctions list should not match.
func Unrelated(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 0))
	out := make([]string, n)
	for i := range out {
		out[i] = commonFirst[rng.IntN(len(commonFirst))] + " " + commonLast[rng.IntN(len(commonLast))]
	}
	return out
}

var syllables = strings.Fields(`ka ri mo ta ne lu sa vi do re mi ko na be zu fa lo gi ha ru te pa si ya no ma ki bu de
	ro la tu ze po ni va go su ho me xa qi we jo ba ke ti ra du le sho cha kha zhe ts al am an ar as el em en er es il im in ir is or os un ur`)

// Synthetic returns n synthetic designations: persons (two or three words
// from a syllable grammar, about 0.8 billion possible names) and
// organisations (two words and a legal form), with a birth year or a
// country, so that word frequencies look like a real list's.
func Synthetic(n int, seed uint64) []importer.Item {
	rng := rand.New(rand.NewPCG(seed, 0))
	word := func() string {
		var b strings.Builder
		for k := 2 + rng.IntN(2); k > 0; k-- {
			b.WriteString(syllables[rng.IntN(len(syllables))])
		}
		w := b.String()
		return strings.ToUpper(w[:1]) + w[1:]
	}
	forms := []string{"LLC", "Ltd", "GmbH", "Trading", "Group", "S.A.", "JSC", "Holding"}
	countries := []string{"RU", "IR", "SY", "KP", "CN", "AE", "TR", "VE", "BY", "IQ"}
	out := make([]importer.Item, n)
	for i := range out {
		s := &pb.Subject{Countries: []string{countries[rng.IntN(len(countries))]}}
		if rng.IntN(4) > 0 {
			s.Schema = pb.Schema_SCHEMA_PERSON
			if rng.IntN(2) == 0 {
				s.Name = word() + " " + word() + " " + word()
			} else {
				s.Name = word() + " " + word()
			}
			s.BirthDates = []string{fmt.Sprint(1940 + rng.IntN(60))}
		} else {
			s.Schema = pb.Schema_SCHEMA_ORGANIZATION
			s.Name = word() + " " + word() + " " + forms[rng.IntN(len(forms))]
		}
		out[i] = importer.Item{Line: i + 1, Record: &pb.Record{Kind: pb.Kind_KIND_DESIGNATION, Subject: s, SourceRef: fmt.Sprintf("synthetic:%d", i),
			Detail: &pb.Record_Designation{Designation: &pb.Designation{Program: "SYNTHETIC"}}}}
	}
	return out
}
