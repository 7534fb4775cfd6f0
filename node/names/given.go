package names

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// GivenNames is a lexicon of given names: for each name, the genders it is
// given to, how common it is at most in a country, and a key of spelling
// conventions across languages (CrossKey). Two names of the lexicon are the
// same name in another form when their keys are equal and they share a
// gender ("Edward", "Eduardo", "Eduard", "Edvard"; "Jaroslav",
// "Yaroslav"); two other names of it are other names ("Karin", "Karim").
// A word the lexicon does not hold is neither: nothing tells, but for a
// woman's form in -a of a man's name of it ("eduarda" of "eduardo").
//
// A lexicon of ParseLexicon's format says itself which forms are one name
// ("edward=eduardo"), and only those are: over names of many languages,
// CrossKey joins other names too ("said", "zahid"; "sergey", "shigeru";
// "ghassan", "hassan"), so it serves only a lexicon without form groups.
//
// The node's lexicon is DefaultGivenNames, a file of this package written
// for the project (given_names.txt, ParseLexicon's format); an operator may
// give another in that format (LoadLexicon). ParseGivenNames reads the CSV
// format of the first-name dictionary of Jörg Michael's program "gender",
// for comparisons; that file is not part of the project.
type GivenNames struct {
	names map[string]givenInfo
	// grouped: read by ParseLexicon, whose form groups alone tell the same
	// name; CrossKey is for a lexicon without them (ParseGivenNames).
	grouped bool
}

type givenInfo struct {
	gender byte // genderM | genderF
	// freq: ParseGivenNames' highest frequency in any country (log scale,
	// -8 rare .. 5), or ParseLexicon's commonness (1 .. 3)
	freq int8
	key  string
	// groups are the lexicon lines' form groups the name is in
	// (ParseLexicon): two names sharing one are the same name.
	groups []int32
}

const (
	genderM byte = 1 << iota
	genderF
)

// Relation is what the lexicon says of two words.
type Relation int

const (
	// Unknown: one of the words is not in the lexicon, or both are the
	// same word.
	Unknown Relation = iota
	// SameName: the same given name in another language or romanisation.
	SameName
	// OtherName: two given names of the lexicon that are not the same name.
	OtherName
	// OtherGender: two given names of the lexicon given to other genders
	// ("eduarda", "edward"; "valerie", "valeriy"): other names even where
	// their consonants are the same.
	OtherGender
)

// LoadGivenNames reads a lexicon file (ParseGivenNames).
func LoadGivenNames(path string, minFreq int) (*GivenNames, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("given names: %w", err)
	}
	defer f.Close()
	g, err := ParseGivenNames(f, minFreq)
	if err != nil {
		return nil, fmt.Errorf("given names %s: %w", path, err)
	}
	return g, nil
}

// ParseGivenNames reads lines "name;gender;freq;freq;..." (a header line
// first): gender M, F, ?M, ?F, 1M, 1F (male, female, mostly either) or ?
// (either); a frequency per country, a power of two (empty where the name
// is not used). Names of several words ("Abdel+Aziz") are left out: a
// matcher compares words. Names whose highest frequency is under minFreq
// are left out too: the rarer a name, the likelier a misspelling of a
// common one lands on it by chance.
func ParseGivenNames(r io.Reader, minFreq int) (*GivenNames, error) {
	g := &GivenNames{names: map[string]givenInfo{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			continue
		}
		fs := strings.Split(sc.Text(), ";")
		if len(fs) < 3 {
			return nil, fmt.Errorf("line %d: %d fields, want name;gender;frequencies", line, len(fs))
		}
		if strings.ContainsAny(fs[0], "+- ") {
			continue
		}
		ws := Fold(fs[0])
		if len(ws) != 1 || len(ws[0].Text) < 2 {
			continue
		}
		var gender byte
		switch strings.TrimLeft(fs[1], "?1") {
		case "M":
			gender = genderM
		case "F":
			gender = genderF
		case "":
			gender = genderM | genderF
		default:
			return nil, fmt.Errorf("line %d: gender %q", line, fs[1])
		}
		freq := -128
		for _, f := range fs[2:] {
			if f == "" {
				continue
			}
			v, err := strconv.Atoi(f)
			if err != nil {
				return nil, fmt.Errorf("line %d: frequency %q", line, f)
			}
			freq = max(freq, v)
		}
		if freq < minFreq {
			continue
		}
		w := ws[0].Text
		in, ok := g.names[w]
		if !ok {
			in = givenInfo{key: CrossKey(w), freq: int8(freq)}
		}
		in.gender |= gender
		in.freq = max(in.freq, int8(freq))
		g.names[w] = in
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return g, nil
}

// Len is the number of names in the lexicon.
func (g *GivenNames) Len() int { return len(g.names) }

// Known reports whether w (a folded word) is a given name of the lexicon.
func (g *GivenNames) Known(w string) bool {
	_, ok := g.names[w]
	return ok
}

// Grouped reports whether the lexicon says itself which forms are one name
// (ParseLexicon's form groups): then two of its names that no group joins
// are other names however alike their letters.
func (g *GivenNames) Grouped() bool { return g != nil && g.grouped }

// Relate tells whether folded words a and b are the same given name in
// another form, other given names, or either unknown to the lexicon. A
// particle ("abdul", "abu") is no given name here: it begins many.
func (g *GivenNames) Relate(a, b string) Relation {
	if g == nil || a == b || Particle(a) || Particle(b) {
		return Unknown
	}
	ia, ok := g.names[a]
	if !ok {
		return g.feminine(a, b)
	}
	ib, ok := g.names[b]
	if !ok {
		return g.feminine(b, a)
	}
	switch {
	case shareGroup(ia.groups, ib.groups):
		return SameName
	case ia.gender&ib.gender == 0:
		return OtherGender
	case !g.grouped && ia.key == ib.key:
		return SameName
	}
	return OtherName
}

// feminine tells of a word a the lexicon does not hold and a name b it
// does: OtherGender where a is the feminine in -a of a man's name of the
// lexicon that is b or one name with b ("eduarda": "eduardo", "eduard";
// against "edward"), a woman's name where b is a man's; else Unknown.
func (g *GivenNames) feminine(a, b string) Relation {
	ib, ok := g.names[b]
	if !ok || ib.gender != genderM || len(a) < 6 || a[len(a)-1] != 'a' {
		return Unknown
	}
	stem := a[:len(a)-1]
	for _, m := range []string{stem, stem + "o", stem + "e"} {
		if im, ok := g.names[m]; ok && im.gender == genderM && (m == b || shareGroup(im.groups, ib.groups)) {
			return OtherGender
		}
	}
	return Unknown
}

func shareGroup(a, b []int32) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

//go:embed given_names.txt
var givenNamesFile string

var defaultGiven = sync.OnceValue(func() *GivenNames {
	g, err := ParseLexicon(strings.NewReader(givenNamesFile), 1)
	if err != nil {
		panic("names: given_names.txt: " + err.Error())
	}
	return g
})

// DefaultGivenNames is the lexicon of given names written for this project
// (given_names.txt: several thousand common given names of many languages,
// with gender, a rough commonness and the forms of one name across
// languages), parsed once and shared: it is read only.
func DefaultGivenNames() *GivenNames { return defaultGiven() }

// LoadLexicon reads a lexicon file in ParseLexicon's format; an error names
// the file and the line.
func LoadLexicon(path string) (*GivenNames, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("given names: %w", err)
	}
	defer f.Close()
	g, err := ParseLexicon(f, 1)
	if err != nil {
		return nil, fmt.Errorf("given names %s: %w", path, err)
	}
	return g, nil
}

// ParseLexicon reads a lexicon of given names, one line "GENDER COMMONNESS
// NAME..." each: GENDER M, F or MF; COMMONNESS 1 (known), 2 (common) or 3
// (among the most common in some country); then one or more names, each a
// single word, or forms of one name in other languages or romanisations
// joined by '=' ("edward=eduardo=eduard"). A name on several lines takes
// the genders and form groups of all of them. Blank lines and lines
// starting with '#' are comments. Names less common than minCommon are left
// out. An error is "line N: reason" (LoadLexicon adds the file).
func ParseLexicon(r io.Reader, minCommon int) (*GivenNames, error) {
	g := &GivenNames{names: map[string]givenInfo{}, grouped: true}
	sc := bufio.NewScanner(r)
	line := 0
	var group int32
	for sc.Scan() {
		line++
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 || strings.HasPrefix(fs[0], "#") {
			continue
		}
		if len(fs) < 3 {
			return nil, fmt.Errorf("line %d: %q: want GENDER COMMONNESS NAME...", line, sc.Text())
		}
		var gender byte
		switch fs[0] {
		case "M":
			gender = genderM
		case "F":
			gender = genderF
		case "MF", "FM":
			gender = genderM | genderF
		default:
			return nil, fmt.Errorf("line %d: gender %q: want M, F or MF", line, fs[0])
		}
		common, err := strconv.Atoi(fs[1])
		if err != nil || common < 1 || common > 3 {
			return nil, fmt.Errorf("line %d: commonness %q: want 1, 2 or 3", line, fs[1])
		}
		if common < minCommon {
			continue
		}
		for _, forms := range fs[2:] {
			group++
			for _, form := range strings.Split(forms, "=") {
				ws := Fold(form)
				if len(ws) != 1 || len(ws[0].Text) < 2 {
					return nil, fmt.Errorf("line %d: name %q: want one word of two letters or more", line, form)
				}
				w := ws[0].Text
				in, ok := g.names[w]
				if !ok {
					in = givenInfo{key: CrossKey(w)}
				}
				in.gender |= gender
				in.freq = max(in.freq, int8(common))
				if strings.Contains(forms, "=") && !containsGroup(in.groups, group) {
					in.groups = append(in.groups, group)
				}
				g.names[w] = in
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return g, nil
}

func containsGroup(gs []int32, g int32) bool {
	for _, x := range gs {
		if x == g {
			return true
		}
	}
	return false
}

// CrossKey is a folded given name written by conventions shared across
// languages and romanisations, so that one name's forms meet: Polish
// digraphs simplified (rz, sz, cz), ph as f, th as t, kh as h, x as ks, w
// as v, q and c as k, z as s, g as h (Ukrainian h for Russian g) but in
// ng, j and y as one letter at the start and as i elsewhere, h dropped
// after another letter, u before a vowel as v (eduard, edvard), e and i as
// one vowel and o and u as another, doubled letters single, and the last
// vowels dropped: edward, eduardo, eduard, edvard are "idvard"; sergey,
// sergio, sergei "sirh"; jaroslav, yaroslav "jaruslav". With the gender it
// tells one name's forms; it is a key for names the lexicon holds, not a
// similarity: "stanislas" and "stanislav", "xavier" and "javier" stay
// apart.
func CrossKey(w string) string {
	r := strings.NewReplacer("rz", "r", "sz", "s", "cz", "c", "ph", "f", "th", "t", "kh", "h", "ck", "k", "x", "ks").Replace(w)
	b := []byte(r)
	for i, c := range b {
		switch c {
		case 'w':
			b[i] = 'v'
		case 'q', 'c':
			b[i] = 'k'
		case 'z':
			b[i] = 's'
		case 'g':
			if i == 0 || r[i-1] != 'n' {
				b[i] = 'h'
			}
		case 'y', 'j':
			if i == 0 {
				b[i] = 'j'
			} else {
				b[i] = 'i'
			}
		}
	}
	out := b[:0]
	for i, c := range b {
		switch {
		case c == 'h' && i > 0:
			continue
		case c == 'u' && i > 0 && i+1 < len(b) && isVowel(b[i+1]):
			c = 'v'
		case c == 'e':
			c = 'i'
		case c == 'o':
			c = 'u'
		}
		if len(out) > 0 && out[len(out)-1] == c {
			continue
		}
		out = append(out, c)
	}
	for len(out) > 2 && isVowel(out[len(out)-1]) {
		out = out[:len(out)-1]
	}
	return string(out)
}

func isVowel(c byte) bool {
	switch c {
	case 'a', 'e', 'i', 'o', 'u':
		return true
	}
	return false
}
