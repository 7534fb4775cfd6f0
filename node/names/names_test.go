package names

import "testing"

func TestFold(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Иван Сергеевич Петров", "ivan sergeevich petrov"},
		{"Müller-Lüdenscheid GmbH", "muller ludenscheid"},
		{"ＡＢＣ Ｃｏｒｐ", "abc"},
		{"Tech Trade S.A.", "tech trade"},
		{"ООО Ромашка", "romashka"},
		{"Αλέξης Τσίπρας", "alexis tsipras"},
		{"أسامة بن لادن", "asama bn ladn"},
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
