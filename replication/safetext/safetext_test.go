package safetext

import (
	"regexp"
	"testing"
)

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

// TestAgencyIDAsRegexp: the hand-written match agrees with the rule's
// regular expression (part of protocol 2: every FSM must agree).
func TestAgencyIDAsRegexp(t *testing.T) {
	rule := regexp.MustCompile(`^[A-Z][A-Z0-9]{0,15}(-[A-Z0-9]{1,16})?$`)
	ids := []string{"", "-", "A", "a", "UN", "DE-BAFA", "DE-", "-DE", "DE--BAFA", "DE-BA-FA", "1DE", "D1", "DE-1",
		"ABCDEFGHIJKLMNOP", "ABCDEFGHIJKLMNOPQ", "A-ABCDEFGHIJKLMNOP", "A-ABCDEFGHIJKLMNOPQ", "DE BAFA", "DÉ", "DE-BAFA\n", "DE_BAFA"}
	alphabet := "AZ09-a "
	for n := 0; n <= 4; n++ { // every string of up to 4 characters of alphabet
		var gen func(prefix string)
		gen = func(prefix string) {
			if len(prefix) == n {
				ids = append(ids, prefix)
				return
			}
			for _, c := range alphabet {
				gen(prefix + string(c))
			}
		}
		gen("")
	}
	for _, id := range ids {
		if got, want := ValidateAgencyID(id) == nil, rule.MatchString(id); got != want {
			t.Errorf("ValidateAgencyID(%q) ok=%v, the rule says %v", id, got, want)
		}
	}
}
