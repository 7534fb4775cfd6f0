package api

import (
	"strings"
	"testing"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func TestImportRefusal(t *testing.T) {
	u32 := func(n uint32) *uint32 { return &n }
	f64 := func(f float64) *float64 { return &f }
	plan := func(delisted, rejected int) *importPlan {
		return &importPlan{delisted: delisted, rejected: make([]*pb.ImportRejection, rejected)}
	}
	for _, tc := range []struct {
		name                      string
		limits                    importLimits
		read, rowsRejected, force int
		plan                      *importPlan
		want                      string // "" imports
	}{
		{"first edition", importLimits{}, 14668, 0, 0, plan(0, 0), ""},
		{"weekly delta", importLimits{}, 14965, 0, 14668, plan(8, 0), ""},
		{"empty file", importLimits{}, 0, 0, 14668, plan(14668, 0), "reads no entries"},
		{"junk: every row rejected", importLimits{}, 0, 500, 14668, plan(0, 0), "reads no entries (500 rows rejected)"},
		{"empty, overrides do not help", importLimits{allowRejects: true, delistPercent: f64(100)}, 0, 0, 10, plan(10, 0), "reads no entries"},
		{"1 % rejected", importLimits{}, 99, 1, 0, plan(0, 0), ""},
		{"over 1 % rejected", importLimits{}, 99, 1, 0, plan(0, 1), "2 of the edition's 100 rows are rejected (2.0 %; limit 1 %, --allow-rejects overrides)"},
		{"rejects allowed", importLimits{allowRejects: true}, 50, 50, 0, plan(0, 0), ""},
		{"10 % delisted", importLimits{}, 90, 0, 100, plan(10, 0), ""},
		{"truncated: half delisted", importLimits{}, 50, 0, 100, plan(50, 0), "it would delist 50 of the 100 L records in force (50.0 %; limit 10 %, --max-delist N|P% overrides)"},
		{"max-delist count", importLimits{delistCount: u32(50)}, 50, 0, 100, plan(50, 0), ""},
		{"max-delist count exceeded", importLimits{delistCount: u32(49)}, 50, 0, 100, plan(50, 0), "limit 49, from --max-delist"},
		{"max-delist 0 refuses any", importLimits{delistCount: u32(0)}, 99, 0, 100, plan(1, 0), "it would delist 1 of the 100"},
		{"max-delist percent", importLimits{delistPercent: f64(50)}, 50, 0, 100, plan(50, 0), ""},
		{"max-delist percent exceeded", importLimits{delistPercent: f64(25)}, 50, 0, 100, plan(50, 0), "(50.0 %; limit 25 %, from --max-delist)"},
		{"revocations", importLimits{}, 1, 0, 100, &importPlan{delisted: 99, revoking: true}, "it would revoke 99 of the 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.limits.refusal("L", tc.read, tc.rowsRejected, tc.force, tc.plan)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("refusal = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestImportLimitsOverrides(t *testing.T) {
	n, p := uint32(250), 25.0
	for _, tc := range []struct {
		l    importLimits
		want string
	}{
		{importLimits{}, ""},
		{importLimits{allowRejects: true, delistCount: &n}, "allow_rejects, max_delist 250"},
		{importLimits{delistPercent: &p}, "max_delist 25%"},
	} {
		if got := tc.l.overrides(); got != tc.want {
			t.Errorf("overrides = %q, want %q", got, tc.want)
		}
	}
	bad := -1.0
	if err := (importLimits{delistPercent: &bad}).check(); err == nil || !strings.Contains(err.Error(), "max_delist_percent") {
		t.Errorf("check(-1 %%) = %v", err)
	}
}
