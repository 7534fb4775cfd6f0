package names

import (
	"slices"
	"testing"
)

func TestFold(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Иван Сергеевич Петров", "ivan sergeevich petrov"},
		{"Müller-Lüdenscheid GmbH", "muller ludenscheid"},
		{"ＡＢＣ Ｃｏｒｐ", "abc"},
		{"Tech Trade S.A.", "tech trade"},
		{"ООО Ромашка", "romashka"},
		{"Αλέξης Τσίπρας", "alexis tsipras"},
		{"أسامة بن لادن", "asama bn ladn"},
		{"علي عبد الله عمر", "aly abd allh amr"}, // ع that starts a word carries its vowel, as أ does
		{"العمري سعيد", "alamry syd"},            // after the article too; inside a word it is dropped
		{"עמית", "amyt"},
		{"Mr. O'Brien", "obrien"},
		{"Łódź Straße", "lodz strasse"},
		{"LLC", "llc"}, // nothing but a legal form: keep it rather than nothing
	} {
		if got := Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"IMO 9187629", "9187629"},
		{"9187629", "9187629"},
		{"ab-123 456", "AB123456"},
		{"№ 7701234567", "7701234567"},
		{"Passport 515731854", "515731854"},
		{"National ID No. 0012345", "0012345"},
		{"Tax ID No. 7701234567", "7701234567"},
		{"MMSI 273354240", "273354240"},
		{"IMO9187629", "9187629"},
		{"Registration Number 1027700132195", "1027700132195"},
		{"LEI 253400JT3MQWNDKMJE44", "253400JT3MQWNDKMJE44"},
		{"SWIFT/BIC BKCHCNBJ", "BKCHCNBJ"},
		{"Passport", "PASSPORT"}, // nothing but a type word: keep it rather than nothing
	} {
		if got := ID(tc.in); got != tc.want {
			t.Errorf("ID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestAbjadVowels: the vowels around the consonants of AbjadKey, one set a
// place, for words written without short vowels and in Latin letters.
func TestAbjadVowels(t *testing.T) {
	for _, tc := range []struct {
		w    string
		want []uint8
	}{
		{"hsyn", []uint8{0, 0, VowelI, 0}},
		{"hussein", []uint8{0, VowelU, VowelE | VowelI, 0}},
		{"alhjar", []uint8{VowelA, 0, 0, VowelA, 0}},
		{"yousef", []uint8{0, VowelU, VowelE, 0}},
		{"muhammad", []uint8{0, VowelU, VowelA, VowelA, 0}},
		{"ayman", []uint8{VowelA | VowelI, VowelA, 0}}, // y after a vowel is one too
	} {
		got := AbjadVowels(tc.w)
		if len(got) != len(AbjadKey(tc.w))+1 || !slices.Equal(got, tc.want) {
			t.Errorf("AbjadVowels(%q) = %v (key %q), want %v", tc.w, got, AbjadKey(tc.w), tc.want)
		}
	}
}
