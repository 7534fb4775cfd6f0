// Package safetext holds the rules for ids and text that cross agencies:
// agency ids, entry ids (AGENCY/ULID), and the characters refused in text
// because they act on a terminal or reorder what is read (controls, bidi
// controls). node/record checks records by them, and the replicated state
// machine checks entries' clear headers by them from protocol 2 on.
//
// Every FSM must reach the same verdict on an entry, so these rules are part
// of federation protocol 2: a change to them is a change of how entries are
// applied, and needs a new protocol version (keep the old rule for the old
// version) rather than an edit here.
package safetext

import (
	"fmt"
	"strings"

	"github.com/oklog/ulid/v2"
)

// ValidateAgencyID checks an agency id such as DE-BAFA, US-BIS or UN: the
// rule is ^[A-Z][A-Z0-9]{0,15}(-[A-Z0-9]{1,16})?$, matched by hand (every
// FSM checks several ids per record it applies; the regexp cost more than
// the rest of the check).
func ValidateAgencyID(s string) error {
	if !isAgencyID(s) {
		return fmt.Errorf("%q is not an agency id (upper-case letters and digits, one optional dash: DE-BAFA)", s)
	}
	return nil
}

func isAgencyID(s string) bool {
	head, tail, dash := strings.Cut(s, "-")
	if len(head) < 1 || len(head) > 16 || head[0] < 'A' || head[0] > 'Z' || !upperAlnum(head) {
		return false
	}
	return !dash || (len(tail) >= 1 && len(tail) <= 16 && upperAlnum(tail))
}

func upperAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// ParseID splits an entry (record) id, AGENCY/ULID, and returns its agency.
func ParseID(id string) (string, error) {
	agency, u, ok := strings.Cut(id, "/")
	if !ok {
		return "", fmt.Errorf("%q is not AGENCY/ULID", id)
	}
	if err := ValidateAgencyID(agency); err != nil {
		return "", err
	}
	if _, err := ulid.ParseStrict(u); err != nil {
		return "", fmt.Errorf("%q: %v", id, err)
	}
	return agency, nil
}

// Unprintable reports whether r is refused in text: a control character
// (tab and line feed included) or a bidirectional control.
func Unprintable(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7F && r <= 0x9F:
		return true
	case r == 0x061C, r == 0x200E, r == 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
