package safetext

import "testing"

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		id, agency string
		ok         bool
	}{
		{"DE-BAFA/01M8TP60F4CY8XSPXCEWCD4KPK", "DE-BAFA", true},
		{"UN/01M8TP60F4CY8XSPXCEWCD4KPK", "UN", true},
		{"de-bafa/01M8TP60F4CY8XSPXCEWCD4KPK", "", false},
		{"DE-BAFA/12345", "", false},
		{"DE-BAFA01M8TP60F4CY8XSPXCEWCD4KPK", "", false},
		{"DE-BAFA/\x1b[31m", "", false},
		{"DE\u202eBAFA/01M8TP60F4CY8XSPXCEWCD4KPK", "", false},
	} {
		a, err := ParseID(tc.id)
		if (err == nil) != tc.ok || a != tc.agency {
			t.Errorf("ParseID(%q) = %q, %v; want %q ok=%v", tc.id, a, err, tc.agency, tc.ok)
		}
	}
}

func TestUnprintable(t *testing.T) {
	for r, want := range map[rune]bool{'a': false, 'é': false, '\u200d': false, '\t': true, '\n': true, 0x1b: true, 0x7f: true, 0x9b: true, '\u202e': true, '\u2066': true, '\u061c': true} {
		if Unprintable(r) != want {
			t.Errorf("Unprintable(%U) = %v, want %v", r, !want, want)
		}
	}
}
