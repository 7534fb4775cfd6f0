package api

import (
	"testing"
	"time"
)

// TestAddWorkingDays: weekends and this agency's holidays do not count.
func TestAddWorkingDays(t *testing.T) {
	friday := time.Date(2026, 12, 18, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		n        int
		holidays []string
		want     string
	}{
		{"one day over a weekend", 1, nil, "2026-12-21"},
		{"ten days", 10, nil, "2027-01-01"},
		{"ten days over Christmas", 10, []string{"2026-12-24", "2026-12-25", "2026-12-26", "2027-01-01"}, "2027-01-06"},
		{"a holiday on a weekend changes nothing", 1, []string{"2026-12-19"}, "2026-12-21"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dateOnly(addWorkingDays(friday, tc.n, tc.holidays)); got != tc.want {
				t.Fatalf("%d working days after %s: %s, want %s", tc.n, dateOnly(friday), got, tc.want)
			}
		})
	}
}
