package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/auth"
	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/node/record"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
)

func (f *federation) close() error {
	err := f.rep.Close()
	if cerr := f.trans.Close(); err == nil {
		err = cerr
	}
	return err
}

// federationService is the operators' API for membership and status.
type federationService struct {
	pb.UnimplementedFederationServiceServer
	n *Node
}

func (s *federationService) InitFederation(ctx context.Context, _ *pb.InitFederationRequest) (*pb.InitFederationResponse, error) {
	f := s.n.fed
	if f.invite != nil {
		return nil, status.Error(codes.FailedPrecondition, "this node was started to join a federation (--join); it cannot found another")
	}
	self := f.self(true)
	if err := f.rep.Bootstrap(ctx, self); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "init federation: %v", err)
	}
	draftFrom(ctx).ev.Target = s.n.cfg.Agency
	m, _ := f.rep.Member(s.n.cfg.Agency)
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
	if !f.joined() {
		return nil, status.Error(codes.FailedPrecondition, "this node is in no federation: run `watchfed federation init` first")
	}
	m := &pb.Member{Agency: req.Agency, Address: req.Address, CaCert: req.CaCert, Voter: req.Voter, InvitedAt: timestamppb.New(s.n.now())}
	if _, err := f.apply(ctx, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: m}}}}); err != nil {
		return nil, applyError(err)
	}
	members, err := f.rep.Members()
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
	if _, err := f.rep.Member(req.GetAgency()); err != nil {
		return nil, status.Errorf(codes.NotFound, "%s is not a member", req.GetAgency())
	}
	if _, err := f.apply(ctx, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{Change: &peerpb.MemberChange_Remove{Remove: req.Agency}}}}); err != nil {
		return nil, applyError(err)
	}
	if err := f.onLeader(ctx, func(ctx context.Context) error {
		return f.rep.RemoveServer(ctx, req.Agency)
	}); err != nil {
		return nil, status.Errorf(codes.Unavailable, "%v", err)
	}
	return &pb.RemovePeerResponse{}, nil
}

// onLeader runs a raft configuration change; only the leader can, so a
// follower asks the operator to run it there.
func (f *federation) onLeader(ctx context.Context, fn func(context.Context) error) error {
	if !f.rep.IsLeader() {
		id, _ := f.rep.Leader()
		return fmt.Errorf("run this on the leader (%s)", id)
	}
	return fn(ctx)
}

func (s *federationService) TransferLeadership(ctx context.Context, req *pb.TransferLeadershipRequest) (*pb.TransferLeadershipResponse, error) {
	draftFrom(ctx).ev.Target = req.GetTo()
	rep := s.n.fed.rep
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
		if id, _ := s.n.fed.rep.Leader(); id != "" && id != s.n.cfg.Agency {
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
	out := s.n.fed.status()
	if req.GetWithStateHash() {
		idx, sum, err := s.n.fed.rep.StateHash()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "%v", err)
		}
		out.StateHashIndex, out.StateHash = idx, sum
	}
	return out, nil
}

func (f *federation) status() *pb.GetStatusResponse {
	st := f.rep.Status()
	out := &pb.GetStatusResponse{
		Id: st.ID, Agency: f.n.cfg.Agency, Role: st.Role, Term: st.Term, LastIndex: st.LastIndex,
		CommitIndex: st.CommitIndex, AppliedIndex: st.Applied, Leader: st.Leader, SnapshotIndex: st.SnapshotIndex,
	}
	out.PolicyError, _ = f.n.policyState()
	if ok, _ := f.rep.Bootstrapped(); !ok {
		out.Role = "none"
	}
	if !st.LastContact.IsZero() {
		out.LastContact = timestamppb.New(st.LastContact)
	}
	return out
}

func (s *federationService) ListPeers(ctx context.Context, _ *pb.ListPeersRequest) (*pb.ListPeersResponse, error) {
	f := s.n.fed
	members, err := f.rep.Members()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "registry: %v", err)
	}
	voter, _ := f.rep.Voters()
	peers := make([]*pb.Peer, len(members))
	statuses := make([]*pb.GetStatusResponse, len(members))
	done := make(chan struct{}, len(members))
	for i, m := range members {
		go func() {
			defer func() { done <- struct{}{} }()
			if m.Agency == s.n.cfg.Agency {
				statuses[i] = f.status()
				return
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			conn, err := f.dial(m.Address)
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

func applyError(err error) error {
	switch {
	case errors.Is(err, replication.ErrRejected):
		return status.Error(codes.FailedPrecondition, err.Error())
	case status.Code(err) != codes.Unknown:
		return err
	}
	return status.Errorf(codes.Unavailable, "federation: %v", err)
}

// peerService is node-to-node.
type peerService struct {
	peerpb.UnimplementedPeerServiceServer
	n *Node
}

func (s *peerService) Forward(ctx context.Context, req *peerpb.ForwardRequest) (*peerpb.ForwardResponse, error) {
	f := s.n.fed
	if err := f.authorizeNode(ctx); err != nil {
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	// A member may only forward commands in its own name: publications it
	// signed (the FSM checks the signature) and no membership changes.
	var cmd peerpb.Command
	if err := proto.Unmarshal(req.Command, &cmd); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "command: %v", err)
	}
	id, _ := auth.FromContext(ctx)
	switch c := cmd.Command.(type) {
	case *peerpb.Command_Publication:
		if c.Publication.GetOrigin() != id.Agency {
			return nil, status.Errorf(codes.PermissionDenied, "%s cannot publish for %s", id.Agency, c.Publication.GetOrigin())
		}
	case *peerpb.Command_MemberChange:
		// Invitations and removals come from members' operators through their
		// nodes; a join must go through Join, which checks the joiner's certificate.
		if _, isJoin := c.MemberChange.Change.(*peerpb.MemberChange_Join); isJoin {
			return nil, status.Error(codes.PermissionDenied, "joins are not forwarded; the joining node calls Join on the leader")
		}
	}
	idx, err := f.rep.ApplyRaw(ctx, req.Command)
	if errors.Is(err, replication.ErrNotLeader) {
		return nil, status.Error(codes.Unavailable, "not the leader")
	}
	if err != nil {
		return nil, applyError(err)
	}
	return &peerpb.ForwardResponse{Index: idx}, nil
}

func (s *peerService) GetNodeStatus(ctx context.Context, _ *peerpb.GetNodeStatusRequest) (*peerpb.GetNodeStatusResponse, error) {
	if err := s.n.fed.authorizeNode(ctx); err != nil {
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	return &peerpb.GetNodeStatusResponse{Status: s.n.fed.status()}, nil
}

// Join completes an invited agency's membership. The caller's certificate
// must be a node certificate of that agency, issued by the CA the
// invitation registered.
func (s *peerService) Join(ctx context.Context, req *peerpb.JoinRequest) (*peerpb.JoinResponse, error) {
	f := s.n.fed
	id, _ := auth.FromContext(ctx)
	m := req.GetMember()
	if m.GetAgency() != id.Agency || !id.Has(pki.RoleNode) {
		return nil, status.Errorf(codes.PermissionDenied, "certificate %s cannot join as %s", id, m.GetAgency())
	}
	invited, err := f.rep.Member(m.Agency)
	if err != nil {
		return nil, status.Errorf(codes.PermissionDenied, "%s was not invited", m.Agency)
	}
	if invited.Joined {
		return &peerpb.JoinResponse{Index: invited.JoinedIndex}, nil
	}
	if !f.rep.IsLeader() {
		// The joiner tries every member of its invitation; one of them leads.
		id, _ := f.rep.Leader()
		return nil, status.Errorf(codes.Unavailable, "not the leader (the leader is %s)", id)
	}
	join := proto.Clone(m).(*pb.Member)
	join.Voter = invited.Voter
	if join.Address == "" {
		join.Address = invited.Address
	}
	idx, err := f.rep.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: join}}}})
	if err != nil {
		return nil, applyError(err)
	}
	if err := f.rep.AddMember(ctx, join); err != nil {
		return nil, status.Errorf(codes.Unavailable, "%v", err)
	}
	s.n.log.Info("member joined", "agency", join.Agency, "voter", join.Voter, "index", idx)
	return &peerpb.JoinResponse{Index: idx}, nil
}

// joinLoop asks the invitation's members to let this node in, following
// redirects to the leader, until it is a joined member.
func (f *federation) joinLoop(ctx context.Context) {
	targets := []string{}
	for _, m := range f.invite.Members {
		targets = append(targets, m.Address)
	}
	for !f.joined() {
		for _, addr := range targets {
			err := f.joinVia(ctx, addr)
			if err == nil {
				break
			}
			f.n.log.Info("join attempt", "via", addr, "err", err)
		}
		// Wait for the registry to show this node joined, then check again.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		for !f.joined() && wctx.Err() == nil {
			select {
			case <-f.rep.Changed():
			case <-wctx.Done():
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
	f.n.log.Info("joined the federation", "agency", f.n.cfg.Agency)
}

func (f *federation) joinVia(ctx context.Context, addr string) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := f.dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = peerpb.NewPeerServiceClient(conn).Join(cctx, &peerpb.JoinRequest{Member: f.self(f.invite.Voter)})
	return err
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
