package bench

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestToArabic: the arabic kind writes a name in Arabic letters as a clerk
// would, whatever the draw: the words Arabic spells as it does, the article
// joined to the next word, no Latin letter left.
func TestToArabic(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0))
		for _, tc := range []struct {
			words []string
			check func(ws []string) bool
		}{
			{[]string{"mohammed", "ali"}, func(ws []string) bool { return strings.Join(ws, " ") == "محمد علي" }},
			{[]string{"abdullah", "hassan"}, func(ws []string) bool {
				return len(ws) == 3 && ws[0] == "عبد" && ws[1] == "الله" && ws[2] == "حسن"
			}},
			{[]string{"abu", "bakr", "al", "baghdadi"}, func(ws []string) bool {
				return len(ws) == 3 && ws[0] == "أبو" && strings.HasPrefix(ws[1], "ب") && strings.HasPrefix(ws[2], "الب")
			}},
			{[]string{"shams", "trading"}, func(ws []string) bool { return len(ws) == 2 && strings.HasPrefix(ws[0], "ش") }},
		} {
			got := toArabic(tc.words, rng)
			if strings.IndexFunc(got, func(r rune) bool { return r < unicode.MaxASCII && unicode.IsLetter(r) }) >= 0 || !tc.check(strings.Fields(got)) {
				t.Errorf("seed %d: toArabic(%q) = %q", seed, tc.words, got)
			}
		}
	}
}

// TestArabicScriptParty: the arabic kind draws parties of Arabic-script
// programs or countries only.
func TestArabicScriptParty(t *testing.T) {
	rec := func(program string, countries ...string) *pb.Record {
		return &pb.Record{Subject: &pb.Subject{Name: "X Y", Countries: countries},
			Detail: &pb.Record_Designation{Designation: &pb.Designation{Program: program}}}
	}
	for _, tc := range []struct {
		r    *pb.Record
		want bool
	}{
		{rec("SDGT"), true},
		{rec("IRAN] [IRGC"), true},
		{rec("unsc-qaida"), true},
		{rec("UKRAINE-EO13660"), false},
		{rec("UKRAINE-EO13660", "ir"), true},
		{rec("CUBA", "CU"), false},
		{rec("DPRK3"), false},
	} {
		if got := arabicScriptParty(tc.r); got != tc.want {
			t.Errorf("arabicScriptParty(%q, %v) = %v, want %v", tc.r.GetDesignation().GetProgram(), tc.r.Subject.Countries, got, tc.want)
		}
	}
}
