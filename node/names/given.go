package names

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// GivenNames is a lexicon of given names: for each name, the genders it is
// given to, how common it is at most in a country, and a key of spelling
// conventions across languages (CrossKey). Two names of the lexicon are the
// same name in another form when their keys are equal and they share a
// gender ("Edward", "Eduardo", "Eduard", "Edvard"; "Jaroslav",
// "Yaroslav"); two other names of it are other names ("Karin", "Karim").
// A word the lexicon does not hold is neither: nothing tells.
//
// It is read from a file in the format of the first-name dictionary of
// Jörg Michael's program "gender" as republished in CSV (name;gender;one
// column a country of frequencies), which no list or evaluation set of
// this project comes from: see ParseGivenNames.
type GivenNames struct {
	names map[string]givenInfo
}

type givenInfo struct {
	gender byte // genderM | genderF
	freq   int8 // highest frequency in any country (log scale, -8 rare .. 5)
	key    string
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

// Relate tells whether folded words a and b are the same given name in
// another form, other given names, or either unknown to the lexicon. A
// particle ("abdul", "abu") is no given name here: it begins many.
func (g *GivenNames) Relate(a, b string) Relation {
	if g == nil || a == b || Particle(a) || Particle(b) {
		return Unknown
	}
	ia, ok := g.names[a]
	if !ok {
		return Unknown
	}
	ib, ok := g.names[b]
	if !ok {
		return Unknown
	}
	switch {
	case ia.gender&ib.gender == 0:
		return OtherGender
	case ia.key == ib.key:
		return SameName
	}
	return OtherName
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
