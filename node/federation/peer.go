package federation

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/auth"
	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/node/record"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/replication/diskfull"
)

// Status is this node's view of the federation: raft's counters, and the
// error of the last refused policy file.
func (f *Federation) Status() *pb.GetStatusResponse {
	st := f.rep.Status()
	out := &pb.GetStatusResponse{
		Id: st.ID, Agency: f.cfg.Agency, Role: st.Role, Term: st.Term, LastIndex: st.LastIndex,
		CommitIndex: st.CommitIndex, AppliedIndex: st.Applied, Leader: st.Leader, SnapshotIndex: st.SnapshotIndex,
	}
	out.PolicyError = f.policy.Error()
	pub := f.keys.Public()
	out.SigningKey, out.SealingKey = pub.Signing, pub.Sealing
	p := f.rep.Protocol()
	out.Protocol, out.ProtocolSinceIndex, out.ProtocolsSupported = p.Active, p.Since, p.Supported
	if p.Halted != nil {
		out.HaltedIndex, out.HaltedReason = p.Halted.Index, p.Halted.Reason
	}
	out.DiskFull, out.DiskFullPath = f.DiskFull()
	ck := f.rep.Checkpoints()
	out.LastCheckpointIndex, out.CheckpointDisagreements = ck.LastIndex, ck.Disagreements
	out.Diverged, out.DivergedReason = ck.Diverged != "", ck.Diverged
	if ok, _ := f.rep.Bootstrapped(); !ok {
		out.Role = "none"
	}
	if !st.LastContact.IsZero() {
		out.LastContact = timestamppb.New(st.LastContact)
	}
	return out
}

// ApplyError turns an error of committing a command into the gRPC status a
// caller sees.
func ApplyError(err error) error {
	switch {
	case errors.Is(err, replication.ErrRejected):
		return status.Error(codes.FailedPrecondition, err.Error())
	case diskfull.Is(err):
		return status.Errorf(codes.Unavailable, "%v", diskfull.Wrap("the federation log", err))
	case status.Code(err) != codes.Unknown:
		return err
	}
	return status.Errorf(codes.Unavailable, "federation: %v", err)
}

// peerService is node-to-node.
type peerService struct {
	peerpb.UnimplementedPeerServiceServer
	f *Federation
}

func (s *peerService) Forward(ctx context.Context, req *peerpb.ForwardRequest) (*peerpb.ForwardResponse, error) {
	f := s.f
	id, err := f.nodeIdentity(ctx)
	if err != nil {
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	var cmd peerpb.Command
	if err := proto.Unmarshal(req.Command, &cmd); err != nil {
		f.refused(id, "peer.forward", "undecodable command", err)
		return nil, status.Errorf(codes.InvalidArgument, "command: %v", err)
	}
	// A member's node forwards only what its agency signed (forward.go).
	if err := f.checkForwarded(&cmd, id.Agency); err != nil {
		f.refused(id, "peer.forward", forwardTarget(&cmd), err)
		return nil, status.Errorf(codes.PermissionDenied, "%s's node: %v", id.Agency, err)
	}
	idx, err := f.rep.ApplyRaw(ctx, req.Command)
	if errors.Is(err, replication.ErrNotLeader) {
		return nil, status.Error(codes.Unavailable, "not the leader")
	}
	if err != nil {
		return nil, ApplyError(err)
	}
	return &peerpb.ForwardResponse{Index: idx}, nil
}

func (s *peerService) GetNodeStatus(ctx context.Context, _ *peerpb.GetNodeStatusRequest) (*peerpb.GetNodeStatusResponse, error) {
	if err := s.f.AuthorizeNode(ctx); err != nil {
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	return &peerpb.GetNodeStatusResponse{Status: s.f.Status()}, nil
}

// Join completes an invited agency's membership. The caller's certificate
// must be a node certificate of that agency, issued by the CA the
// invitation registered.
func (s *peerService) Join(ctx context.Context, req *peerpb.JoinRequest) (*peerpb.JoinResponse, error) {
	f := s.f
	id, _ := auth.FromContext(ctx)
	m := req.GetMember()
	if m.GetAgency() != id.Agency || !id.Has(pki.RoleNode) {
		err := fmt.Errorf("certificate %s cannot join as %s", id, m.GetAgency())
		f.refused(id, "peer.join", "join "+m.GetAgency(), err)
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	invited, err := f.rep.Member(m.Agency)
	if err != nil {
		err := fmt.Errorf("%s was not invited", m.Agency)
		f.refused(id, "peer.join", "join "+m.GetAgency(), err)
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	if invited.Joined {
		return &peerpb.JoinResponse{Index: invited.JoinedIndex}, nil
	}
	if !f.rep.IsLeader() {
		// The joiner tries every member of its invitation; one of them leads.
		id, _ := f.rep.Leader()
		return nil, status.Errorf(codes.Unavailable, "not the leader (the leader is %s)", id)
	}
	if m.GetAddress() != "" {
		// The joiner's own address enters the registry every member holds.
		if err := record.ValidateAddress("member.address", m.GetAddress()); err != nil {
			f.refused(id, "peer.join", "join "+m.GetAgency(), err)
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	}
	join := proto.Clone(m).(*pb.Member)
	join.Voter = invited.Voter
	if join.Address == "" {
		join.Address = invited.Address
	}
	idx, err := f.rep.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: join}, JoinSignature: req.GetSignature()}}})
	if err != nil {
		return nil, ApplyError(err)
	}
	// The leader adds its node to raft's configuration as it reconciles
	// the configuration to the registry (replication/reconcile.go).
	s.f.log.Info("member joined", "agency", join.Agency, "voter", join.Voter, "index", idx)
	return &peerpb.JoinResponse{Index: idx}, nil
}

// joinLoop asks the invitation's members to let this node in, following
// redirects to the leader, until it is a joined member.
func (f *Federation) joinLoop(ctx context.Context) {
	targets := []string{}
	for _, m := range f.invite.Members {
		targets = append(targets, m.Address)
	}
	for !f.Joined() {
		for _, addr := range targets {
			err := f.joinVia(ctx, addr)
			if err == nil {
				break
			}
			f.log.Info("join attempt", "via", addr, "err", err)
		}
		// Wait for the registry to show this node joined, then check again.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		for !f.Joined() && wctx.Err() == nil {
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
	f.log.Info("joined the federation", "agency", f.cfg.Agency)
}

func (f *Federation) joinVia(ctx context.Context, addr string) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pc, err := f.peer(addr)
	if err != nil {
		return err
	}
	self := f.Self(f.invite.Voter)
	// The signature proves this agency holds the signing key it registers
	// (required from protocol 3).
	_, err = peerClient{pc.conn}.Join(cctx, &peerpb.JoinRequest{Member: self, Signature: ed25519.Sign(f.keys.Signing, replication.JoinMessage(self))})
	return err
}
