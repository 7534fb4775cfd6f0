package replication

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Governance (protocol 3): no agency decides alone who is in the federation.
// Adding a member, removing another, promoting a non-voter, re-binding an
// agency id to another CA or keys, and changing the approval threshold are
// proposals: Governance entries signed by a member agency, which take
// effect once enough member agencies approved them, each approval an entry
// signed by that agency, verified by every FSM against the registry. An
// agency may always leave on its own. A proposal expires ProposalTTL after
// its proposer signed it, judged by the signed times of later acts, never
// by a node's clock. An agency id, once registered, stays bound to its CA
// and keys (bucketBindings); only an approved rebind changes that. From
// protocol 3 the unsigned MemberChange commands of protocol 1 may only
// found a federation (the first invite) and complete an invitation (join,
// with the keys bound to the agency, if any).
//
// A governance entry is refused (rejected, as by every FSM) while an
// earlier protocol is active. Accepted acts are kept in the log bucket with
// the publications, so that every node takes them in and audits them.

// ProtocolGovernance is the protocol from which membership is governed by
// proposals and approvals.
const ProtocolGovernance = 3

// ProposalTTL is how long a proposal waits for approvals.
const ProposalTTL = 7 * 24 * time.Hour

// MaxPendingProposals bounds the pending proposals of one agency, so that a
// member flooding proposals cannot grow every member's state without end.
const MaxPendingProposals = 8

var (
	// be64(index of the proposal) → ProposalState; created by the first proposal.
	bucketProposals = []byte("proposals")
	// agency → Member holding only the CA certificate and keys the agency id
	// is bound to; created by the first binding.
	bucketBindings = []byte("bindings")
	keyThreshold   = []byte("approvals") // in meta: the ApprovalThreshold; absent: majority
)

// Proposal states.
const (
	ProposalPending  = "pending"
	ProposalApplied  = "applied"
	ProposalRejected = "rejected"
	ProposalExpired  = "expired"
)

// MaxActSkew bounds how far an act's signed time may lie from the time the
// leader stamped on its log entry (raft's AppendedAt, carried in the log and
// to every member), so that a member can neither future-date an act (to
// expire every pending proposal, or stretch its own proposal's life) nor
// back-date one (to approve a proposal after its expiry). Every FSM decides
// from the entry alone, never from its own clock.
const MaxActSkew = 15 * time.Minute

// JoinMessage is what a joining agency signs with the signing key it
// registers: proof that it holds that key, binding its sealing key too.
func JoinMessage(m *pb.Member) []byte {
	b := append([]byte("watchfed join v1\x00"), m.GetAgency()...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.GetSigningKey())))
	b = append(b, m.GetSigningKey()...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.GetSealingKey())))
	return append(b, m.GetSealingKey()...)
}

// GovernanceMessage is what an agency signs for a governance act.
func GovernanceMessage(agency string, act []byte) []byte {
	b := append([]byte("watchfed governance v1\x00"), agency...)
	return append(append(b, 0), act...)
}

// applyGovernance applies a governance act and, if it is accepted, keeps it
// in the log bucket with the publications (raw is the whole command), so
// that every node takes it in, in log order and exactly once, and audits it
// (Entries: an Entry with Governance set).
func (f *FSM) applyGovernance(tx *bolt.Tx, index uint64, raw []byte, appended time.Time, g *peerpb.Governance) error {
	if err := f.governance(tx, index, appended, g); err != nil {
		return err
	}
	return f.putLog(tx, index, raw)
}

func (f *FSM) governance(tx *bolt.Tx, index uint64, appended time.Time, g *peerpb.Governance) error {
	if active, _ := protocolOf(tx); active < ProtocolGovernance {
		return fmt.Errorf("%w: a governance entry needs protocol %d; protocol %d is active", ErrRejected, ProtocolGovernance, active)
	}
	m, err := getMember(tx, g.GetAgency())
	if err != nil || !m.Joined {
		return fmt.Errorf("%w: governance: %q is not a joined member", ErrRejected, g.GetAgency())
	}
	if len(m.SigningKey) != ed25519.PublicKeySize || !ed25519.Verify(m.SigningKey, GovernanceMessage(g.Agency, g.Act), g.GetSignature()) {
		return fmt.Errorf("%w: governance act of %s: signature does not verify with its signing key", ErrRejected, g.Agency)
	}
	act := &peerpb.GovernanceAct{}
	if err := proto.Unmarshal(g.Act, act); err != nil {
		return fmt.Errorf("%w: governance act of %s: %v", ErrRejected, g.Agency, err)
	}
	if act.Agency != g.Agency {
		return fmt.Errorf("%w: governance act signed by %s names %q", ErrRejected, g.Agency, act.Agency)
	}
	if err := act.GetSignedAt().CheckValid(); err != nil {
		return fmt.Errorf("%w: governance act of %s: signed_at: %v", ErrRejected, g.Agency, err)
	}
	at := act.SignedAt.AsTime()
	if !appended.IsZero() {
		// Whole seconds: the stamp travels through msgpack and the log store.
		if d := at.Unix() - appended.Unix(); d > int64(MaxActSkew/time.Second) || -d > int64(MaxActSkew/time.Second) {
			return fmt.Errorf("%w: governance act of %s signed at %s, more than %s from the leader's time of its entry (%s)",
				ErrRejected, g.Agency, at.UTC().Format(time.RFC3339), MaxActSkew, appended.UTC().Format(time.RFC3339))
		}
	}
	// Everything is checked before anything is written: a refused act
	// changes nothing, not even the expiry of other proposals.
	var ps *peerpb.ProposalState
	switch a := act.Act.(type) {
	case *peerpb.GovernanceAct_Propose:
		if err := checkProposal(tx, g.Agency, a.Propose); err != nil {
			return fmt.Errorf("%w: proposal of %s: %v", ErrRejected, g.Agency, err)
		}
		if n := pendingOf(tx, g.Agency, at); n >= MaxPendingProposals {
			return fmt.Errorf("%w: proposal of %s: it has %d pending proposals already (at most %d)", ErrRejected, g.Agency, n, MaxPendingProposals)
		}
		ps = &peerpb.ProposalState{
			Id: strconv.FormatUint(index, 10), Proposal: a.Propose, ProposedBy: g.Agency, State: ProposalPending,
			ProposedAt: act.SignedAt, ExpiresAt: timestamppb.New(at.Add(ProposalTTL)), Approvals: []string{g.Agency},
		}
	case *peerpb.GovernanceAct_Approve, *peerpb.GovernanceAct_Reject:
		id := act.GetApprove() + act.GetReject()
		var err error
		if ps, err = getProposal(tx, id); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrRejected, g.Agency, err)
		}
		if ps.State == ProposalPending && at.After(ps.ExpiresAt.AsTime()) {
			return fmt.Errorf("%w: proposal %s expired at %s", ErrRejected, id, ps.ExpiresAt.AsTime().Format(time.RFC3339))
		}
		if ps.State != ProposalPending {
			return fmt.Errorf("%w: proposal %s is %s", ErrRejected, id, ps.State)
		}
		voters, err := electorate(tx, ps.Proposal)
		if err != nil {
			return err
		}
		if !slices.Contains(voters, g.Agency) {
			return fmt.Errorf("%w: %s is not among the agencies that decide proposal %s", ErrRejected, g.Agency, id)
		}
		if slices.Contains(ps.Approvals, g.Agency) || slices.Contains(ps.Rejections, g.Agency) {
			return fmt.Errorf("%w: %s already decided on proposal %s", ErrRejected, g.Agency, id)
		}
		if act.GetApprove() != "" {
			ps.Approvals = append(ps.Approvals, g.Agency)
		} else {
			ps.Rejections = append(ps.Rejections, g.Agency)
		}
	case *peerpb.GovernanceAct_Leave:
		if err := expireProposals(tx, index, at); err != nil {
			return err
		}
		if err := bind(tx, m); err != nil {
			return err
		}
		f.registryChanged()
		return tx.Bucket(bucketMembers).Delete([]byte(g.Agency))
	default:
		return fmt.Errorf("%w: empty governance act of %s", ErrRejected, g.Agency)
	}
	state, err := outcome(tx, ps)
	if err != nil {
		return err
	}
	if state == ProposalApplied {
		if err := checkProposal(tx, "", ps.Proposal); err != nil {
			return fmt.Errorf("%w: proposal %s cannot be applied: %v", ErrRejected, ps.Id, err)
		}
	}
	if err := expireProposals(tx, index, at); err != nil {
		return err
	}
	if state != ProposalPending {
		ps.State, ps.DecidedIndex = state, index
	}
	if state == ProposalApplied {
		if err := f.applyProposal(tx, index, ps.Proposal); err != nil {
			return err
		}
	}
	return putProposal(tx, ps)
}

// outcome is what a proposal's approvals and rejections make of it: applied
// once enough deciding agencies approved, rejected once that can no longer
// happen, else pending.
func outcome(tx *bolt.Tx, ps *peerpb.ProposalState) (string, error) {
	voters, err := electorate(tx, ps.Proposal)
	if err != nil {
		return "", err
	}
	needed := Needed(threshold(tx), len(voters))
	approved, rejected := 0, 0
	for _, a := range voters {
		approved += count(slices.Contains(ps.Approvals, a))
		rejected += count(slices.Contains(ps.Rejections, a))
	}
	switch {
	case approved >= needed:
		return ProposalApplied, nil
	case len(voters)-rejected < needed:
		return ProposalRejected, nil
	}
	return ProposalPending, nil
}

func count(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Needed is how many approvals a threshold asks of n deciding agencies.
func Needed(th *peerpb.ApprovalThreshold, n int) int {
	switch r := th.GetRule().(type) {
	case *peerpb.ApprovalThreshold_All:
		return n
	case *peerpb.ApprovalThreshold_Count:
		return min(int(r.Count), n)
	}
	return n/2 + 1
}

// electorate are the agencies that decide a proposal: the joined members,
// but for a removal not the member removed (so a member gone for good can
// be removed by the others).
func electorate(tx *bolt.Tx, p *peerpb.Proposal) ([]string, error) {
	var out []string
	err := forEachMember(tx, func(agency string, joined bool, _ uint64) {
		if joined && agency != p.GetRemove() {
			out = append(out, agency)
		}
	})
	return out, err
}

func threshold(tx *bolt.Tx) *peerpb.ApprovalThreshold {
	th := &peerpb.ApprovalThreshold{}
	if v := get(tx, bucketMeta, keyThreshold); v != nil && proto.Unmarshal(v, th) == nil {
		return th
	}
	return &peerpb.ApprovalThreshold{Rule: &peerpb.ApprovalThreshold_Majority{Majority: true}}
}

// checkProposal says why a proposal cannot be made now (nil if it can).
func checkProposal(tx *bolt.Tx, proposer string, p *peerpb.Proposal) error {
	switch c := p.GetChange().(type) {
	case *peerpb.Proposal_Invite:
		m := c.Invite
		if m.GetAgency() == "" || m.GetAddress() == "" || len(m.GetCaCert()) == 0 {
			return fmt.Errorf("an invitation needs agency, address and ca_cert")
		}
		if old, err := getMember(tx, m.Agency); err == nil && old.Joined {
			return fmt.Errorf("%s is already a member", m.Agency)
		}
		if b := binding(tx, m.Agency); b != nil && !bytes.Equal(b.CaCert, m.CaCert) {
			return fmt.Errorf("%s is bound to another CA; propose a rebind", m.Agency)
		}
	case *peerpb.Proposal_Remove:
		if c.Remove == proposer {
			return fmt.Errorf("an agency leaves on its own, without a proposal")
		}
		if _, err := getMember(tx, c.Remove); err != nil {
			return fmt.Errorf("%s is not a member", c.Remove)
		}
	case *peerpb.Proposal_Promote:
		m, err := getMember(tx, c.Promote)
		if err != nil || !m.Joined || m.Voter {
			return fmt.Errorf("%s is not a joined non-voter", c.Promote)
		}
	case *peerpb.Proposal_Rebind:
		if c.Rebind.GetAgency() == "" || len(c.Rebind.GetCaCert())+len(c.Rebind.GetSigningKey()) == 0 {
			return fmt.Errorf("a rebind needs an agency and a ca_cert or keys")
		}
		if (len(c.Rebind.SigningKey) == 0) != (len(c.Rebind.SealingKey) == 0) {
			return fmt.Errorf("a rebind of keys needs both signing_key and sealing_key")
		}
	case *peerpb.Proposal_Threshold:
		if c.Threshold.GetRule() == nil || (c.Threshold.GetCount() == 0 && !c.Threshold.GetAll() && !c.Threshold.GetMajority()) {
			return fmt.Errorf("a threshold needs majority, all or a count above 0")
		}
	default:
		return fmt.Errorf("empty proposal")
	}
	return nil
}

// applyProposal makes an approved change (checkProposal passed).
func (f *FSM) applyProposal(tx *bolt.Tx, index uint64, p *peerpb.Proposal) error {
	members := tx.Bucket(bucketMembers)
	f.registryChanged()
	switch c := p.Change.(type) {
	case *peerpb.Proposal_Invite:
		m := proto.Clone(c.Invite).(*pb.Member)
		m.Joined, m.SigningKey, m.SealingKey, m.JoinedIndex = false, nil, nil, 0
		if err := bind(tx, &pb.Member{Agency: m.Agency, CaCert: m.CaCert}); err != nil {
			return err
		}
		return putMember(members, m)
	case *peerpb.Proposal_Remove:
		m, err := getMember(tx, c.Remove)
		if err != nil {
			return err
		}
		if err := bind(tx, m); err != nil {
			return err
		}
		return members.Delete([]byte(c.Remove))
	case *peerpb.Proposal_Promote:
		m, err := getMember(tx, c.Promote)
		if err != nil {
			return err
		}
		m.Voter = true
		return putMember(members, m)
	case *peerpb.Proposal_Rebind:
		r := c.Rebind
		b := binding(tx, r.Agency)
		if b == nil {
			b = &pb.Member{Agency: r.Agency}
		}
		if len(r.CaCert) > 0 {
			b.CaCert = r.CaCert
		}
		if len(r.SigningKey) > 0 {
			b.SigningKey, b.SealingKey = r.SigningKey, r.SealingKey
		}
		if err := putBinding(tx, b); err != nil {
			return err
		}
		if m, err := getMember(tx, r.Agency); err == nil {
			m.CaCert = b.CaCert
			if len(r.SigningKey) > 0 && m.Joined {
				// New keys are a new membership: a new epoch (see the
				// federation side's epochOf).
				m.SigningKey, m.SealingKey, m.JoinedIndex = r.SigningKey, r.SealingKey, index
			}
			return putMember(members, m)
		}
		return nil
	case *peerpb.Proposal_Threshold:
		v, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.Threshold)
		if err != nil {
			return err
		}
		return put(tx.Bucket(bucketMeta), keyThreshold, v)
	}
	return fmt.Errorf("empty proposal")
}

// memberChange applies an unsigned member change. From protocol 3 only the
// founding invitation and the join of an invited agency (with the keys bound
// to it, if any) remain; what they bring is bound to the agency id.
func (f *FSM) memberChange(tx *bolt.Tx, index uint64, mc *peerpb.MemberChange) error {
	if active, _ := protocolOf(tx); active < ProtocolGovernance {
		return applyMemberChange(tx, index, mc)
	}
	switch c := mc.Change.(type) {
	case *peerpb.MemberChange_Invite:
		if k, _ := tx.Bucket(bucketMembers).Cursor().First(); k != nil {
			return fmt.Errorf("%w: from protocol %d an invitation is a proposal", ErrRejected, ProtocolGovernance)
		}
	case *peerpb.MemberChange_Join:
		m := c.Join
		if len(m.GetSigningKey()) != ed25519.PublicKeySize || !ed25519.Verify(m.GetSigningKey(), JoinMessage(m), mc.GetJoinSignature()) {
			return fmt.Errorf("%w: join of %s: no signature by the signing key it registers (from protocol %d)", ErrRejected, m.GetAgency(), ProtocolGovernance)
		}
		if invited, err := getMember(tx, m.GetAgency()); err == nil && m.GetAddress() != "" && m.GetAddress() != invited.Address {
			return fmt.Errorf("%w: join of %s at %q: the invitation is for %q", ErrRejected, m.GetAgency(), m.GetAddress(), invited.Address)
		}
		if b := binding(tx, m.GetAgency()); b != nil && len(b.SigningKey) > 0 &&
			(!bytes.Equal(b.SigningKey, m.GetSigningKey()) || !bytes.Equal(b.SealingKey, m.GetSealingKey())) {
			return fmt.Errorf("%w: %s is bound to other keys; propose a rebind", ErrRejected, m.GetAgency())
		}
	case *peerpb.MemberChange_Remove:
		return fmt.Errorf("%w: from protocol %d a removal is a proposal (or the agency leaves on its own)", ErrRejected, ProtocolGovernance)
	}
	if err := applyMemberChange(tx, index, mc); err != nil {
		return err
	}
	agency := mc.GetInvite().GetAgency() + mc.GetJoin().GetAgency()
	m, err := getMember(tx, agency)
	if err != nil {
		return err
	}
	return bind(tx, m)
}

// expireProposals marks expired the pending proposals whose time passed
// before at, the signed time of the act being applied.
func expireProposals(tx *bolt.Tx, index uint64, at time.Time) error {
	var expired []*peerpb.ProposalState
	err := forEach(tx, bucketProposals, func(_, v []byte) error {
		ps := &peerpb.ProposalState{}
		if err := proto.Unmarshal(v, ps); err != nil {
			return err
		}
		if ps.State == ProposalPending && at.After(ps.ExpiresAt.AsTime()) {
			ps.State, ps.DecidedIndex = ProposalExpired, index
			expired = append(expired, ps)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, ps := range expired {
		if err := putProposal(tx, ps); err != nil {
			return err
		}
	}
	return nil
}

// pendingOf counts the proposals of agency still pending at at.
func pendingOf(tx *bolt.Tx, agency string, at time.Time) int {
	n := 0
	_ = forEach(tx, bucketProposals, func(_, v []byte) error {
		ps := &peerpb.ProposalState{}
		if proto.Unmarshal(v, ps) == nil && ps.ProposedBy == agency && ps.State == ProposalPending && !at.After(ps.ExpiresAt.AsTime()) {
			n++
		}
		return nil
	})
	return n
}

func getProposal(tx *bolt.Tx, id string) (*peerpb.ProposalState, error) {
	idx, err := strconv.ParseUint(id, 10, 64)
	var v []byte
	if err == nil {
		v = get(tx, bucketProposals, be64(idx))
	}
	if v == nil {
		return nil, fmt.Errorf("no proposal %q", id)
	}
	ps := &peerpb.ProposalState{}
	return ps, proto.Unmarshal(v, ps)
}

func putProposal(tx *bolt.Tx, ps *peerpb.ProposalState) error {
	b, err := tx.CreateBucketIfNotExists(bucketProposals)
	if err != nil {
		return err
	}
	idx, err := strconv.ParseUint(ps.Id, 10, 64)
	if err != nil {
		return err
	}
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(ps)
	if err != nil {
		return err
	}
	return put(b, be64(idx), v)
}

// binding is what an agency id is bound to: its recorded binding, else its
// registry entry (a member registered before protocol 3), else nil.
func binding(tx *bolt.Tx, agency string) *pb.Member {
	if v := get(tx, bucketBindings, []byte(agency)); v != nil {
		m := &pb.Member{}
		if proto.Unmarshal(v, m) == nil {
			return m
		}
	}
	if m, err := getMember(tx, agency); err == nil {
		return &pb.Member{Agency: m.Agency, CaCert: m.CaCert, SigningKey: m.SigningKey, SealingKey: m.SealingKey}
	}
	return nil
}

// bind records what an agency id is bound to, keeping what is bound
// already: the CA and keys it was first registered with stay.
func bind(tx *bolt.Tx, m *pb.Member) error {
	b := binding(tx, m.Agency)
	if b == nil {
		b = &pb.Member{Agency: m.Agency}
	}
	if len(b.CaCert) == 0 {
		b.CaCert = m.CaCert
	}
	if len(b.SigningKey) == 0 {
		b.SigningKey, b.SealingKey = m.SigningKey, m.SealingKey
	}
	return putBinding(tx, b)
}

func putBinding(tx *bolt.Tx, m *pb.Member) error {
	b, err := tx.CreateBucketIfNotExists(bucketBindings)
	if err != nil {
		return err
	}
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pb.Member{Agency: m.Agency, CaCert: m.CaCert, SigningKey: m.SigningKey, SealingKey: m.SealingKey})
	if err != nil {
		return err
	}
	return put(b, []byte(m.Agency), v)
}

// Proposals are the proposals in the replicated state, oldest first, and
// the approval threshold in force.
func (f *FSM) Proposals() ([]*peerpb.ProposalState, *peerpb.ApprovalThreshold, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []*peerpb.ProposalState
	var th *peerpb.ApprovalThreshold
	err := f.view(func(tx *bolt.Tx) error {
		th = threshold(tx)
		return forEach(tx, bucketProposals, func(_, v []byte) error {
			ps := &peerpb.ProposalState{}
			if err := proto.Unmarshal(v, ps); err != nil {
				return err
			}
			out = append(out, ps)
			return nil
		})
	})
	return out, th, err
}

// Proposals are the proposals in the replicated state, oldest first, and
// the approval threshold in force.
func (r *Replicator) Proposals() ([]*peerpb.ProposalState, *peerpb.ApprovalThreshold, error) {
	return r.fsm.Proposals()
}
