// Package policy holds the sharing rules of an agency: markings, the
// per-partner policy and, in policy/seal, the sealing of shared entries.
package policy

import (
	"fmt"
	"strings"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// markingNames are the TLP 2.0 labels, as people write them.
var markingNames = map[pb.Marking]string{
	pb.Marking_MARKING_CLEAR:        "CLEAR",
	pb.Marking_MARKING_GREEN:        "GREEN",
	pb.Marking_MARKING_AMBER:        "AMBER",
	pb.Marking_MARKING_AMBER_STRICT: "AMBER+STRICT",
	pb.Marking_MARKING_RED:          "RED",
}

// MarkingName is the TLP label of m ("AMBER+STRICT"), or "" if unset.
func MarkingName(m pb.Marking) string { return markingNames[m] }

// ParseMarking reads a TLP label; case, "TLP:" and "_"/"-" for "+" are accepted.
func ParseMarking(s string) (pb.Marking, error) {
	norm := strings.ToUpper(strings.TrimSpace(s))
	norm = strings.TrimPrefix(norm, "TLP:")
	norm = strings.NewReplacer("_", "+", "-", "+", " ", "+").Replace(norm)
	for m, name := range markingNames {
		if name == norm {
			return m, nil
		}
	}
	return pb.Marking_MARKING_UNSPECIFIED, fmt.Errorf("marking %q: want one of CLEAR, GREEN, AMBER, AMBER+STRICT, RED", s)
}

// Narrower returns the more restrictive of two markings: a marking never
// widens as a record moves.
func Narrower(a, b pb.Marking) pb.Marking {
	if a > b {
		return a
	}
	return b
}
