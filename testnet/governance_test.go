package testnet

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/watchfed/watchfed/node"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
)

// TestLeaveOnItsOwn: under protocol 3 an agency leaves at once on its own
// word; the others no longer list it, raft's configuration follows, each
// remaining node audited its departure, and the two left still share, also
// after a restart with policy files that still name the departed agency.
func TestLeaveOnItsOwn(t *testing.T) {
	l := startLocal(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	de, fr, nl := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	waitProtocol(t, l, replication.ProtocolGovernance)
	// NL does not lead (TestLeaderLeaves has a leader leave).
	leaderOtherThan(ctx, t, l, nl, de)
	if err := nl.call(ctx, func(c pb.FederationServiceClient) error {
		_, err := c.LeaveFederation(ctx, &pb.LeaveFederationRequest{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	waitLeft(ctx, t, nl, de, fr)
	rec := add(t, de, "Written After NL Left")
	waitFor(t, "FR takes in DE's entry", func() bool { _, ok := shared(t, fr)[rec.Record.Id]; return ok })
	// DE's policy file still names NL, as partners' files do until their
	// operators edit them: a departed member does not make it invalid, at a
	// reload or a restart (where a refused file would leave DE sharing
	// nothing: the cause of this test's old flake, when DE first read its
	// file naming FR and NL only after NL had left).
	if err := de.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := l.Restart(ctx, de); err != nil {
		t.Fatal(err)
	}
	again := add(t, de, "Written After DE Restarted")
	waitFor(t, "FR takes in DE's entry after DE's restart", func() bool { _, ok := shared(t, fr)[again.Record.Id]; return ok })
	var st *pb.GetStatusResponse
	if err := de.call(ctx, func(c pb.FederationServiceClient) (err error) {
		st, err = c.GetStatus(ctx, &pb.GetStatusRequest{})
		return err
	}); err != nil || st.PolicyError != "" {
		t.Fatalf("DE's policy after NL left: %v %q; want it in force", err, st.GetPolicyError())
	}
}

// TestLeaderLeaves: the leader's own agency leaves with `watchfed
// federation leave`; the others elect a leader among themselves, the
// registry and raft's configuration drop the departed agency, writes go on
// between those left, and nothing published after the leave reaches the
// departed node (no byte of it in its data directory).
func TestLeaderLeaves(t *testing.T) {
	l := startLocal(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waitProtocol(t, l, replication.ProtocolGovernance)
	gone := l.leader(ctx)
	var left []*LocalNode
	for _, ln := range l.Nodes {
		if ln != gone {
			left = append(left, ln)
		}
	}
	a, b := left[0], left[1]
	before := add(t, a, "Shared Before The Leader Left")
	waitFor(t, gone.Agency+" takes in "+a.Agency+"'s entry", func() bool { _, ok := shared(t, gone)[before.Record.Id]; return ok })

	if code, out := cli(t, ctx, watchfedAt(t, ""), gone.Member, "federation", "leave"); code != 0 {
		t.Fatalf("federation leave on the leader %s: exit %d: %s", gone.Agency, code, out)
	}
	waitLeft(ctx, t, gone, a, b)
	waitFor(t, "a new leader among "+a.Agency+" and "+b.Agency, func() bool { return role(ctx, a) == "leader" || role(ctx, b) == "leader" })

	afterA := add(t, a, "Secret Published After The Leader Left")
	afterB := add(t, b, "Second Secret After The Leader Left")
	waitFor(t, b.Agency+" takes in "+a.Agency+"'s entry", func() bool { _, ok := shared(t, b)[afterA.Record.Id]; return ok })
	waitFor(t, a.Agency+" takes in "+b.Agency+"'s entry", func() bool { _, ok := shared(t, a)[afterB.Record.Id]; return ok })
	got := shared(t, gone)
	for _, id := range []string{afterA.Record.Id, afterB.Record.Id} {
		if _, ok := got[id]; ok {
			t.Errorf("the departed %s reads %s, published after it left", gone.Agency, id)
		}
	}
	if err := gone.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Secret Published After The Leader Left", "Second Secret After The Leader Left"} {
		if hit := grep(t, gone.Dir, name); hit != "" {
			t.Errorf("the departed leader's data holds %q, published after it left, in %s", name, hit)
		}
	}
}

// role is a node's raft role as it says ("" if it does not answer).
func role(ctx context.Context, ln *LocalNode) string {
	var st *pb.GetStatusResponse
	_ = ln.call(ctx, func(c pb.FederationServiceClient) (err error) {
		st, err = c.GetStatus(ctx, &pb.GetStatusRequest{})
		return err
	})
	return st.GetRole()
}

// waitLeft waits until every one of left no longer lists gone and lists
// only voters, and its raft configuration is those voters (the registry
// and raft's configuration dropped gone), and checks that each audited
// its departure.
func waitLeft(ctx context.Context, t *testing.T, gone *LocalNode, left ...*LocalNode) {
	t.Helper()
	for _, ln := range left {
		waitFor(t, gone.Agency+" gone from "+ln.Agency+"'s peers, voters and all", func() bool {
			var peers []*pb.Peer
			if err := ln.call(ctx, func(c pb.FederationServiceClient) error {
				resp, err := c.ListPeers(ctx, &pb.ListPeersRequest{})
				peers = resp.GetPeers()
				return err
			}); err != nil {
				return false
			}
			if len(peers) != len(left) {
				return false
			}
			for _, p := range peers {
				if p.Agency == gone.Agency || !p.Voter {
					return false
				}
			}
			servers, err := ln.node.RaftServers()
			if err != nil || len(servers) != len(left) {
				return false
			}
			for _, o := range left {
				if !servers[o.Agency] {
					return false
				}
			}
			return true
		})
		// The audit event comes with the node's take-in of the leave
		// entry (node/federation/receive.go), which follows raft's apply
		// that the registry shows at once: it may come a little later.
		audit := pb.NewAuditServiceClient(conn(t, ln))
		waitFor(t, ln.Agency+"'s audit log holds membership.left of "+gone.Agency, func() bool {
			resp, err := audit.ListAuditEvents(ctx, &pb.ListAuditEventsRequest{Limit: 1000})
			if err != nil {
				return false
			}
			for _, e := range resp.Events {
				if e.Action == "membership.left" && e.Agency == gone.Agency && strings.Contains(e.Detail, "left the federation") {
					return true
				}
			}
			return false
		})
	}
}

// TestRecoverThenRemoveLostMember: the documented disaster path with three
// agencies. Every node is lost; FR's survives and starts once with
// --recover, leading alone. Its removal of NL (gone for good) waits for
// another deciding agency: DE restores its node from its backup, rejoins
// the recovered federation, and its operator's approval removes NL from the
// registry and raft's configuration; the two share again.
func TestRecoverThenRemoveLostMember(t *testing.T) {
	l := startLocal(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	de, fr, nl := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	waitProtocol(t, l, replication.ProtocolGovernance)
	before := add(t, de, "Shared Before The Disaster")
	waitFor(t, "FR takes in DE's entry", func() bool { _, ok := shared(t, fr)[before.Record.Id]; return ok })
	backup := backupOf(t, de)
	if err := l.Close(); err != nil { // every node down; DE's and NL's disks lost
		t.Fatal(err)
	}
	wipe(t, de.Member)
	l.opts.Recover = true
	if err := l.Restart(ctx, fr); err != nil {
		t.Fatal(err)
	}
	l.opts.Recover = false
	waitFor(t, "FR leads alone", func() bool { return role(ctx, fr) == "leader" })
	var p *pb.Proposal
	if err := fr.call(ctx, func(c pb.FederationServiceClient) error {
		resp, err := c.RemovePeer(ctx, &pb.RemovePeerRequest{Agency: nl.Agency})
		p = resp.GetProposal()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if p.GetState() != "pending" || p.Approvals != 1 || p.Needed != 2 {
		t.Fatalf("FR's removal of NL after --recover: %v; want pending, 1 of 2 (DE still decides)", p)
	}

	if err := node.RestoreBackup(backup, de.Dir, de.Agency); err != nil {
		t.Fatal(err)
	}
	if err := l.Restart(ctx, de); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "DE, restored, approves the removal of NL", func() bool {
		var got *pb.Proposal
		// Each try bounded: a node not yet caught up waits for the leader.
		// An approval answers once the removal is applied and raft's
		// configuration has dropped NL (or 10 s have passed), so a try
		// may end after its approval committed: a second approval is
		// refused (the proposal is applied), and DE's record of the
		// proposal says whether DE's approval counted.
		actx, acancel := context.WithTimeout(ctx, 15*time.Second)
		defer acancel()
		err := de.call(actx, func(c pb.FederationServiceClient) error {
			resp, err := c.ApproveProposal(actx, &pb.ApproveProposalRequest{Id: p.Id})
			got = resp.GetProposal()
			return err
		})
		if err != nil {
			if got = proposalOn(ctx, de, p.Id); got == nil || !slices.Contains(got.ApprovedBy, de.Agency) {
				return false // not yet caught up with the recovered federation
			}
		}
		if got.State != "applied" {
			t.Fatalf("after DE's approval: %v; want applied", got)
		}
		return true
	})
	for _, ln := range []*LocalNode{fr, de} {
		waitFor(t, nl.Agency+" gone from "+ln.Agency+"'s registry and raft configuration", func() bool {
			servers, err := ln.node.RaftServers()
			if err != nil || len(servers) != 2 || !servers[de.Agency] || !servers[fr.Agency] {
				return false
			}
			var peers []*pb.Peer
			if err := ln.call(ctx, func(c pb.FederationServiceClient) error {
				resp, err := c.ListPeers(ctx, &pb.ListPeersRequest{})
				peers = resp.GetPeers()
				return err
			}); err != nil {
				return false
			}
			for _, p := range peers {
				if p.Agency == nl.Agency {
					return false
				}
			}
			return len(peers) == 2
		})
	}
	after := add(t, fr, "Shared After The Recovery")
	waitFor(t, "DE takes in FR's entry", func() bool { _, ok := shared(t, de)[after.Record.Id]; return ok })
}

// proposalOn is proposal id as ln's node holds it (nil if it holds none
// or does not answer).
func proposalOn(ctx context.Context, ln *LocalNode, id string) *pb.Proposal {
	var ps []*pb.Proposal
	if err := ln.call(ctx, func(c pb.FederationServiceClient) error {
		resp, err := c.ListProposals(ctx, &pb.ListProposalsRequest{All: true})
		ps = resp.GetProposals()
		return err
	}); err != nil {
		return nil
	}
	for _, p := range ps {
		if p.Id == id {
			return p
		}
	}
	return nil
}
