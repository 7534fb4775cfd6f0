package api

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/anchor"
	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/node/record"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// federationService is the operators' API for membership and status.
type federationService struct {
	pb.UnimplementedFederationServiceServer
	audit  *auditor
	fed    Membership
	gov    Governance
	peers  Peers
	agency string
	now    func() time.Time
	// backup writes the node's backup archive.
	backup func(io.Writer) error
	// anchors says where the audit chain was last anchored (nil: nowhere).
	anchors AuditAnchors
}

func (s *federationService) InitFederation(ctx context.Context, req *pb.InitFederationRequest) (*pb.InitFederationResponse, error) {
	return unary(ctx, s.audit, req, s.initFederation)
}

func (s *federationService) initFederation(ctx context.Context, req *pb.InitFederationRequest, ev *Event) (*pb.InitFederationResponse, error) {
	f := s.fed
	th, err := ParseThreshold(req.GetApprovals())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "approvals: %v", err)
	}
	if f.Invitation() != nil {
		return nil, status.Error(codes.FailedPrecondition, "this node was started to join a federation (--join); it cannot found another")
	}
	self := f.Self(true)
	if err := f.Bootstrap(ctx, self); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "init federation: %v", err)
	}
	ev.Target = s.agency
	if err := s.setThreshold(ctx, th); err != nil {
		return nil, err
	}
	m, _ := f.Member(s.agency)
	return &pb.InitFederationResponse{Member: m}, nil
}

func (s *federationService) InvitePeer(ctx context.Context, req *pb.InvitePeerRequest) (*pb.InvitePeerResponse, error) {
	return unary(ctx, s.audit, req, s.invitePeer)
}

func (s *federationService) invitePeer(ctx context.Context, req *pb.InvitePeerRequest, ev *Event) (*pb.InvitePeerResponse, error) {
	ev.Target = req.GetAgency()
	if err := record.ValidateAgencyID(req.GetAgency()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "agency: %v", err)
	}
	if req.GetAddress() == "" {
		return nil, status.Error(codes.InvalidArgument, "address: the invited node's host:port is needed")
	}
	if err := record.ValidateAddress("address", req.GetAddress()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	cert, err := pki.ParseCertPEM(req.GetCaCert())
	if err != nil || !cert.IsCA {
		return nil, status.Errorf(codes.InvalidArgument, "ca_cert: not a PEM CA certificate: %v", err)
	}
	if len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != req.Agency {
		return nil, status.Errorf(codes.InvalidArgument, "ca_cert: names agency %v, not %s", cert.Subject.Organization, req.Agency)
	}
	f := s.fed
	if !f.Joined() {
		return nil, status.Error(codes.FailedPrecondition, "this node is in no federation: run `watchfed federation init` first")
	}
	m := &pb.Member{Agency: req.Agency, Address: req.Address, CaCert: req.CaCert, Voter: req.Voter, InvitedAt: timestamppb.New(s.now())}
	var proposal *pb.Proposal
	if s.gov != nil && s.gov.GovernanceActive() {
		if proposal, err = s.proposeInvite(ctx, m); err != nil {
			return nil, err
		}
		ev.Detail = proposalDetail(proposal)
	} else if _, err := f.Invite(ctx, m); err != nil {
		// Governance may have been activated meanwhile (the FSM refused
		// the unsigned change, changing nothing): propose instead.
		if s.gov == nil || !s.gov.GovernanceActive() {
			return nil, err
		}
		if proposal, err = s.proposeInvite(ctx, m); err != nil {
			return nil, err
		}
		ev.Detail = proposalDetail(proposal)
	}
	members, err := f.Members()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "registry: %v", err)
	}
	inv := &pb.Invitation{Agency: req.Agency, Voter: req.Voter}
	for _, mm := range members {
		if mm.Joined {
			inv.Members = append(inv.Members, &pb.Member{Agency: mm.Agency, Address: mm.Address, CaCert: mm.CaCert, Voter: mm.Voter, Joined: true})
		}
	}
	return &pb.InvitePeerResponse{Invitation: inv, Proposal: proposal}, nil
}

func (s *federationService) RemovePeer(ctx context.Context, req *pb.RemovePeerRequest) (*pb.RemovePeerResponse, error) {
	return unary(ctx, s.audit, req, s.removePeer)
}

func (s *federationService) removePeer(ctx context.Context, req *pb.RemovePeerRequest, ev *Event) (*pb.RemovePeerResponse, error) {
	ev.Target = req.GetAgency()
	f := s.fed
	if _, err := f.Member(req.GetAgency()); err != nil {
		return nil, status.Errorf(codes.NotFound, "%s is not a member", req.GetAgency())
	}
	if s.gov != nil && s.gov.GovernanceActive() {
		p, err := s.proposeRemoval(ctx, req.Agency)
		if err != nil {
			return nil, err
		}
		ev.Detail = proposalDetail(p)
		return &pb.RemovePeerResponse{Proposal: p}, nil
	}
	if _, err := f.Remove(ctx, req.Agency); err != nil {
		if s.gov == nil || !s.gov.GovernanceActive() {
			return nil, err
		}
		p, err := s.proposeRemoval(ctx, req.Agency) // activated meanwhile, as for an invitation
		if err != nil {
			return nil, err
		}
		ev.Detail = proposalDetail(p)
		return &pb.RemovePeerResponse{Proposal: p}, nil
	}
	return &pb.RemovePeerResponse{}, nil
}

func (s *federationService) TransferLeadership(ctx context.Context, req *pb.TransferLeadershipRequest) (*pb.TransferLeadershipResponse, error) {
	return unary(ctx, s.audit, req, s.transferLeadership)
}

func (s *federationService) transferLeadership(ctx context.Context, req *pb.TransferLeadershipRequest, ev *Event) (*pb.TransferLeadershipResponse, error) {
	ev.Target = req.GetTo()
	rep := s.fed
	if !rep.IsLeader() {
		id, _ := rep.Leader()
		return nil, status.Errorf(codes.FailedPrecondition, "this node does not lead; run this on the leader (%s)", id)
	}
	var to, addr string
	if req.GetTo() != "" {
		m, err := rep.Member(req.To)
		if err != nil {
			return nil, status.Errorf(codes.NotFound, "%s is not a member", req.To)
		}
		to, addr = m.Agency, m.Address
	}
	if err := rep.TransferLeadership(to, addr); err != nil {
		return nil, status.Errorf(codes.Unavailable, "leadership transfer: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if id, _ := s.fed.Leader(); id != "" && id != s.agency {
			return &pb.TransferLeadershipResponse{Leader: id}, nil
		}
		select {
		case <-wctx.Done():
			return nil, status.Error(codes.DeadlineExceeded, "no new leader within 10s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *federationService) GetStatus(ctx context.Context, req *pb.GetStatusRequest) (*pb.GetStatusResponse, error) {
	return unary(ctx, s.audit, req, s.getStatus)
}

func (s *federationService) getStatus(ctx context.Context, req *pb.GetStatusRequest, ev *Event) (*pb.GetStatusResponse, error) {
	out := s.fed.Status()
	if req.GetWithStateHash() {
		idx, sum, err := s.fed.StateHash()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "%v", err)
		}
		out.StateHashIndex, out.StateHash = idx, sum
	}
	if s.anchors != nil {
		// Status answers even when the anchors cannot be read (audit
		// verify says why).
		if own, err := s.anchors.Own(); err == nil {
			if last := anchor.Last(own); last.Seq > 0 {
				out.AuditAnchoredSeq, out.AuditAnchorWhere = last.Seq, last.Where
				out.AuditAnchoredAt = timestamppb.New(last.At)
			}
		}
	}
	return out, nil
}

func (s *federationService) ListPeers(ctx context.Context, req *pb.ListPeersRequest) (*pb.ListPeersResponse, error) {
	return unary(ctx, s.audit, req, s.listPeers)
}

func (s *federationService) listPeers(ctx context.Context, _ *pb.ListPeersRequest, ev *Event) (*pb.ListPeersResponse, error) {
	peers, err := s.peers.Poll(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "registry: %v", err)
	}
	return &pb.ListPeersResponse{Peers: peers}, nil
}

// SaveSnapshot streams a tar of consistent copies of node.db and fsm.db and
// the node's keys. The keys make the backup as secret as the node itself.
func (s *federationService) SaveSnapshot(_ *pb.SaveSnapshotRequest, stream pb.FederationService_SaveSnapshotServer) error {
	return streaming(stream.Context(), s.audit, func(*Event) error { return s.saveSnapshot(stream) })
}

func (s *federationService) saveSnapshot(stream pb.FederationService_SaveSnapshotServer) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(s.backup(pw)) }()
	buf := make([]byte, 1<<20)
	for {
		n, err := io.ReadFull(pr, buf)
		if n > 0 {
			if serr := stream.Send(&pb.SaveSnapshotResponse{Chunk: buf[:n]}); serr != nil {
				pr.CloseWithError(serr)
				return serr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return status.Errorf(codes.Internal, "backup: %v", err)
		}
	}
}
