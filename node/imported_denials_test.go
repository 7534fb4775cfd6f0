package node

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestImportedDenialOrders imports BIS denial orders: they keep their own
// effective and expiry dates, none is put on the agency's review list, and
// application screening finds every order in force (one of 1981 with no end
// among them) and none that has expired.
func TestImportedDenialOrders(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)}
	conn := startTestNodeOpts(t, Options{Now: clock.Now})
	ctx := context.Background()
	resp := importFile(t, pb.NewImportServiceClient(conn), "bis-dpl", filepath.Join("importer", "testdata", "bis-dpl.txt"))
	if resp.Added != 4 {
		t.Fatalf("imported %+v, want 4 orders", resp)
	}
	rc, sc := pb.NewRecordServiceClient(conn), pb.NewScreeningServiceClient(conn)
	due, err := rc.ListDueDenials(ctx, &pb.ListDueDenialsRequest{WithinDays: 3 * 366})
	if err != nil {
		t.Fatal(err)
	}
	if len(due.Denials) != 0 {
		t.Errorf("imported orders listed for the agency's review: %v", due.Denials)
	}
	for _, tc := range []struct {
		party, dest string
		want        bool
	}{
		{"Maxwell Old Trading Co", "US", true}, // 1981, no end
		{"I. Ash", "US", true},                 // until 2056
		{"Al Naser Airlines", "IQ", false},     // expired 2022-11-09
	} {
		r, err := sc.ScreenApplication(ctx, &pb.ScreenApplicationRequest{Parties: []string{tc.party}, ControlListEntry: "3A001.a.1", Destination: tc.dest})
		if err != nil {
			t.Fatal(err)
		}
		if found := len(r.Denials) > 0; found != tc.want {
			t.Errorf("%s to %s: %d denials found, want in force: %v (%v)", tc.party, tc.dest, len(r.Denials), tc.want, r.Denials)
			continue
		}
		if tc.want {
			d := r.Denials[0].Result.Record.GetDenial()
			if d.ReviewBy != "" || !strings.Contains(r.Denials[0].Reason, "in force") {
				t.Errorf("%s: review_by %q, reason %q", tc.party, d.ReviewBy, r.Denials[0].Reason)
			}
		}
	}
}
