package names

import (
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
