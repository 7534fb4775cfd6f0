package api

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Governance is membership by proposals and approvals (from protocol 3):
// every act is signed with this agency's signing key and committed through
// the leader. Its errors are gRPC statuses.
type Governance interface {
	// GovernanceActive reports whether protocol 3 or later is active.
	GovernanceActive() bool
	// WaitGovernance waits until it is, or ctx ends.
	WaitGovernance(ctx context.Context) error
	// Propose makes a proposal approved by this agency.
	Propose(ctx context.Context, p *peerpb.Proposal) (*pb.Proposal, error)
	// Decide approves or rejects a pending proposal as this agency.
	Decide(ctx context.Context, id string, approve bool) (*pb.Proposal, error)
	// Leave takes this agency out of the federation.
	Leave(ctx context.Context) (uint64, error)
	// Proposals lists the pending proposals (all: every one) and the threshold.
	Proposals(all bool) ([]*pb.Proposal, string, error)
}

// governanceWait bounds how long federation init waits for a new
// federation to activate governance before setting its threshold.
const governanceWait = 30 * time.Second

// ParseThreshold reads "majority" (or ""), "all" or a count above 0.
func ParseThreshold(s string) (*peerpb.ApprovalThreshold, error) {
	switch s {
	case "", "majority":
		return &peerpb.ApprovalThreshold{Rule: &peerpb.ApprovalThreshold_Majority{Majority: true}}, nil
	case "all":
		return &peerpb.ApprovalThreshold{Rule: &peerpb.ApprovalThreshold_All{All: true}}, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return nil, fmt.Errorf("%q: majority, all or a number above 0", s)
	}
	return &peerpb.ApprovalThreshold{Rule: &peerpb.ApprovalThreshold_Count{Count: uint32(n)}}, nil
}

// setThreshold makes a new federation's threshold what init asked for: a
// proposal of its only member, applied at once, once governance is active.
func (s *federationService) setThreshold(ctx context.Context, th *peerpb.ApprovalThreshold) error {
	if th.GetMajority() {
		return nil // the default
	}
	wctx, cancel := context.WithTimeout(ctx, governanceWait)
	defer cancel()
	if err := s.gov.WaitGovernance(wctx); err != nil {
		return err
	}
	p, err := s.gov.Propose(ctx, &peerpb.Proposal{Change: &peerpb.Proposal_Threshold{Threshold: th}})
	if err != nil {
		return err
	}
	if p.State != "applied" {
		return status.Errorf(codes.FailedPrecondition, "approval threshold: proposal %s is %s (%d of %d approvals)", p.Id, p.State, p.Approvals, p.Needed)
	}
	return nil
}

// proposeInvite is InvitePeer under governance: a proposal to let m in.
func (s *federationService) proposeInvite(ctx context.Context, m *pb.Member) (*pb.Proposal, error) {
	return s.gov.Propose(ctx, &peerpb.Proposal{Change: &peerpb.Proposal_Invite{Invite: m}})
}

// proposeRemoval is RemovePeer under governance: a proposal to take
// another agency out (an agency leaves on its own).
func (s *federationService) proposeRemoval(ctx context.Context, agency string) (*pb.Proposal, error) {
	if agency == s.agency {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is this agency: it leaves on its own (watchfed federation leave)", agency)
	}
	return s.gov.Propose(ctx, &peerpb.Proposal{Change: &peerpb.Proposal_Remove{Remove: agency}})
}

func (s *federationService) ListProposals(ctx context.Context, req *pb.ListProposalsRequest) (*pb.ListProposalsResponse, error) {
	return unary(ctx, s.audit, req, s.listProposals)
}

func (s *federationService) listProposals(_ context.Context, req *pb.ListProposalsRequest, _ *Event) (*pb.ListProposalsResponse, error) {
	ps, th, err := s.gov.Proposals(req.GetAll())
	if err != nil {
		return nil, err
	}
	return &pb.ListProposalsResponse{Proposals: ps, Threshold: th}, nil
}

func (s *federationService) ApproveProposal(ctx context.Context, req *pb.ApproveProposalRequest) (*pb.ApproveProposalResponse, error) {
	return unary(ctx, s.audit, req, func(ctx context.Context, req *pb.ApproveProposalRequest, ev *Event) (*pb.ApproveProposalResponse, error) {
		p, err := s.decide(ctx, req.GetId(), true, ev)
		return &pb.ApproveProposalResponse{Proposal: p}, err
	})
}

func (s *federationService) RejectProposal(ctx context.Context, req *pb.RejectProposalRequest) (*pb.RejectProposalResponse, error) {
	return unary(ctx, s.audit, req, func(ctx context.Context, req *pb.RejectProposalRequest, ev *Event) (*pb.RejectProposalResponse, error) {
		p, err := s.decide(ctx, req.GetId(), false, ev)
		return &pb.RejectProposalResponse{Proposal: p}, err
	})
}

func (s *federationService) decide(ctx context.Context, id string, approve bool, ev *Event) (*pb.Proposal, error) {
	ev.Target = "proposal " + id
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "id: %q is not a proposal id (its log index, as proposals list shows it)", id)
	}
	if !s.gov.GovernanceActive() {
		return nil, status.Error(codes.FailedPrecondition, "this federation does not govern membership by proposals yet (protocol 3 is not active)")
	}
	p, err := s.gov.Decide(ctx, id, approve)
	if err != nil {
		return nil, err
	}
	ev.Detail = proposalDetail(p)
	return p, nil
}

func (s *federationService) LeaveFederation(ctx context.Context, req *pb.LeaveFederationRequest) (*pb.LeaveFederationResponse, error) {
	return unary(ctx, s.audit, req, s.leaveFederation)
}

func (s *federationService) leaveFederation(ctx context.Context, _ *pb.LeaveFederationRequest, ev *Event) (*pb.LeaveFederationResponse, error) {
	ev.Target = s.agency
	if !s.gov.GovernanceActive() {
		return nil, status.Error(codes.FailedPrecondition, "this federation does not let an agency leave on its own yet (protocol 3 is not active): ask a member to run `watchfed peers remove`")
	}
	idx, err := s.gov.Leave(ctx)
	if err != nil {
		return nil, err
	}
	ev.Detail = fmt.Sprintf("left at log index %d", idx)
	return &pb.LeaveFederationResponse{LogIndex: idx}, nil
}

// proposalDetail is a proposal in one line, for an audit event.
func proposalDetail(p *pb.Proposal) string {
	return fmt.Sprintf("proposal %s: %s %s by %s, %d of %d approvals, %s", p.GetId(), p.GetAction(), p.GetAgency(), p.GetProposedBy(), p.GetApprovals(), p.GetNeeded(), p.GetState())
}
