package store

import (
	"context"
	"fmt"
	"testing"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestSharedListPages: a partner holding thousands of entries is read page
// by page, each entry once, in id order; filters and origin apply before
// the page is cut; a received consultation is recorded in the audit log.
func TestSharedListPages(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	var batch []Received
	for i := range 250 {
		origin := "DE-BAFA"
		if i%5 == 0 {
			origin = "NL-CDIU"
		}
		st := pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE
		if i%10 == 1 {
			st = pb.DesignationStatus_DESIGNATION_STATUS_DELISTED
		}
		r := version(fmt.Sprintf("%s/%03d", origin, i), 1, t0, fmt.Sprintf("Name %d", i), st)
		r.Origin = origin
		batch = append(batch, Received{Index: uint64(i + 1), Entries: []*pb.SharedEntry{{Origin: origin, Record: r}}})
	}
	batch[7].Audit = []*pb.AuditEvent{ev("consultation.received")}
	if err := s.TakeIn(ctx, batch, 250); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    SharedListOptions
		want int
	}{
		{"all", SharedListOptions{IncludeInactive: true}, 250},
		{"in force", SharedListOptions{}, 225},
		{"one origin", SharedListOptions{Origin: "NL-CDIU", IncludeInactive: true}, 50},
		{"filtered", SharedListOptions{IncludeInactive: true, Filter: func(e *pb.SharedEntry) bool { return e.Record.Id[len(e.Record.Id)-1] == '3' }}, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]bool{}
			last := ""
			o := tc.o
			o.Limit = 40
			for {
				page, next, err := s.SharedList(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > 40 {
					t.Fatalf("page of %d entries, limit 40", len(page))
				}
				for _, e := range page {
					if seen[e.Record.Id] || e.Record.Id <= last {
						t.Fatalf("%s out of order or twice", e.Record.Id)
					}
					seen[e.Record.Id], last = true, e.Record.Id
				}
				if next == "" {
					break
				}
				o.After = next
			}
			if len(seen) != tc.want {
				t.Fatalf("paged through %d entries, want %d", len(seen), tc.want)
			}
		})
	}
	evs, err := s.ListAudit(ctx, 0, 10)
	if err != nil || len(evs) != 1 || evs[0].Action != "consultation.received" {
		t.Fatalf("audit of taking in: %v %v", evs, err)
	}
}
