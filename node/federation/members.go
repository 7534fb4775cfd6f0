package federation

import (
	"context"
	"crypto/ed25519"
	"io"
	"time"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
)

// The operators' calls on membership, leadership and status, as the public
// FederationService makes them. Each goes through the log or the replicator.

// Bootstrap founds a federation with this node as its only member.
func (f *Federation) Bootstrap(ctx context.Context, self *pb.Member) error {
	return f.rep.Bootstrap(ctx, self, ed25519.Sign(f.keys.Signing, replication.JoinMessage(self)))
}

// Invite registers an agency (its CA and address) in the member registry.
// Its error is a gRPC status (ApplyError).
func (f *Federation) Invite(ctx context.Context, m *pb.Member) (uint64, error) {
	idx, err := f.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: m}}}})
	if err != nil {
		return 0, ApplyError(err)
	}
	return idx, nil
}

// Remove takes an agency out of the member registry; the leader then takes
// its node out of raft's configuration (replication/reconcile.go), which
// Remove waits for, as this member sees the configuration, until ctx ends or
// removeWait passed. Its error is a gRPC status (ApplyError).
func (f *Federation) Remove(ctx context.Context, agency string) (uint64, error) {
	idx, err := f.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{Change: &peerpb.MemberChange_Remove{Remove: agency}}}})
	if err != nil {
		return 0, ApplyError(err)
	}
	wctx, cancel := context.WithTimeout(ctx, removeWait)
	defer cancel()
	if err := f.rep.WaitConfiguration(wctx, func(s map[string]bool) bool { _, in := s[agency]; return !in }); err != nil {
		// The registry decided; the leader keeps reconciling.
		f.log.Warn("removed from the registry, not yet from raft's configuration", "agency", agency, "err", err)
	}
	return idx, nil
}

// removeWait bounds how long Remove waits for raft's configuration to follow.
const removeWait = 10 * time.Second

// Member is one agency's registry entry; Members the whole registry.
func (f *Federation) Member(agency string) (*pb.Member, error) { return f.rep.Member(agency) }
func (f *Federation) Members() ([]*pb.Member, error)           { return f.rep.Members() }

// FormerMember reports whether agency was a member and is no longer one
// (it left or was removed under protocol 3: its id stays bound).
func (f *Federation) FormerMember(agency string) bool {
	if _, err := f.rep.Member(agency); err == nil {
		return false
	}
	return f.rep.Bound(agency)
}

// IsLeader, Leader, TransferLeadership and Voters are the replicator's.
func (f *Federation) IsLeader() bool                   { return f.rep.IsLeader() }
func (f *Federation) Leader() (id, addr string)        { return f.rep.Leader() }
func (f *Federation) Voters() (map[string]bool, error) { return f.rep.Voters() }
func (f *Federation) TransferLeadership(id, addr string) error {
	return f.rep.TransferLeadership(id, addr)
}

// StateHash hashes the replicated state at the applied index.
func (f *Federation) StateHash() (uint64, []byte, error) { return f.rep.StateHash() }

// RaftStatus is raft's counters as this member sees them.
func (f *Federation) RaftStatus() replication.Status { return f.rep.Status() }

// LastIndex is the last index in this node's raft log.
func (f *Federation) LastIndex() uint64 { return f.rep.Status().LastIndex }

// BackupState writes a consistent copy of the replicated state (fsm.db).
func (f *Federation) BackupState(w io.Writer) (int64, error) { return f.rep.Backup(w) }

// PeerStatus asks a member's node for its status (PeerService.GetNodeStatus),
// over the connection kept to it.
func (f *Federation) PeerStatus(ctx context.Context, addr string) (*pb.GetStatusResponse, error) {
	pc, err := f.peer(addr)
	if err != nil {
		return nil, err
	}
	resp, err := peerClient{pc.conn}.GetNodeStatus(ctx, &peerpb.GetNodeStatusRequest{})
	if err != nil {
		return nil, err
	}
	return resp.Status, nil
}
