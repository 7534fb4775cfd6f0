package names

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// givenFixture is written for these tests in the lexicon's format (name;
// gender; frequency in each of four countries).
const givenFixture = `name;gender;GB;ES;RU;TR
Edward;M;-2;;;
Eduardo;M;;-2;;
Eduard;M;;;-3;
Karin;F;-4;;;
Karim;M;;;;-3
Valerie;F;-3;;;
Valeriy;M;;;-2;
Valery;?;;;-2;
Jaroslav;M;;;-5;
Yaroslav;M;;;-3;
Jon;M;-6;;;
John;M;1;;;
Roy;M;-3;;;
Rony;M;;;;-6
Abdul;M;;;;-2
Abdullah;M;;;;-2
Abdel+Aziz;M;;;;-4
Raretta;F;-8;;;
`

func TestGivenNames(t *testing.T) {
	g, err := ParseGivenNames(strings.NewReader(givenFixture), -7)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a, b string
		want Relation
	}{
		{"edward", "eduardo", SameName}, // one name in three languages
		{"eduard", "edward", SameName},
		{"jaroslav", "yaroslav", SameName}, // romanisations
		{"jon", "john", SameName},
		{"valerie", "valery", SameName},     // Valery is given to both
		{"valerie", "valeriy", OtherGender}, // the same letters, other genders
		{"karin", "karim", OtherGender},     // one letter apart, two names
		{"roy", "rony", OtherName},          // one gender, other names
		{"abdul", "abdullah", Unknown},      // a particle begins many names
		{"edward", "edwart", Unknown},       // not in the lexicon: a typo as likely
		{"raretta", "karin", Unknown},       // under the frequency asked for
		{"edward", "edward", Unknown},       // the same word
	} {
		if got := g.Relate(tc.a, tc.b); got != tc.want {
			t.Errorf("Relate(%q, %q) = %d, want %d (keys %q, %q)", tc.a, tc.b, got, tc.want, CrossKey(tc.a), CrossKey(tc.b))
		}
	}
	if g.Known("abdel") || g.Known("aziz") {
		t.Error("a name of several words was taken word by word")
	}
	if _, err := ParseGivenNames(strings.NewReader("h\nEdward;X;1\n"), -8); err == nil {
		t.Error("an unknown gender was accepted")
	}
}

// lexiconFixture is written for these tests in the project's format.
const lexiconFixture = `# a comment
M 3 edward=eduardo=eduard
M 2 ivan john=jon
F 2 karin

M 2 karim=kareem
MF 1 jean
F 2 jean=jeanne
F 1 raretta
`

func TestParseLexicon(t *testing.T) {
	g, err := ParseLexicon(strings.NewReader(lexiconFixture), 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a, b string
		want Relation
	}{
		{"edward", "eduardo", SameName}, // joined forms
		{"eduard", "eduardo", SameName},
		{"john", "jon", SameName},
		{"ivan", "john", OtherName},     // on one line, not joined
		{"karin", "karim", OtherGender}, // one letter apart, two names
		{"karim", "kareem", SameName},
		{"jean", "jeanne", SameName},   // jean is on a line of either gender and in a group of F
		{"jean", "karim", OtherGender}, // jean's MF line is under the commonness asked for: F only
		{"raretta", "karin", Unknown},
	} {
		if got := g.Relate(tc.a, tc.b); got != tc.want {
			t.Errorf("Relate(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	if g.Known("raretta") {
		t.Error("a name under the commonness asked for was kept")
	}
	for _, bad := range []struct{ text, want string }{
		{"M 2 edward\nX 2 karin\n", "line 2: gender"},
		{"M 4 edward\n", "line 1: commonness"},
		{"# c\n\nM 2\n", "line 3:"},
		{"M 2 abdel-aziz\n", "line 1: name"},
		{"M 2 edward=\n", "line 1: name"},
	} {
		_, err := ParseLexicon(strings.NewReader(bad.text), 1)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseLexicon(%q): %v, want an error with %q", bad.text, err, bad.want)
		}
	}
}

// TestLoadLexiconError: an operator's file that does not parse is named
// with its line.
func TestLoadLexiconError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "given.txt")
	if err := os.WriteFile(path, []byte("M 2 edward\nM two karin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadLexicon(path)
	if err == nil || !strings.Contains(err.Error(), path+": line 2: commonness") {
		t.Errorf("LoadLexicon: %v, want the file and line 2", err)
	}
}

// TestDefaultGivenNames: the project's lexicon parses and tells the names
// of many languages apart.
func TestDefaultGivenNames(t *testing.T) {
	g := DefaultGivenNames()
	if g.Len() < 3000 {
		t.Errorf("%d names, want several thousand", g.Len())
	}
	for _, tc := range []struct {
		a, b string
		want Relation
	}{
		{"edward", "eduardo", SameName},
		{"aleksandr", "oleksandr", SameName},
		{"yusuf", "yousef", SameName},
		{"karin", "karim", OtherGender},
		{"ivan", "john", OtherName},
		{"fatima", "fatma", SameName},
		// a diminutive's spellings (-ie, -y) are one name
		{"willie", "willy", SameName},
		{"freddie", "freddy", SameName},
		{"omar", "amir", OtherName},
		{"wei", "zheng", Unknown},
		// a word the lexicon lacks that is a man's name of it in -a
		{"eduarda", "edward", OtherGender},
		{"edward", "eduarda", OtherGender},
		{"josa", "jose", Unknown},     // too short to tell from a typo
		{"eduarda", "maria", Unknown}, // not a man's name
	} {
		if got := g.Relate(tc.a, tc.b); got != tc.want {
			t.Errorf("Relate(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
