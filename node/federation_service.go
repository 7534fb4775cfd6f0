package node

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/federation"
	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/node/record"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// federationService is the operators' API for membership and status.
type federationService struct {
	pb.UnimplementedFederationServiceServer
	n *Node
}

func (s *federationService) InitFederation(ctx context.Context, _ *pb.InitFederationRequest) (*pb.InitFederationResponse, error) {
	f := s.n.fed
	if f.Invitation() != nil {
		return nil, status.Error(codes.FailedPrecondition, "this node was started to join a federation (--join); it cannot found another")
	}
	self := f.Self(true)
	if err := f.Replicator().Bootstrap(ctx, self); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "init federation: %v", err)
	}
	draftFrom(ctx).ev.Target = s.n.cfg.Agency
	m, _ := f.Replicator().Member(s.n.cfg.Agency)
	return &pb.InitFederationResponse{Member: m}, nil
}

func (s *federationService) InvitePeer(ctx context.Context, req *pb.InvitePeerRequest) (*pb.InvitePeerResponse, error) {
	draftFrom(ctx).ev.Target = req.GetAgency()
	if err := record.ValidateAgencyID(req.GetAgency()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "agency: %v", err)
	}
	if req.GetAddress() == "" {
		return nil, status.Error(codes.InvalidArgument, "address: the invited node's host:port is needed")
	}
	cert, err := pki.ParseCertPEM(req.GetCaCert())
	if err != nil || !cert.IsCA {
		return nil, status.Errorf(codes.InvalidArgument, "ca_cert: not a PEM CA certificate: %v", err)
	}
	if len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != req.Agency {
		return nil, status.Errorf(codes.InvalidArgument, "ca_cert: names agency %v, not %s", cert.Subject.Organization, req.Agency)
	}
	f := s.n.fed
	if !f.Joined() {
		return nil, status.Error(codes.FailedPrecondition, "this node is in no federation: run `watchfed federation init` first")
	}
	m := &pb.Member{Agency: req.Agency, Address: req.Address, CaCert: req.CaCert, Voter: req.Voter, InvitedAt: timestamppb.New(s.n.now())}
	if _, err := f.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: m}}}}); err != nil {
		return nil, federation.ApplyError(err)
	}
	members, err := f.Replicator().Members()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "registry: %v", err)
	}
	inv := &pb.Invitation{Agency: req.Agency, Voter: req.Voter}
	for _, mm := range members {
		if mm.Joined {
			inv.Members = append(inv.Members, &pb.Member{Agency: mm.Agency, Address: mm.Address, CaCert: mm.CaCert, Voter: mm.Voter, Joined: true})
		}
	}
	return &pb.InvitePeerResponse{Invitation: inv}, nil
}

func (s *federationService) RemovePeer(ctx context.Context, req *pb.RemovePeerRequest) (*pb.RemovePeerResponse, error) {
	draftFrom(ctx).ev.Target = req.GetAgency()
	f := s.n.fed
	if _, err := f.Replicator().Member(req.GetAgency()); err != nil {
		return nil, status.Errorf(codes.NotFound, "%s is not a member", req.GetAgency())
	}
	if _, err := f.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{Change: &peerpb.MemberChange_Remove{Remove: req.Agency}}}}); err != nil {
		return nil, federation.ApplyError(err)
	}
	// Only the leader changes raft's configuration: a follower asks the
	// operator to run this there.
	if !f.Replicator().IsLeader() {
		id, _ := f.Replicator().Leader()
		return nil, status.Errorf(codes.Unavailable, "run this on the leader (%s)", id)
	}
	if err := f.Replicator().RemoveServer(ctx, req.Agency); err != nil {
		return nil, status.Errorf(codes.Unavailable, "%v", err)
	}
	return &pb.RemovePeerResponse{}, nil
}

func (s *federationService) TransferLeadership(ctx context.Context, req *pb.TransferLeadershipRequest) (*pb.TransferLeadershipResponse, error) {
	draftFrom(ctx).ev.Target = req.GetTo()
	rep := s.n.fed.Replicator()
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
		if id, _ := s.n.fed.Replicator().Leader(); id != "" && id != s.n.cfg.Agency {
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
	out := s.n.fed.Status()
	if req.GetWithStateHash() {
		idx, sum, err := s.n.fed.Replicator().StateHash()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "%v", err)
		}
		out.StateHashIndex, out.StateHash = idx, sum
	}
	return out, nil
}

func (s *federationService) ListPeers(ctx context.Context, _ *pb.ListPeersRequest) (*pb.ListPeersResponse, error) {
	f := s.n.fed
	members, err := f.Replicator().Members()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "registry: %v", err)
	}
	voter, _ := f.Replicator().Voters()
	peers := make([]*pb.Peer, len(members))
	statuses := make([]*pb.GetStatusResponse, len(members))
	done := make(chan struct{}, len(members))
	for i, m := range members {
		go func() {
			defer func() { done <- struct{}{} }()
			if m.Agency == s.n.cfg.Agency {
				statuses[i] = f.Status()
				return
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			conn, err := f.Dial(m.Address)
			if err != nil {
				return
			}
			defer conn.Close()
			if resp, err := peerpb.NewPeerServiceClient(conn).GetNodeStatus(cctx, &peerpb.GetNodeStatusRequest{}); err == nil {
				statuses[i] = resp.Status
			}
		}()
	}
	for range members {
		<-done
	}
	var leaderLast uint64
	for _, st := range statuses {
		if st != nil && st.Role == "leader" {
			leaderLast = st.LastIndex
		}
	}
	for i, m := range members {
		p := &pb.Peer{Id: m.Agency, Agency: m.Agency, Address: m.Address, Voter: voter[m.Agency], Role: "unreachable"}
		if !m.Joined {
			p.Role = "invited"
		}
		if st := statuses[i]; st != nil {
			p.Reachable, p.Role, p.AppliedIndex, p.LastContact = true, st.Role, st.AppliedIndex, st.LastContact
			if leaderLast > st.AppliedIndex {
				p.Lag = leaderLast - st.AppliedIndex
			}
		}
		peers[i] = p
	}
	return &pb.ListPeersResponse{Peers: peers}, nil
}

// WriteInvitation stores the invitation a joining node starts with.
func WriteInvitation(dataDir string, inv *pb.Invitation) error {
	data, err := protojson.Marshal(inv)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dataDir, InvitationFile), data, 0o600)
}
