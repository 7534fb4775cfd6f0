package replication

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// govFSM is an FSM with members A, B and C (joined voters, each with a
// signing key the test holds), applying entries as raft hands them over.
type govFSM struct {
	t     *testing.T
	fsm   *FSM
	index uint64
	keys  map[string]ed25519.PrivateKey
	now   time.Time
	// appended is the leader's time stamped on the entries (zero: none).
	appended time.Time
}

// noPublications verifies no publication: the governance tests apply none.
func noPublications(*peerpb.Publication, []byte) (*peerpb.PublicationBody, error) {
	return nil, errors.New("no publications here")
}

func newGovFSM(t *testing.T, protocol uint32) *govFSM {
	t.Helper()
	f := newTestFSM(t, noPublications)
	g := &govFSM{t: t, fsm: f, keys: map[string]ed25519.PrivateKey{}, now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	for _, a := range []string{"A", "B", "C"} {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		g.keys[a] = priv
		m := &pb.Member{Agency: a, Address: a + ":7400", CaCert: []byte(a + " CA"), SigningKey: pub, SealingKey: []byte(a + " sealing"), Voter: true}
		g.mustApply(memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: m}}))
		g.mustApply(memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: m}}))
	}
	if err := f.db.Update(func(tx *bolt.Tx) error { return put(tx.Bucket(bucketMeta), keyProtocol, be64(uint64(protocol))) }); err != nil {
		t.Fatal(err)
	}
	return g
}

func memberChange(mc *peerpb.MemberChange) *peerpb.Command {
	return &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: mc}}
}

func (g *govFSM) apply(cmd *peerpb.Command) (uint64, error) {
	data, err := proto.Marshal(cmd)
	if err != nil {
		g.t.Fatal(err)
	}
	g.index++
	res := g.fsm.Apply(&raft.Log{Index: g.index, Type: raft.LogCommand, Data: data, AppendedAt: g.appended}).(ApplyResult)
	return g.index, res.Err
}

func (g *govFSM) mustApply(cmd *peerpb.Command) uint64 {
	g.t.Helper()
	idx, err := g.apply(cmd)
	if err != nil {
		g.t.Fatal(err)
	}
	return idx
}

// act is agency's signed act, signed with signer's key, at the test's clock.
func (g *govFSM) act(agency, signer string, a *peerpb.GovernanceAct) *peerpb.Command {
	a.Agency, a.SignedAt = agency, timestamppb.New(g.now)
	data, err := proto.Marshal(a)
	if err != nil {
		g.t.Fatal(err)
	}
	return &peerpb.Command{Command: &peerpb.Command_Governance{Governance: &peerpb.Governance{
		Agency: agency, Act: data, Signature: ed25519.Sign(g.keys[signer], GovernanceMessage(agency, data)),
	}}}
}

func propose(p *peerpb.Proposal) *peerpb.GovernanceAct {
	return &peerpb.GovernanceAct{Act: &peerpb.GovernanceAct_Propose{Propose: p}}
}
func approve(id string) *peerpb.GovernanceAct {
	return &peerpb.GovernanceAct{Act: &peerpb.GovernanceAct_Approve{Approve: id}}
}
func reject(id string) *peerpb.GovernanceAct {
	return &peerpb.GovernanceAct{Act: &peerpb.GovernanceAct_Reject{Reject: id}}
}
func removal(a string) *peerpb.Proposal {
	return &peerpb.Proposal{Change: &peerpb.Proposal_Remove{Remove: a}}
}

func (g *govFSM) members() []string {
	ms, err := g.fsm.Members()
	if err != nil {
		g.t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.Agency)
	}
	return out
}

func (g *govFSM) proposal(id uint64) *peerpb.ProposalState {
	ps, _, err := g.fsm.Proposals()
	if err != nil {
		g.t.Fatal(err)
	}
	for _, p := range ps {
		if p.Id == idString(id) {
			return p
		}
	}
	g.t.Fatalf("no proposal %d", id)
	return nil
}

// state is the registry, proposals, bindings and threshold, as bytes.
func (g *govFSM) state() string {
	var out []byte
	err := g.fsm.db.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMembers, bucketProposals, bucketBindings} {
			if b := tx.Bucket(name); b != nil {
				_ = b.ForEach(func(k, v []byte) error { out = append(append(out, k...), v...); return nil })
			}
		}
		out = append(out, tx.Bucket(bucketMeta).Get(keyThreshold)...)
		return nil
	})
	if err != nil {
		g.t.Fatal(err)
	}
	return string(out)
}

func idString(i uint64) string { return strconv.FormatUint(i, 10) }

// TestRemovalNeedsTheOthersApproval: C proposes removing B; B stays until A
// approves (1 of 2, then 2 of 2: B does not decide its own removal).
func TestRemovalNeedsTheOthersApproval(t *testing.T) {
	g := newGovFSM(t, ProtocolGovernance)
	id := g.mustApply(g.act("C", "C", propose(removal("B"))))
	ps := g.proposal(id)
	if ps.State != ProposalPending || !slices.Equal(ps.Approvals, []string{"C"}) || ps.ProposedBy != "C" {
		t.Fatalf("proposal %v; want pending, approved by C", ps)
	}
	if !slices.Contains(g.members(), "B") {
		t.Fatal("B removed on C's word alone")
	}
	if _, err := g.apply(g.act("B", "B", approve(idString(id)))); !errors.Is(err, ErrRejected) {
		t.Fatalf("B approving its own removal: %v; want rejected", err)
	}
	g.mustApply(g.act("A", "A", approve(idString(id))))
	if ps := g.proposal(id); ps.State != ProposalApplied || ps.DecidedIndex != g.index {
		t.Fatalf("proposal %v; want applied at %d", ps, g.index)
	}
	if got := g.members(); !slices.Equal(got, []string{"A", "C"}) {
		t.Fatalf("members %v, want [A C]", got)
	}
}

// TestGovernanceRefusals: what a hostile member or leader may try is refused
// and changes nothing.
func TestGovernanceRefusals(t *testing.T) {
	g := newGovFSM(t, ProtocolGovernance)
	pending := g.mustApply(g.act("C", "C", propose(removal("B"))))
	otherCA := &peerpb.Proposal{Change: &peerpb.Proposal_Invite{Invite: &pb.Member{Agency: "B", Address: "evil:7400", CaCert: []byte("C's own CA")}}}
	tests := []struct {
		name string
		cmd  *peerpb.Command
	}{
		{"an unsigned removal", memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Remove{Remove: "A"}})},
		{"an unsigned invitation", memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: &pb.Member{Agency: "D", Address: "d:1", CaCert: []byte("D CA")}}})},
		{"an approval by A signed with C's key", g.act("A", "C", approve(idString(pending)))},
		{"a second approval by the proposer", g.act("C", "C", approve(idString(pending)))},
		{"an approval of no proposal", g.act("A", "A", approve("999"))},
		{"a proposal to remove oneself", g.act("A", "A", propose(removal("A")))},
		{"a join of B with other keys", memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: &pb.Member{Agency: "B", SigningKey: make([]byte, 32), SealingKey: []byte("x")}}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := g.state()
			if _, err := g.apply(tc.cmd); !errors.Is(err, ErrRejected) {
				t.Fatalf("applied: %v; want rejected", err)
			}
			if g.state() != before {
				t.Fatal("a refused entry changed the state")
			}
		})
	}
	// Once B is out, its id stays bound to its CA: C cannot invite a node
	// of its own under it.
	g.mustApply(g.act("A", "A", approve(idString(pending))))
	if _, err := g.apply(g.act("C", "C", propose(otherCA))); !errors.Is(err, ErrRejected) {
		t.Fatalf("re-inviting B with another CA: %v; want rejected", err)
	}
	sameCA := &peerpb.Proposal{Change: &peerpb.Proposal_Invite{Invite: &pb.Member{Agency: "B", Address: "b:7400", CaCert: []byte("B CA")}}}
	g.mustApply(g.act("C", "C", propose(sameCA)))
}

// TestUnderEarlierProtocols: before protocol 3 a governance entry is
// refused and the unsigned member changes apply as they always did.
func TestUnderEarlierProtocols(t *testing.T) {
	g := newGovFSM(t, 2)
	if _, err := g.apply(g.act("C", "C", propose(removal("B")))); !errors.Is(err, ErrRejected) {
		t.Fatalf("a governance entry under protocol 2: %v; want rejected", err)
	}
	g.mustApply(memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Remove{Remove: "B"}}))
	if got := g.members(); !slices.Equal(got, []string{"A", "C"}) {
		t.Fatalf("members %v, want [A C]", got)
	}
}

// TestProposalOutcomes: rejection, expiry by signed time, leaving alone,
// and a threshold change that is itself a proposal.
func TestProposalOutcomes(t *testing.T) {
	g := newGovFSM(t, ProtocolGovernance)
	invite := &peerpb.Proposal{Change: &peerpb.Proposal_Invite{Invite: &pb.Member{Agency: "D", Address: "d:7400", CaCert: []byte("D CA"), Voter: true}}}

	rejected := g.mustApply(g.act("A", "A", propose(invite)))
	g.mustApply(g.act("B", "B", reject(idString(rejected))))
	g.mustApply(g.act("C", "C", reject(idString(rejected))))
	if ps := g.proposal(rejected); ps.State != ProposalRejected {
		t.Fatalf("proposal %v; want rejected", ps)
	}

	expiring := g.mustApply(g.act("A", "A", propose(invite)))
	g.now = g.now.Add(ProposalTTL + time.Hour)
	if _, err := g.apply(g.act("B", "B", approve(idString(expiring)))); !errors.Is(err, ErrRejected) {
		t.Fatalf("approving after the expiry: %v; want rejected", err)
	}
	g.mustApply(g.act("B", "B", propose(&peerpb.Proposal{Change: &peerpb.Proposal_Threshold{Threshold: &peerpb.ApprovalThreshold{Rule: &peerpb.ApprovalThreshold_All{All: true}}}})))
	if ps := g.proposal(expiring); ps.State != ProposalExpired {
		t.Fatalf("proposal %v; want expired by the later act's signed time", ps)
	}
	thresholdID := g.index
	g.mustApply(g.act("C", "C", approve(idString(thresholdID))))
	if _, th, _ := g.fsm.Proposals(); !th.GetAll() {
		t.Fatalf("threshold %v; want all", th)
	}
	// Now all three must approve an invitation.
	all := g.mustApply(g.act("A", "A", propose(invite)))
	g.mustApply(g.act("B", "B", approve(idString(all))))
	if ps := g.proposal(all); ps.State != ProposalPending {
		t.Fatalf("proposal %v; want pending with 2 of 3", ps)
	}
	g.mustApply(g.act("C", "C", approve(idString(all))))
	if m, err := g.fsm.Member("D"); err != nil || m.Joined {
		t.Fatalf("D after the invitation: %v, %v; want invited", m, err)
	}

	g.mustApply(g.act("B", "B", &peerpb.GovernanceAct{Act: &peerpb.GovernanceAct_Leave{Leave: &peerpb.Leave{}}}))
	if got := g.members(); !slices.Equal(got, []string{"A", "C", "D"}) {
		t.Fatalf("members after B left %v, want [A C D]", got)
	}
}

// TestProposalFloodBounded: one agency may have at most MaxPendingProposals
// pending; more are refused and change nothing, while others may still
// propose, and an expired proposal no longer counts.
func TestProposalFloodBounded(t *testing.T) {
	g := newGovFSM(t, ProtocolGovernance)
	invite := func(i int) *peerpb.GovernanceAct {
		a := "X" + strconv.Itoa(i)
		return propose(&peerpb.Proposal{Change: &peerpb.Proposal_Invite{Invite: &pb.Member{Agency: a, Address: a + ":7400", CaCert: []byte(a + " CA")}}})
	}
	for i := range MaxPendingProposals {
		g.mustApply(g.act("C", "C", invite(i)))
	}
	before := g.state()
	if _, err := g.apply(g.act("C", "C", invite(99))); !errors.Is(err, ErrRejected) {
		t.Fatalf("proposal %d of C: %v; want rejected", MaxPendingProposals+1, err)
	}
	if g.state() != before {
		t.Fatal("a refused proposal changed the state")
	}
	g.mustApply(g.act("A", "A", invite(100)))
	g.now = g.now.Add(ProposalTTL + time.Hour)
	g.mustApply(g.act("C", "C", invite(101)))
}

// TestJoinNeedsProofAndTheInvitedAddress: under protocol 3 a join carries
// the joiner's signature with the signing key it registers, and is at the
// address the approved invitation named (or none, taking it).
func TestJoinNeedsProofAndTheInvitedAddress(t *testing.T) {
	g := newGovFSM(t, ProtocolGovernance)
	invite := &peerpb.Proposal{Change: &peerpb.Proposal_Invite{Invite: &pb.Member{Agency: "D", Address: "d:7400", CaCert: []byte("D CA"), Voter: true}}}
	id := g.mustApply(g.act("A", "A", propose(invite)))
	g.mustApply(g.act("B", "B", approve(idString(id))))
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	join := func(addr string, key ed25519.PrivateKey) *peerpb.Command {
		m := &pb.Member{Agency: "D", Address: addr, SigningKey: pub, SealingKey: []byte("D sealing")}
		var sig []byte
		if key != nil {
			sig = ed25519.Sign(key, JoinMessage(m))
		}
		return memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: m}, JoinSignature: sig})
	}
	for _, tc := range []struct {
		name string
		cmd  *peerpb.Command
	}{
		{"no signature", join("d:7400", nil)},
		{"signed with another key", join("d:7400", other)},
		{"at another address", join("evil:7400", priv)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := g.state()
			if _, err := g.apply(tc.cmd); !errors.Is(err, ErrRejected) {
				t.Fatalf("join %s: %v; want rejected", tc.name, err)
			}
			if g.state() != before {
				t.Fatal("a refused join changed the state")
			}
		})
	}
	g.mustApply(join("d:7400", priv))
	if m, err := g.fsm.Member("D"); err != nil || !m.Joined || m.Address != "d:7400" {
		t.Fatalf("D after its join: %v, %v", m, err)
	}
}

// TestActTimeBoundedByTheEntryTime: an act signed more than MaxActSkew
// before or after the leader's time on its entry is refused — a member can
// neither expire the others' proposals with a future date nor approve an
// expired one with a past date.
func TestActTimeBoundedByTheEntryTime(t *testing.T) {
	g := newGovFSM(t, ProtocolGovernance)
	g.appended = g.now
	id := g.mustApply(g.act("C", "C", propose(removal("B"))))
	for _, skew := range []time.Duration{MaxActSkew + time.Minute, -MaxActSkew - time.Minute, ProposalTTL + time.Hour} {
		g.now = g.appended.Add(skew)
		before := g.state()
		if _, err := g.apply(g.act("A", "A", approve(idString(id)))); !errors.Is(err, ErrRejected) {
			t.Fatalf("an approval signed %v from its entry's time: %v; want rejected", skew, err)
		}
		if g.state() != before {
			t.Fatal("a refused act changed the state (an expiry?)")
		}
	}
	g.now = g.appended.Add(MaxActSkew - time.Minute)
	g.mustApply(g.act("A", "A", approve(idString(id))))
	if ps := g.proposal(id); ps.State != ProposalApplied {
		t.Fatalf("proposal %v; want applied", ps)
	}
}

// TestFoundingJoinSigned: the leader of a new federation may activate
// protocol 3 between the founding invitation and the founder's join (it
// announces its versions as soon as it leads), so the founder's join must
// carry its signature like any other (Replicator.Bootstrap signs it).
func TestFoundingJoinSigned(t *testing.T) {
	f := newTestFSM(t, noPublications)
	if err := f.db.Update(func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketMeta), keyProtocol, be64(ProtocolGovernance))
	}); err != nil {
		t.Fatal(err)
	}
	g := &govFSM{t: t, fsm: f}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	founder := &pb.Member{Agency: "A", Address: "a:7400", CaCert: []byte("A CA"), SigningKey: pub, SealingKey: []byte("A sealing"), Voter: true}
	g.mustApply(memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: founder}}))
	if _, err := g.apply(memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: founder}})); !errors.Is(err, ErrRejected) {
		t.Fatalf("unsigned founding join under protocol 3: %v; want rejected", err)
	}
	g.mustApply(memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: founder}, JoinSignature: ed25519.Sign(priv, JoinMessage(founder))}))
	if m, err := f.Member("A"); err != nil || !m.Joined {
		t.Fatalf("founder after its signed join: %v, %v", m, err)
	}
}
