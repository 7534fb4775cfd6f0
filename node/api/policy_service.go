package api

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
	audit      *auditor
	records    RecordStore
	shared     SharedStore
	policy     Policy
	fed        Holdings
	agency     string
	policyFile string
}

func (s *policyService) ExplainPolicy(ctx context.Context, req *pb.ExplainPolicyRequest) (*pb.ExplainPolicyResponse, error) {
	return unary(ctx, s.audit, req, s.explainPolicy)
}

func (s *policyService) explainPolicy(ctx context.Context, req *pb.ExplainPolicyRequest, ev *Event) (*pb.ExplainPolicyResponse, error) {
	ev.Target = req.GetRecordId()
	if req.GetRecordId() == "" {
		return nil, status.Error(codes.InvalidArgument, "record_id: required")
	}
	rec, err := s.records.Current(ctx, req.RecordId)
	if errors.Is(err, store.ErrNotFound) {
		// A received entry: the policy explains that only its originator shares it.
		var e *pb.SharedEntry
		if e, err = s.shared.Shared(ctx, req.RecordId); err == nil {
			rec = e.Record
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "record %s: not found", req.RecordId)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "record %s: %v", req.RecordId, err)
	}
	pol := s.policy.Current()
	f := s.fed
	members := map[string]bool{}
	if ms, err := f.Members(); err == nil {
		for _, m := range ms {
			if m.Joined && m.Agency != s.agency {
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
	perr := s.policy.Error()
	out := &pb.ExplainPolicyResponse{RecordId: rec.Id, Version: rec.Version, PolicyFile: s.policyFile, PolicyError: perr}
	if s.policyFile == "" {
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
