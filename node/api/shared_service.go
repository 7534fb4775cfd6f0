package api

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node/auth"
	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/node/store"
	"github.com/watchfed/watchfed/policy"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// sharedService serves what partners sealed to this agency.
type sharedService struct {
	pb.UnimplementedSharedServiceServer
	audit  *auditor
	shared SharedStore
	fresh  Freshness
	policy Policy
	// closing ends Watch streams when the node stops; watchers holds a
	// token per running Watch stream.
	closing  <-chan struct{}
	watchers chan struct{}
}

// visible applies the third-party rule on the receiving side: RED,
// AMBER+STRICT and originator-controlled entries never leave this agency's
// analysts, so consumers (feeds, exports, downstream systems) do not get
// them; and consumers get only the partners and kinds the policy's receive
// block trusts.
func (s *sharedService) visible(ctx context.Context, e *pb.SharedEntry) bool {
	id, _ := auth.FromContext(ctx)
	if id.Has(pki.RoleAnalyst) {
		return true
	}
	return policy.ConsumerMayGet(e.GetRecord()) && s.policy.Current().Trusts(e.GetOrigin(), e.GetRecord().GetKind())
}

// caughtUp waits until this node has taken in the log up to index: a read
// after a write elsewhere in the federation sees that write. A node whose
// replicated state differs from the federation's serves no shared read.
func (s *sharedService) caughtUp(ctx context.Context, index uint64) error {
	if why := s.fresh.Diverged(); why != "" {
		return status.Errorf(codes.FailedPrecondition, "this node does not serve shared entries: %s", why)
	}
	if index == 0 {
		return nil
	}
	// Answer before the caller's own deadline, so it learns how far this
	// node is rather than only that time ran out.
	wait := maxFreshnessWait
	if d, ok := ctx.Deadline(); ok {
		// Keep a margin for the answer to travel back on a busy machine:
		// a tenth of the time left, at least 200 ms (half, if less is left).
		left := time.Until(d)
		margin := max(left/10, min(200*time.Millisecond, left/2))
		wait = min(wait, left-margin)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		wake := s.fresh.Received()
		have, err := s.shared.ReceivedIndex()
		if err != nil {
			return status.Errorf(codes.Internal, "received index: %v", err)
		}
		if have >= index {
			return nil
		}
		select {
		case <-wake:
		case <-s.closing:
			return status.Error(codes.Unavailable, "node shutting down")
		case <-ctx.Done():
			return status.Errorf(codes.Unavailable, "this node has taken in the log up to index %d, not yet %d", have, index)
		}
	}
}

// maxFreshnessWait bounds how long a read waits for min_index when the
// caller set no shorter deadline.
const maxFreshnessWait = 10 * time.Second

func (s *sharedService) ListShared(ctx context.Context, req *pb.ListSharedRequest) (*pb.ListSharedResponse, error) {
	return unary(ctx, s.audit, req, s.listShared)
}

func (s *sharedService) listShared(ctx context.Context, req *pb.ListSharedRequest, ev *Event) (*pb.ListSharedResponse, error) {
	if err := s.caughtUp(ctx, req.GetMinIndex()); err != nil {
		return nil, err
	}
	limit, err := pageSize(req.GetPageSize(), "page_size")
	if err != nil {
		return nil, err
	}
	es, next, err := s.shared.SharedList(ctx, store.SharedListOptions{
		Origin: req.GetOrigin(), IncludeInactive: req.GetIncludeInactive(), After: req.GetPageToken(), Limit: limit,
		Filter: func(e *pb.SharedEntry) bool { return s.visible(ctx, e) },
	})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "list shared: %v", err)
	}
	for _, e := range es {
		e.Cursor = Cursor(e.LogIndex, e.Position)
	}
	return &pb.ListSharedResponse{Entries: es, NextPageToken: next}, nil
}

func (s *sharedService) GetShared(ctx context.Context, req *pb.GetSharedRequest) (*pb.GetSharedResponse, error) {
	return unary(ctx, s.audit, req, s.getShared)
}

func (s *sharedService) getShared(ctx context.Context, req *pb.GetSharedRequest, ev *Event) (*pb.GetSharedResponse, error) {
	ev.Target = req.GetId()
	if err := s.caughtUp(ctx, req.GetMinIndex()); err != nil {
		return nil, err
	}
	if req.GetConsistent() {
		if err := s.fresh.Barrier(ctx); err != nil {
			return nil, status.Errorf(status.Code(err), "consistent read: %v", err)
		}
	}
	e, err := s.shared.Shared(ctx, req.GetId())
	if err != nil || !s.visible(ctx, e) {
		return nil, status.Errorf(codes.NotFound, "shared entry %s: not found", req.GetId())
	}
	e.Cursor = Cursor(e.LogIndex, e.Position)
	return &pb.GetSharedResponse{Entry: e}, nil
}

// watchBatchBytes bounds what one Watch stream holds in memory: a batch read
// from the store holds entries up to this size, or one larger entry alone.
const watchBatchBytes = 512 << 10

// Watch sends entries in log order and then follows new ones, each with its
// cursor. Resuming after the cursor of the last entry received (or from
// its log_index and position + 1) gives no gap and no duplicate.
func (s *sharedService) Watch(req *pb.WatchRequest, stream pb.SharedService_WatchServer) error {
	return streaming(stream.Context(), s.audit, func(*Event) error { return s.watch(req, stream) })
}

func (s *sharedService) watch(req *pb.WatchRequest, stream pb.SharedService_WatchServer) error {
	if why := s.fresh.Diverged(); why != "" {
		return status.Errorf(codes.FailedPrecondition, "this node does not serve shared entries: %s", why)
	}
	ctx := stream.Context()
	// Each watcher holds at most one batch; a consumer that stops reading
	// blocks its Send on gRPC flow control, so it costs that batch and the
	// stream's window, never the backlog. The number of watchers is bounded.
	select {
	case s.watchers <- struct{}{}:
		defer func() { <-s.watchers }()
	default:
		return status.Errorf(codes.ResourceExhausted, "this node serves at most %d Watch streams at once", cap(s.watchers))
	}
	index, pos := req.GetFromIndex(), req.GetFromPosition()
	if req.GetAfter() != "" {
		var err error
		if index, pos, err = ParseCursor(req.GetAfter()); err != nil {
			return status.Errorf(codes.InvalidArgument, "after: %v", err)
		}
	}
	for {
		wake := s.fresh.Received()
		es, err := s.shared.SharedFrom(ctx, index, pos, watchBatchBytes)
		if err != nil {
			return status.Errorf(codes.Internal, "watch: %v", err)
		}
		for _, e := range es {
			index, pos = e.LogIndex, e.Position+1
			if !s.visible(ctx, e) {
				continue
			}
			e.Cursor = Cursor(e.LogIndex, e.Position)
			if err := stream.Send(&pb.WatchResponse{Entry: e}); err != nil {
				return err
			}
		}
		if len(es) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.closing:
			return status.Error(codes.Unavailable, "node shutting down")
		case <-wake:
		}
	}
}
