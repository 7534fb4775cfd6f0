package node

import (
	"cmp"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/watchfed/watchfed/node/importer"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/testnet/shareddata"
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
	if resp.Added != 6 {
		t.Fatalf("imported %+v, want 6 orders", resp)
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
		// A party at addresses in several countries: found for each of
		// them, the first row's and the others.
		{"Ali M Hijazi", "CH", true},
		{"Ali M Hijazi", "FR", true},
		{"Ali M Hijazi", "LY", true},
		{"Zimo Sheng", "US", true},
		{"Zimo Sheng", "CN", true},
		// An order denies the party's export privileges wherever the
		// goods go: found for a destination none of its addresses is in.
		{"Zimo Sheng", "DE", true},
		{"I. Ash", "IR", true},
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
			if d.ReviewBy != "" || !strings.Contains(r.Denials[0].Reason, "in force") || !strings.Contains(r.Denials[0].Reason, "any destination") {
				t.Errorf("%s: review_by %q, reason %q", tc.party, d.ReviewBy, r.Denials[0].Reason)
			}
		}
	}
}

// TestImportedDenialOrdersReal imports the complete BIS Denied Persons List,
// when present, and screens an application for every (party, country) row
// whose order is in force, to that country and to one none of the party's
// addresses is in: each must find the party's own order.
func TestImportedDenialOrdersReal(t *testing.T) {
	path := filepath.Join(shareddata.Dir(), "bis-dpl", "dpl_2022.txt")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("real list file not present: %v", err)
	}
	day := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	conn := startTestNodeOpts(t, Options{Now: func() time.Time { return day }})
	ctx := context.Background()
	res := parseFile(t, "bis-dpl", path)
	if _, err := importer.SendWith(ctx, pb.NewImportServiceClient(conn), res, importer.Options{Marking: pb.Marking_MARKING_CLEAR}, nil); err != nil {
		t.Fatal(err)
	}
	// No imported order is on the agency's review list (issue 18: 326 of
	// 457 were listed as overdue).
	due, err := pb.NewRecordServiceClient(conn).ListDueDenials(ctx, &pb.ListDueDenialsRequest{WithinDays: 3 * 366})
	if err != nil {
		t.Fatal(err)
	}
	if len(due.Denials) != 0 {
		t.Errorf("%d imported orders listed for the agency's review, first %v", len(due.Denials), due.Denials[0])
	}
	sc := pb.NewScreeningServiceClient(conn)
	type pair struct{ ref, name, country string }
	var pairs []pair
	seen := map[pair]bool{}
	for _, it := range res.Items {
		d := it.Record.GetDenial()
		if d.ExpiresOn != "" && d.ExpiresOn < day.Format(time.DateOnly) {
			continue
		}
		for _, p := range d.Parties {
			// A row without a country is a party in the United States.
			pr := pair{it.Record.SourceRef, p.Name, cmp.Or(p.Country, "US")}
			if !seen[pr] {
				seen[pr] = true
				pairs = append(pairs, pr)
			}
		}
	}
	missed := 0
	for _, pr := range pairs {
		for _, dest := range []string{pr.country, "AQ"} {
			r, err := sc.ScreenApplication(ctx, &pb.ScreenApplicationRequest{Parties: []string{pr.name}, ControlListEntry: "3A001.a.1", Destination: dest})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(r.Denials, func(m *pb.DenialMatch) bool { return m.Result.Record.SourceRef == pr.ref }) {
				if missed++; missed <= 20 {
					t.Errorf("%s (%s) to %s: its order %s not found (%d denials)", pr.name, pr.country, dest, pr.ref, len(r.Denials))
				}
			}
		}
	}
	t.Logf("%d orders imported; %d (party, country) pairs in force on %s, each screened to its country and to AQ: %d not found",
		len(res.Items), len(pairs), day.Format(time.DateOnly), missed)
}
