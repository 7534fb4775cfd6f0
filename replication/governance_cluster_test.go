package replication_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/replication/replicationtest"
)

// signedAct is agency's governance act signed with key, as a command.
func signedAct(t *testing.T, agency string, key ed25519.PrivateKey, act *peerpb.GovernanceAct) *peerpb.Command {
	t.Helper()
	return signedActAt(t, agency, key, act, time.Now())
}

func signedActAt(t *testing.T, agency string, key ed25519.PrivateKey, act *peerpb.GovernanceAct, at time.Time) *peerpb.Command {
	t.Helper()
	act.Agency, act.SignedAt = agency, timestamppb.New(at)
	data, err := proto.Marshal(act)
	if err != nil {
		t.Fatal(err)
	}
	return &peerpb.Command{Command: &peerpb.Command_Governance{Governance: &peerpb.Governance{
		Agency: agency, Act: data, Signature: ed25519.Sign(key, replication.GovernanceMessage(agency, data))}}}
}

// TestForgedApprovalRefusedByEveryFSM: on a group of three at protocol 3, C
// proposes removing B. Approvals a hostile leader puts into the log itself
// — in A's name signed with C's key, in A's name signed with a stranger's
// key, A's own dated past the proposal's expiry — are refused by every member's FSM alike: the proposal stays pending
// with C's approval alone and B stays, on every member, at the same state
// hash. A's own approval then applies the removal everywhere.
func TestForgedApprovalRefusedByEveryFSM(t *testing.T) {
	c := cluster(t, replicationtest.Options{})
	ctx := ctxT(t)
	for _, m := range c.Members {
		reg, err := leader(t, c).Rep.Member(m.ID)
		if err != nil {
			t.Fatal(err)
		}
		a := &peerpb.ProtocolAnnouncement{Agency: m.ID, JoinedIndex: reg.JoinedIndex, Sequence: 1, Versions: []uint32{1, 2, replication.ProtocolGovernance}}
		a.Signature = ed25519.Sign(m.Sign, replication.AnnouncementMessage(a))
		if _, err := c.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_ProtocolAnnouncement{ProtocolAnnouncement: a}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_ProtocolActivation{ProtocolActivation: &peerpb.ProtocolActivation{Version: replication.ProtocolGovernance}}}); err != nil {
		t.Fatal(err)
	}
	a, b, cc := c.Members[0], c.Members[1], c.Members[2]
	idx, err := c.Apply(ctx, signedAct(t, cc.ID, cc.Sign, &peerpb.GovernanceAct{Act: &peerpb.GovernanceAct_Propose{Propose: &peerpb.Proposal{Change: &peerpb.Proposal_Remove{Remove: b.ID}}}}))
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatUint(idx, 10)
	approve := &peerpb.GovernanceAct{Act: &peerpb.GovernanceAct_Approve{Approve: id}}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	// The last is A's own, dated beyond the proposal's expiry: the leader's
	// time on the entry travels to every member, which refuses it alike.
	for name, cmd := range map[string]*peerpb.Command{
		"signed with C's key":          signedAct(t, a.ID, cc.Sign, proto.Clone(approve).(*peerpb.GovernanceAct)),
		"signed with a stranger's key": signedAct(t, a.ID, stranger, proto.Clone(approve).(*peerpb.GovernanceAct)),
		"dated 8 days ahead":           signedActAt(t, a.ID, a.Sign, proto.Clone(approve).(*peerpb.GovernanceAct), time.Now().Add(8*24*time.Hour)),
	} {
		last, err := c.Apply(ctx, cmd)
		if !errors.Is(err, replication.ErrRejected) {
			t.Fatalf("approval in A's name %s: %v; want rejected", name, err)
		}
		waitApplied(t, c, last)
		for _, m := range c.Members {
			ps, _, err := m.Rep.Proposals()
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(ps, func(p *peerpb.ProposalState) bool { return p.Id == id })
			if i < 0 || ps[i].State != replication.ProposalPending || !slices.Equal(ps[i].Approvals, []string{cc.ID}) {
				t.Fatalf("%s after an approval in A's name %s: %v; want pending with C's approval alone", m.ID, name, ps)
			}
			if _, err := m.Rep.Member(b.ID); err != nil {
				t.Fatalf("%s: B removed by a forged approval", m.ID)
			}
		}
		sameStateHash(t, c)
	}
	last, err := c.Apply(ctx, signedAct(t, a.ID, a.Sign, approve))
	if err != nil {
		t.Fatal(err)
	}
	// B itself may be out of raft before it learns the commit: A and C.
	for _, m := range []*replicationtest.Member{a, cc} {
		deadline := time.Now().Add(20 * time.Second)
		for m.Rep.Applied() < last && time.Now().Before(deadline) {
			select {
			case <-m.Rep.Changed():
			case <-time.After(100 * time.Millisecond):
			}
		}
		if _, err := m.Rep.Member(b.ID); err == nil {
			t.Fatalf("%s: B still a member after A's approval", m.ID)
		}
	}
}
