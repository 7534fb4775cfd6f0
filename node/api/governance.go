package api

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/policy/seal"
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

func (s *federationService) RebindPeer(ctx context.Context, req *pb.RebindPeerRequest) (*pb.RebindPeerResponse, error) {
	return unary(ctx, s.audit, req, s.rebindPeer)
}

// rebindPeer proposes to bind an agency id to another CA or new keys: how a
// member that lost its keys joins again, or a removed agency is re-invited
// under a new CA. What it asks is checked here as an invitation is; every
// FSM checks the proposal again.
func (s *federationService) rebindPeer(ctx context.Context, req *pb.RebindPeerRequest, ev *Event) (*pb.RebindPeerResponse, error) {
	ev.Target = req.GetAgency()
	m, err := rebindMember(req)
	if err != nil {
		return nil, err
	}
	if s.gov == nil || !s.gov.GovernanceActive() {
		return nil, status.Error(codes.FailedPrecondition, "this federation does not govern membership by proposals yet (protocol 3 is not active): an agency id is not bound before it")
	}
	if !s.fed.Joined() {
		return nil, status.Error(codes.FailedPrecondition, "this agency is not a joined member: only members propose")
	}
	p, err := s.gov.Propose(ctx, &peerpb.Proposal{Change: &peerpb.Proposal_Rebind{Rebind: m}})
	if err != nil {
		return nil, err
	}
	ev.Detail = proposalDetail(p)
	return &pb.RebindPeerResponse{Proposal: p}, nil
}

// rebindMember is the binding a rebind request asks for, checked.
func rebindMember(req *pb.RebindPeerRequest) (*pb.Member, error) {
	if err := record.ValidateAgencyID(req.GetAgency()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "agency: %v", err)
	}
	m := &pb.Member{Agency: req.Agency}
	if len(req.GetCaCert()) > 0 {
		cert, err := pki.ParseCertPEM(req.CaCert)
		if err != nil || !cert.IsCA {
			return nil, status.Errorf(codes.InvalidArgument, "ca_cert: not a PEM CA certificate: %v", err)
		}
		if len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != req.Agency {
			return nil, status.Errorf(codes.InvalidArgument, "ca_cert: names agency %v, not %s", cert.Subject.Organization, req.Agency)
		}
		m.CaCert = req.CaCert
	}
	switch signing, sealing := len(req.GetSigningKey()), len(req.GetSealingKey()); {
	case signing == 0 && sealing == 0:
	case signing != ed25519.PublicKeySize:
		return nil, status.Errorf(codes.InvalidArgument, "signing_key: %d bytes, not an Ed25519 public key (%d)", signing, ed25519.PublicKeySize)
	case sealing == 0:
		return nil, status.Error(codes.InvalidArgument, "sealing_key: new keys are both signing_key and sealing_key")
	default:
		if err := seal.CheckSealingKey(req.SealingKey); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "sealing_key: %v", err)
		}
		m.SigningKey, m.SealingKey = req.SigningKey, req.SealingKey
	}
	if len(m.CaCert) == 0 && len(m.SigningKey) == 0 {
		return nil, status.Error(codes.InvalidArgument, "a rebind needs a ca_cert, new keys (signing_key and sealing_key), or both")
	}
	return m, nil
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
