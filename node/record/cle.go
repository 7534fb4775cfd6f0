package record

import (
	"fmt"
	"regexp"
	"strings"
)

// ControlListEntry is a parsed entry of a dual-use or military control list:
// EU Annex I / Wassenaar numbering ("3A001.a.1"), the Munitions List
// ("ML10.a"), or ALL for a denial of every item (a denial order).
type ControlListEntry struct {
	// Parts: the head ("3A001", "ML10", "ALL") then each sub-level ("a", "1").
	Parts []string
}

var (
	dualUseHead  = regexp.MustCompile(`^[0-9][A-E][0-9]{3}$`)
	militaryHead = regexp.MustCompile(`^ML[0-9]{1,2}$`)
	letterLevel  = regexp.MustCompile(`^[a-z]{1,2}$`)
	numberLevel  = regexp.MustCompile(`^[0-9]{1,2}$`)
)

// ParseControlListEntry reads an entry such as 3A001, 3A001.a.1, 5A002.a.1.b,
// ML22.b.1 or ALL. Sub-levels alternate letters and numbers.
func ParseControlListEntry(s string) (ControlListEntry, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "ALL") {
		return ControlListEntry{Parts: []string{"ALL"}}, nil
	}
	parts := strings.Split(s, ".")
	head := strings.ToUpper(parts[0])
	if !dualUseHead.MatchString(head) && !militaryHead.MatchString(head) {
		return ControlListEntry{}, fmt.Errorf("%q is not a control-list entry (want e.g. 3A001.a.1 or ML10.a)", s)
	}
	out := ControlListEntry{Parts: []string{head}}
	for i, p := range parts[1:] {
		want := letterLevel
		if i%2 == 1 {
			want = numberLevel
		}
		if !want.MatchString(p) {
			return ControlListEntry{}, fmt.Errorf("%q is not a control-list entry: level %d %q should be %s (want e.g. 3A001.a.1)", s, i+2, p, map[bool]string{true: "a letter", false: "a number"}[i%2 == 0])
		}
		out.Parts = append(out.Parts, p)
	}
	return out, nil
}

// String is the canonical form.
func (c ControlListEntry) String() string { return strings.Join(c.Parts, ".") }

// Within reports whether c is parent or the same as or below it: 3A001.a.1 is
// within 3A001 and 3A001.a, not within 3A002; everything is within ALL.
func (c ControlListEntry) Within(parent ControlListEntry) bool {
	if len(parent.Parts) == 1 && parent.Parts[0] == "ALL" {
		return true
	}
	if len(parent.Parts) > len(c.Parts) || len(parent.Parts) == 0 {
		return false
	}
	for i, p := range parent.Parts {
		if c.Parts[i] != p {
			return false
		}
	}
	return true
}
