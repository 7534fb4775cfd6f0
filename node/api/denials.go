package api

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Export-control regimes oblige a state to review each denial within three
// years and then renew or revoke it, and to notify partners of the result.
// These two calls carry that duty: the due list is the reminder, a review is
// a new version that reaches every partner holding the denial.

// maxReviewHorizon bounds within_days: a look ahead of more than a review
// period lists every denial and is a mistake.
const maxReviewHorizon = 366 * record.ReviewPeriod

func (s *recordService) ListDueDenials(ctx context.Context, req *pb.ListDueDenialsRequest) (*pb.ListDueDenialsResponse, error) {
	return unary(ctx, s.audit, req, s.listDueDenials)
}

func (s *recordService) listDueDenials(ctx context.Context, req *pb.ListDueDenialsRequest, ev *Event) (*pb.ListDueDenialsResponse, error) {
	if req.GetWithinDays() > maxReviewHorizon {
		return nil, status.Errorf(codes.InvalidArgument, "within_days: %d is more than a review period (%d days)", req.GetWithinDays(), maxReviewHorizon)
	}
	today := day(s.now())
	recs, _, err := s.records.List(ctx, store.ListOptions{Kind: pb.Kind_KIND_DENIAL})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "list denials: %v", err)
	}
	var out []*pb.DueDenial
	for _, r := range recs {
		due, err := time.Parse(time.DateOnly, r.GetDenial().GetReviewBy())
		if err != nil {
			continue // an imported order: its publisher reviews it, not this agency
		}
		left := int32(due.Sub(today).Hours() / 24)
		if left <= int32(req.GetWithinDays()) {
			out = append(out, &pb.DueDenial{Record: r, DaysLeft: left, Overdue: left < 0})
		}
	}
	slices.SortFunc(out, func(a, b *pb.DueDenial) int { return int(a.DaysLeft - b.DaysLeft) })
	ev.Detail = fmt.Sprintf("%d due", len(out))
	return &pb.ListDueDenialsResponse{Denials: out, Today: today.Format(time.DateOnly)}, nil
}

func (s *recordService) ReviewDenial(ctx context.Context, req *pb.ReviewDenialRequest) (*pb.ReviewDenialResponse, error) {
	return unary(ctx, s.audit, req, s.reviewDenial)
}

func (s *recordService) reviewDenial(ctx context.Context, req *pb.ReviewDenialRequest, ev *Event) (*pb.ReviewDenialResponse, error) {
	if req.GetReason() == "" {
		return nil, status.Error(codes.InvalidArgument, "reason: must not be empty: the review's result is notified to partners with its reason")
	}
	cur, err := s.current(ctx, ev, req.GetId(), req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	d := cur.GetDenial()
	if d == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is a designation, not a denial", cur.Id)
	}
	if !store.Active(cur) {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is %s: only a denial in force is reviewed", cur.Id, d.Status)
	}
	now := s.now().UTC()
	today := day(now)
	next := proto.Clone(cur).(*pb.Record)
	nd := next.GetDenial()
	switch req.GetOutcome() {
	case pb.ReviewOutcome_REVIEW_OUTCOME_RENEW:
		nd.ReviewBy = req.GetReviewBy()
		if nd.ReviewBy == "" {
			nd.ReviewBy = today.AddDate(record.ReviewPeriod, 0, 0).Format(time.DateOnly)
		}
		if rb, err := time.Parse(time.DateOnly, nd.ReviewBy); err != nil || !rb.After(today) {
			return nil, status.Errorf(codes.InvalidArgument, "review_by: %q is not a date after today (%s)", nd.ReviewBy, today.Format(time.DateOnly))
		}
		nd.StatusReason = fmt.Sprintf("review %s: renewed until %s: %s", today.Format(time.DateOnly), nd.ReviewBy, req.GetReason())
	case pb.ReviewOutcome_REVIEW_OUTCOME_REVOKE:
		if req.GetReviewBy() != "" {
			return nil, status.Error(codes.InvalidArgument, "review_by: only a renewal sets the next review")
		}
		nd.Status = pb.DenialStatus_DENIAL_STATUS_REVOKED
		nd.StatusReason = fmt.Sprintf("review %s: revoked: %s", today.Format(time.DateOnly), req.GetReason())
	default:
		return nil, status.Errorf(codes.InvalidArgument, "outcome: %s is not renew or revoke", req.GetOutcome())
	}
	next.ChangeNote = nd.StatusReason
	if err := record.Validate(next); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	idx, err := s.put(ctx, ev, next, cur, now)
	if err != nil {
		return nil, err
	}
	return &pb.ReviewDenialResponse{Record: next, LogIndex: idx, NotShared: s.notShared(next, idx)}, nil
}

// day is the UTC calendar day of t, at midnight.
func day(t time.Time) time.Time {
	return t.UTC().Truncate(24 * time.Hour)
}
