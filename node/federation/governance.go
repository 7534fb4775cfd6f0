package federation

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
)

// The node's side of governance (replication/governance.go has the rules
// every FSM applies): from protocol 3 this node signs its agency's acts —
// proposals, approvals, rejections, leaving — with the agency's signing key
// and commits them through the leader (a node forwards only what its own
// agency signed, forward.go), and reads the proposals back for operators.

// GovernanceActive reports whether membership is governed by proposals and
// approvals (protocol 3 or later is active).
func (f *Federation) GovernanceActive() bool {
	return f.rep.Protocol().Active >= replication.ProtocolGovernance
}

// WaitGovernance waits until governance is active, or ctx ends.
func (f *Federation) WaitGovernance(ctx context.Context) error {
	for !f.GovernanceActive() {
		select {
		case <-ctx.Done():
			return status.Errorf(codes.Unavailable, "the federation has not activated protocol %d (governance): %v", replication.ProtocolGovernance, ctx.Err())
		case <-f.rep.Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// SignAct is act signed by agency's signing key, as a log command.
func SignAct(agency string, key ed25519.PrivateKey, act *peerpb.GovernanceAct, now time.Time) (*peerpb.Command, error) {
	act.Agency, act.SignedAt = agency, timestamppb.New(now)
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(act)
	if err != nil {
		return nil, err
	}
	return &peerpb.Command{Command: &peerpb.Command_Governance{Governance: &peerpb.Governance{
		Agency: agency, Act: data, Signature: ed25519.Sign(key, replication.GovernanceMessage(agency, data)),
	}}}, nil
}

// govern signs act as this agency's and commits it, then waits until this
// node applied it (so that what it reads next reflects it). Its error is a
// gRPC status (ApplyError).
func (f *Federation) govern(ctx context.Context, act *peerpb.GovernanceAct) (uint64, error) {
	return f.governWait(ctx, act, true)
}

// governWait is govern; wait false returns once the act committed (a node
// leaving may be out of raft before it learns so).
func (f *Federation) governWait(ctx context.Context, act *peerpb.GovernanceAct, wait bool) (uint64, error) {
	if !f.GovernanceActive() {
		return 0, status.Errorf(codes.FailedPrecondition, "membership is governed by proposals from protocol %d; the federation is at protocol %d", replication.ProtocolGovernance, f.rep.Protocol().Active)
	}
	cmd, err := SignAct(f.cfg.Agency, f.keys.Signing, act, f.now())
	if err != nil {
		return 0, status.Errorf(codes.Internal, "sign governance act: %v", err)
	}
	idx, err := f.Apply(ctx, cmd)
	if err != nil {
		return 0, ApplyError(err)
	}
	for wait && f.rep.Applied() < idx {
		select {
		case <-ctx.Done():
			return idx, status.FromContextError(ctx.Err()).Err()
		case <-f.rep.Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return idx, nil
}

// Propose makes a proposal, approved by this agency, and returns it as the
// replicated state holds it once committed (applied already where this
// agency's approval suffices). An applied removal waits, as Remove does,
// for raft's configuration to follow.
func (f *Federation) Propose(ctx context.Context, p *peerpb.Proposal) (*pb.Proposal, error) {
	idx, err := f.govern(ctx, &peerpb.GovernanceAct{Act: &peerpb.GovernanceAct_Propose{Propose: p}})
	if err != nil {
		return nil, err
	}
	out, err := f.Proposal(strconv.FormatUint(idx, 10))
	if err == nil && out.State == replication.ProposalApplied {
		f.followed(ctx, p)
	}
	return out, err
}

// Decide approves or rejects a pending proposal as this agency.
func (f *Federation) Decide(ctx context.Context, id string, approve bool) (*pb.Proposal, error) {
	if _, err := f.Proposal(id); status.Code(err) == codes.NotFound {
		// This node may not have applied it yet (seen on another member):
		// catch up to the leader's log, then look again.
		if err := f.Barrier(ctx); err != nil {
			return nil, err
		}
	}
	if _, err := f.Proposal(id); err != nil {
		return nil, err
	}
	act := &peerpb.GovernanceAct{Act: &peerpb.GovernanceAct_Reject{Reject: id}}
	if approve {
		act.Act = &peerpb.GovernanceAct_Approve{Approve: id}
	}
	if _, err := f.govern(ctx, act); err != nil {
		return nil, err
	}
	out, err := f.Proposal(id)
	if err == nil && out.State == replication.ProposalApplied {
		if ps, _ := f.proposalState(id); ps != nil {
			f.followed(ctx, ps.Proposal)
		}
	}
	return out, err
}

// Leave takes this agency out of the federation, on its own word.
func (f *Federation) Leave(ctx context.Context) (uint64, error) {
	if !f.Joined() {
		return 0, status.Error(codes.FailedPrecondition, "this agency is not a joined member")
	}
	return f.governWait(ctx, &peerpb.GovernanceAct{Act: &peerpb.GovernanceAct_Leave{Leave: &peerpb.Leave{}}}, false)
}

// followed waits (bounded) for raft's configuration to drop a removed
// member, as this member sees it; the leader keeps reconciling otherwise.
func (f *Federation) followed(ctx context.Context, p *peerpb.Proposal) {
	gone := p.GetRemove()
	if gone == "" {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, removeWait)
	defer cancel()
	if err := f.rep.WaitConfiguration(wctx, func(s map[string]bool) bool { _, in := s[gone]; return !in }); err != nil {
		f.log.Warn("removed from the registry, not yet from raft's configuration", "agency", gone, "err", err)
	}
}

// Proposals lists the proposals (only the pending ones unless all), oldest
// first, and the approval threshold in force.
func (f *Federation) Proposals(all bool) ([]*pb.Proposal, string, error) {
	ps, th, err := f.rep.Proposals()
	if err != nil {
		return nil, "", status.Errorf(codes.Internal, "proposals: %v", err)
	}
	members, err := f.rep.Members()
	if err != nil {
		return nil, "", status.Errorf(codes.Internal, "registry: %v", err)
	}
	var out []*pb.Proposal
	for _, p := range ps {
		v := PublicProposal(p, th, members, f.now())
		if all || v.State == replication.ProposalPending {
			out = append(out, v)
		}
	}
	return out, ThresholdName(th), nil
}

// Proposal is one proposal by id; NotFound if there is none.
func (f *Federation) Proposal(id string) (*pb.Proposal, error) {
	ps, err := f.proposalState(id)
	if err != nil {
		return nil, err
	}
	_, th, err := f.rep.Proposals()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "proposals: %v", err)
	}
	members, err := f.rep.Members()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "registry: %v", err)
	}
	return PublicProposal(ps, th, members, f.now()), nil
}

func (f *Federation) proposalState(id string) (*peerpb.ProposalState, error) {
	ps, _, err := f.rep.Proposals()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "proposals: %v", err)
	}
	for _, p := range ps {
		if p.Id == id {
			return p, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "no proposal %q", id)
}

// PublicProposal is a proposal as the public API shows it: the approvals
// that count (of the agencies that decide it) and how many are needed under
// threshold th and the registry members. A pending proposal whose time has
// passed by now shows as expired: no approval can reach it any more (the
// log marks it expired with the next act).
func PublicProposal(ps *peerpb.ProposalState, th *peerpb.ApprovalThreshold, members []*pb.Member, now time.Time) *pb.Proposal {
	var voters []string
	for _, m := range members {
		if m.Joined && m.Agency != ps.GetProposal().GetRemove() {
			voters = append(voters, m.Agency)
		}
	}
	approvals := 0
	for _, a := range ps.Approvals {
		if slices.Contains(voters, a) {
			approvals++
		}
	}
	out := &pb.Proposal{
		Id: ps.Id, ProposedBy: ps.ProposedBy, State: ps.State, ExpiresAt: ps.ExpiresAt, ProposedAt: ps.ProposedAt,
		ApprovedBy: ps.Approvals, RejectedBy: ps.Rejections, DecidedIndex: ps.DecidedIndex,
		Approvals: uint32(approvals), Needed: uint32(replication.Needed(th, len(voters))),
	}
	if ps.State != replication.ProposalPending {
		out.Approvals = uint32(len(ps.Approvals))
	} else if now.After(ps.ExpiresAt.AsTime()) {
		out.State = replication.ProposalExpired
	}
	out.Action, out.Agency, out.Detail = DescribeProposal(ps.Proposal)
	return out
}

// DescribeProposal names a proposal's action, the agency it is about, and
// what else it says.
func DescribeProposal(p *peerpb.Proposal) (action, agency, detail string) {
	switch c := p.GetChange().(type) {
	case *peerpb.Proposal_Invite:
		role := "voter"
		if !c.Invite.GetVoter() {
			role = "non-voter"
		}
		return "invite", c.Invite.GetAgency(), fmt.Sprintf("%s as a %s", c.Invite.GetAddress(), role)
	case *peerpb.Proposal_Remove:
		return "remove", c.Remove, ""
	case *peerpb.Proposal_Promote:
		return "promote", c.Promote, ""
	case *peerpb.Proposal_Rebind:
		var what []string
		if len(c.Rebind.GetCaCert()) > 0 {
			what = append(what, "CA certificate")
		}
		if len(c.Rebind.GetSigningKey()) > 0 {
			what = append(what, "keys")
		}
		return "rebind", c.Rebind.GetAgency(), fmt.Sprint(what)
	case *peerpb.Proposal_Threshold:
		return "threshold", "", "approvals: " + ThresholdName(c.Threshold)
	}
	return "empty", "", ""
}

// ThresholdName is "majority", "all" or the count.
func ThresholdName(th *peerpb.ApprovalThreshold) string {
	switch r := th.GetRule().(type) {
	case *peerpb.ApprovalThreshold_All:
		return "all"
	case *peerpb.ApprovalThreshold_Count:
		return strconv.FormatUint(uint64(r.Count), 10)
	}
	return "majority"
}

// governanceAudit is what this node audits of a governance act the log
// brought (accepted by every FSM): the act with the agencies involved, and
// what it decided at its index — a proposal applied or rejected, others
// expired, a member gone. Taken in with the entry, so audited exactly once.
func (f *Federation) governanceAudit(index uint64, g *peerpb.Governance) []*pb.AuditEvent {
	act := &peerpb.GovernanceAct{}
	if err := proto.Unmarshal(g.Act, act); err != nil {
		f.log.Warn("governance act does not decode", "index", index, "err", err)
		return nil
	}
	now := timestamppb.New(f.now())
	ev := func(agency, action, target, detail string) *pb.AuditEvent {
		return &pb.AuditEvent{Time: now, Agency: agency, Action: action, Target: target, Outcome: "ok",
			Detail: fmt.Sprintf("%s (log index %d, signed at %s)", detail, index, act.GetSignedAt().AsTime().UTC().Format(time.RFC3339))}
	}
	ps, _, err := f.rep.Proposals()
	if err != nil {
		f.log.Warn("proposals", "err", err)
	}
	byID := map[string]*peerpb.ProposalState{}
	for _, p := range ps {
		byID[p.Id] = p
	}
	describe := func(p *peerpb.ProposalState) string {
		action, agency, detail := DescribeProposal(p.GetProposal())
		s := strings.TrimSpace(action + " " + agency)
		if detail != "" {
			s += " (" + detail + ")"
		}
		return s + " proposed by " + p.GetProposedBy()
	}
	var out []*pb.AuditEvent
	var decided *peerpb.ProposalState
	switch a := act.Act.(type) {
	case *peerpb.GovernanceAct_Propose:
		id := strconv.FormatUint(index, 10)
		p := byID[id]
		if p == nil {
			p = &peerpb.ProposalState{Id: id, Proposal: a.Propose, ProposedBy: g.Agency}
		}
		out = append(out, ev(g.Agency, "governance.proposal", "proposal "+id, describe(p)))
		decided = p
	case *peerpb.GovernanceAct_Approve, *peerpb.GovernanceAct_Reject:
		action, verb, list := "governance.approval", "approved", (*peerpb.ProposalState).GetApprovals
		if act.GetReject() != "" {
			action, verb, list = "governance.rejection", "rejected", (*peerpb.ProposalState).GetRejections
		}
		pid := act.GetApprove() + act.GetReject()
		p := byID[pid]
		if p == nil {
			out = append(out, ev(g.Agency, action, "proposal "+pid, verb+" by "+g.Agency))
			break
		}
		// Who had decided so far: those before this agency in the list.
		sofar := list(p)
		if i := slices.Index(sofar, g.Agency); i >= 0 {
			sofar = sofar[:i+1]
		}
		out = append(out, ev(g.Agency, action, "proposal "+pid, fmt.Sprintf("%s: %s by %s", describe(p), verb, strings.Join(sofar, ", "))))
		decided = p
	case *peerpb.GovernanceAct_Leave:
		out = append(out, ev(g.Agency, "membership.left", g.Agency, g.Agency+" left the federation on its own"))
	}
	if decided != nil && decided.DecidedIndex == index {
		switch decided.State {
		case replication.ProposalApplied:
			action, agency, _ := DescribeProposal(decided.Proposal)
			out = append(out, ev(decided.ProposedBy, "membership.changed", strings.TrimSpace(action+" "+agency),
				fmt.Sprintf("proposal %s applied: %s, approved by %s", decided.Id, describe(decided), strings.Join(decided.Approvals, ", "))))
		case replication.ProposalRejected:
			out = append(out, ev(decided.ProposedBy, "governance.rejected", "proposal "+decided.Id,
				fmt.Sprintf("%s: rejected by %s", describe(decided), strings.Join(decided.Rejections, ", "))))
		}
	}
	for _, p := range ps {
		if p.State == replication.ProposalExpired && p.DecidedIndex == index {
			out = append(out, ev(p.ProposedBy, "governance.expiry", "proposal "+p.Id,
				fmt.Sprintf("%s: expired at %s with %d approvals (%s)", describe(p), p.ExpiresAt.AsTime().UTC().Format(time.RFC3339), len(p.Approvals), strings.Join(p.Approvals, ", "))))
		}
	}
	return out
}
