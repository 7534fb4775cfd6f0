package node

import (
	"context"
	"errors"
	"maps"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// policyService answers `watchfed policy explain`.
type policyService struct {
	pb.UnimplementedPolicyServiceServer
	n *Node
}

func (s *policyService) ExplainPolicy(ctx context.Context, req *pb.ExplainPolicyRequest) (*pb.ExplainPolicyResponse, error) {
	draftFrom(ctx).ev.Target = req.GetRecordId()
	if req.GetRecordId() == "" {
		return nil, status.Error(codes.InvalidArgument, "record_id: required")
	}
	rec, err := s.n.store.Current(ctx, req.RecordId)
	if errors.Is(err, store.ErrNotFound) {
		// A received entry: the policy explains that only its originator shares it.
		var e *pb.SharedEntry
		if e, err = s.n.store.Shared(ctx, req.RecordId); err == nil {
			rec = e.Record
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "record %s: not found", req.RecordId)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "record %s: %v", req.RecordId, err)
	}
	pol := s.n.policy()
	f := s.n.fed
	members := map[string]bool{}
	if ms, err := f.Replicator().Members(); err == nil {
		for _, m := range ms {
			if m.Joined && m.Agency != s.n.cfg.Agency {
				members[m.Agency] = true
			}
		}
	}
	var partners []string
	if req.GetPartner() != "" {
		partners = []string{req.Partner}
	} else {
		partners = append(slices.Sorted(maps.Keys(members)), pol.PartnerIDs()...)
		slices.Sort(partners)
		partners = slices.Compact(partners)
	}
	held, err := f.Holds(rec.Id)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "holdings: %v", err)
	}
	perr, _ := s.n.policyState()
	out := &pb.ExplainPolicyResponse{RecordId: rec.Id, Version: rec.Version, PolicyFile: s.n.cfg.Policy, PolicyError: perr}
	if s.n.cfg.Policy == "" {
		out.PolicyError = "no policy file configured: nothing is shared with partners"
	}
	for _, p := range partners {
		d := pol.Decide(rec, p)
		if !members[p] && d.Share {
			d.Reasons = append(d.Reasons, p+" is not a joined member yet: it receives this once it joins")
		}
		out.Decisions = append(out.Decisions, &pb.PartnerDecision{
			Partner: p, Share: d.Share, Marking: d.Marking, OriginatorControl: d.OriginatorControl,
			Kept: d.Kept, Redacted: d.Redacted, Reasons: d.Reasons, HoldsVersion: held[p], Member: members[p],
		})
	}
	return out, nil
}
