package node

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func denial(item, deniedOn, reviewBy string) *pb.Record {
	return &pb.Record{
		Marking: pb.Marking_MARKING_AMBER,
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: "Tech Trade LLC"},
		Detail: &pb.Record_Denial{Denial: &pb.Denial{
			ControlListEntry: "3A001.a.1", Item: item, Destination: "IR", Reason: "WMD", Regime: "WASSENAAR",
			DeniedOn: deniedOn, ReviewBy: reviewBy,
			Parties: []*pb.Party{{Role: pb.PartyRole_PARTY_ROLE_CONSIGNEE, Name: "Tech Trade LLC", Country: "IR"}},
		}},
	}
}

// TestDenialReviewReminders: with a clock the test controls, a denial
// appears on the due list as its review date comes near, is reported
// overdue once past it, and leaves the list when renewed (with a new review
// date three years on) or revoked.
func TestDenialReviewReminders(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)}
	c := pb.NewRecordServiceClient(startTestNodeOpts(t, Options{Now: clock.Now}))
	ctx := context.Background()
	mk := func(item, deniedOn, reviewBy string) string {
		t.Helper()
		r, err := c.CreateRecord(ctx, &pb.CreateRecordRequest{Record: denial(item, deniedOn, reviewBy)})
		if err != nil {
			t.Fatal(err)
		}
		return r.Record.Id
	}
	soon := mk("FPGA", "2023-02-01", "")           // review by 2026-02-01, three years on
	later := mk("GaN amplifier", "2025-06-01", "") // review by 2028-06-01
	revoked := mk("ADC", "2023-01-15", "")
	if _, err := c.SetDenialStatus(ctx, &pb.SetDenialStatusRequest{Id: revoked, Status: pb.DenialStatus_DENIAL_STATUS_REVOKED, Reason: "court ruling"}); err != nil {
		t.Fatal(err)
	}
	due := func(within uint32) map[string]*pb.DueDenial {
		t.Helper()
		resp, err := c.ListDueDenials(ctx, &pb.ListDueDenialsRequest{WithinDays: within})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*pb.DueDenial{}
		for _, d := range resp.Denials {
			out[d.Record.Id] = d
		}
		return out
	}

	if got := due(0); len(got) != 0 {
		t.Fatalf("nothing is due on 2026-01-10, got %v", got)
	}
	got := due(30)
	if len(got) != 1 || got[soon].GetDaysLeft() != 22 || got[soon].Overdue {
		t.Fatalf("within 30 days of 2026-01-10: want only %s in 22 days, got %v", soon, got)
	}

	clock.Add(25 * 24 * time.Hour) // 2026-02-04: three days overdue
	got = due(0)
	if d := got[soon]; len(got) != 1 || d == nil || !d.Overdue || d.DaysLeft != -3 {
		t.Fatalf("on 2026-02-04: want %s overdue by 3 days, got %v", soon, got)
	}
	if _, ok := due(3 * 366)[revoked]; ok {
		t.Fatal("a revoked denial is listed for review")
	}

	renewed, err := c.ReviewDenial(ctx, &pb.ReviewDenialRequest{Id: soon, Outcome: pb.ReviewOutcome_REVIEW_OUTCOME_RENEW, Reason: "still diverting"})
	if err != nil {
		t.Fatal(err)
	}
	if d := renewed.Record.GetDenial(); d.ReviewBy != "2029-02-04" || d.Status != pb.DenialStatus_DENIAL_STATUS_DENIED || renewed.Record.Version != 2 {
		t.Fatalf("renewal: %v", renewed.Record)
	}
	if got := due(0); len(got) != 0 {
		t.Fatalf("renewed denial still due: %v", got)
	}

	rev, err := c.ReviewDenial(ctx, &pb.ReviewDenialRequest{Id: later, Outcome: pb.ReviewOutcome_REVIEW_OUTCOME_REVOKE, Reason: "end user dissolved"})
	if err != nil {
		t.Fatal(err)
	}
	if rev.Record.GetDenial().Status != pb.DenialStatus_DENIAL_STATUS_REVOKED {
		t.Fatalf("revocation: %v", rev.Record)
	}
	if _, ok := due(3 * 366)[later]; ok {
		t.Fatal("revoked after review, still listed")
	}
}

func TestDenialReviewRefusesBadInput(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)}
	c := pb.NewRecordServiceClient(startTestNodeOpts(t, Options{Now: clock.Now}))
	ctx := context.Background()
	r, err := c.CreateRecord(ctx, &pb.CreateRecordRequest{Record: denial("FPGA", "2023-02-01", "")})
	if err != nil {
		t.Fatal(err)
	}
	id := r.Record.Id
	for _, tc := range []struct {
		name string
		req  *pb.ReviewDenialRequest
		want codes.Code
	}{
		{"no reason", &pb.ReviewDenialRequest{Id: id, Outcome: pb.ReviewOutcome_REVIEW_OUTCOME_RENEW}, codes.InvalidArgument},
		{"no outcome", &pb.ReviewDenialRequest{Id: id, Reason: "x"}, codes.InvalidArgument},
		{"review date in the past", &pb.ReviewDenialRequest{Id: id, Outcome: pb.ReviewOutcome_REVIEW_OUTCOME_RENEW, Reason: "x", ReviewBy: "2025-01-01"}, codes.InvalidArgument},
		{"review date not a date", &pb.ReviewDenialRequest{Id: id, Outcome: pb.ReviewOutcome_REVIEW_OUTCOME_RENEW, Reason: "x", ReviewBy: "soon"}, codes.InvalidArgument},
		{"revoke with review date", &pb.ReviewDenialRequest{Id: id, Outcome: pb.ReviewOutcome_REVIEW_OUTCOME_REVOKE, Reason: "x", ReviewBy: "2030-01-01"}, codes.InvalidArgument},
		{"stale version", &pb.ReviewDenialRequest{Id: id, Outcome: pb.ReviewOutcome_REVIEW_OUTCOME_RENEW, Reason: "x", ExpectedVersion: 7}, codes.FailedPrecondition},
		{"unknown id", &pb.ReviewDenialRequest{Id: "DEV/01J0000000000000000000000", Outcome: pb.ReviewOutcome_REVIEW_OUTCOME_RENEW, Reason: "x"}, codes.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ReviewDenial(ctx, tc.req)
			if status.Code(err) != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	h, err := c.GetRecordHistory(ctx, &pb.GetRecordHistoryRequest{Id: id})
	if err != nil || len(h.Records) != 1 {
		t.Fatalf("rejected reviews changed the denial: %v %v", h, err)
	}
	if _, err := c.ListDueDenials(ctx, &pb.ListDueDenialsRequest{WithinDays: 5000}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("within_days 5000: %v", err)
	}
}
