package api

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// fakeGovernance records the acts it is asked to sign; with needed 1 a
// proposal applies at once.
type fakeGovernance struct {
	active    bool
	needed    uint32
	proposed  []*peerpb.Proposal
	decisions []string // "approve 7", "reject 7"
	left      bool
}

func (f *fakeMembership) Member(a string) (*pb.Member, error) {
	for _, m := range f.members {
		if m.Agency == a {
			return m, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "no member %s", a)
}
func (f *fakeMembership) Remove(_ context.Context, a string) (uint64, error) {
	f.removed = a
	return 9, nil
}

func (g *fakeGovernance) GovernanceActive() bool { return g.active }
func (g *fakeGovernance) WaitGovernance(context.Context) error {
	if !g.active {
		return status.Error(codes.Unavailable, "protocol 3 not active")
	}
	return nil
}
func (g *fakeGovernance) Propose(_ context.Context, p *peerpb.Proposal) (*pb.Proposal, error) {
	g.proposed = append(g.proposed, p)
	state := "pending"
	if g.needed <= 1 {
		state = "applied"
	}
	return &pb.Proposal{Id: "12", Action: "remove", Agency: p.GetRemove() + p.GetInvite().GetAgency(), ProposedBy: agency, Approvals: 1, Needed: g.needed, State: state}, nil
}
func (g *fakeGovernance) Decide(_ context.Context, id string, approve bool) (*pb.Proposal, error) {
	if id != "12" {
		return nil, status.Errorf(codes.NotFound, "no proposal %q", id)
	}
	g.decisions = append(g.decisions, map[bool]string{true: "approve ", false: "reject "}[approve]+id)
	return &pb.Proposal{Id: id, Action: "remove", Agency: "FR-SBDU", ProposedBy: "BE-FPS", Approvals: 2, Needed: 2, State: "applied"}, nil
}
func (g *fakeGovernance) Leave(context.Context) (uint64, error) { g.left = true; return 30, nil }
func (g *fakeGovernance) Proposals(bool) ([]*pb.Proposal, string, error) {
	return []*pb.Proposal{{Id: "12", Action: "remove", Agency: "FR-SBDU", ProposedBy: "BE-FPS", Approvals: 1, Needed: 2, State: "pending"}}, "majority", nil
}

// TestGovernanceHandlers: under protocol 3 an invitation and a removal of
// another agency are proposals, a removal of oneself is refused (an agency
// leaves on its own); before protocol 3 the registry changes as it always
// did and approvals, rejections and leaving are refused; ids are checked;
// every call is audited with its target; an analyst may do none of it.
func TestGovernanceHandlers(t *testing.T) {
	ca, err := pki.NewCA(agency)
	if err != nil {
		t.Fatal(err)
	}
	operator := newCaller(t, ca, "otto", pki.RoleOperator)
	analyst := newCaller(t, ca, "anna", pki.RoleAnalyst)
	partnerCA, err := pki.NewCA("FR-SBDU")
	if err != nil {
		t.Fatal(err)
	}
	const svcName = "/watchfed.v1.FederationService/"
	type env struct {
		svc *federationService
		fed *fakeMembership
		gov *fakeGovernance
	}
	tests := []struct {
		name     string
		active   bool
		needed   uint32
		by       caller
		method   string
		run      func(ctx context.Context, e env) (any, error)
		code     codes.Code
		errHas   string
		target   string
		check    func(t *testing.T, resp any, e env)
		noChange bool
	}{
		{name: "removal under protocol 3 is a pending proposal", active: true, needed: 2, by: operator, method: "RemovePeer",
			run: func(ctx context.Context, e env) (any, error) {
				return e.svc.RemovePeer(ctx, &pb.RemovePeerRequest{Agency: "FR-SBDU"})
			}, target: "FR-SBDU",
			check: func(t *testing.T, resp any, e env) {
				p := resp.(*pb.RemovePeerResponse).GetProposal()
				if p.GetState() != "pending" || len(e.gov.proposed) != 1 || e.gov.proposed[0].GetRemove() != "FR-SBDU" {
					t.Errorf("proposal %v, proposed %v; want a pending removal of FR-SBDU", p, e.gov.proposed)
				}
				if e.fed.removed != "" {
					t.Errorf("the registry was changed directly (removed %s)", e.fed.removed)
				}
			}},
		{name: "removal of oneself under protocol 3", active: true, needed: 2, by: operator, method: "RemovePeer",
			run: func(ctx context.Context, e env) (any, error) {
				return e.svc.RemovePeer(ctx, &pb.RemovePeerRequest{Agency: agency})
			}, code: codes.FailedPrecondition, errHas: "federation leave", target: agency, noChange: true},
		{name: "removal before protocol 3 changes the registry", by: operator, method: "RemovePeer",
			run: func(ctx context.Context, e env) (any, error) {
				return e.svc.RemovePeer(ctx, &pb.RemovePeerRequest{Agency: "FR-SBDU"})
			}, target: "FR-SBDU",
			check: func(t *testing.T, resp any, e env) {
				if e.fed.removed != "FR-SBDU" || len(e.gov.proposed) != 0 || resp.(*pb.RemovePeerResponse).GetProposal() != nil {
					t.Errorf("removed %q, proposed %v; want FR-SBDU removed without a proposal", e.fed.removed, e.gov.proposed)
				}
			}},
		{name: "invitation under protocol 3, one approval suffices", active: true, needed: 1, by: operator, method: "InvitePeer",
			run: func(ctx context.Context, e env) (any, error) {
				return e.svc.InvitePeer(ctx, &pb.InvitePeerRequest{Agency: "FR-SBDU", Address: "fr.example:7443", CaCert: partnerCA.CertPEM(), Voter: true})
			}, target: "FR-SBDU",
			check: func(t *testing.T, resp any, e env) {
				r := resp.(*pb.InvitePeerResponse)
				if r.GetProposal().GetState() != "applied" || r.GetInvitation().GetAgency() != "FR-SBDU" || len(e.gov.proposed) != 1 ||
					string(e.gov.proposed[0].GetInvite().GetCaCert()) != string(partnerCA.CertPEM()) {
					t.Errorf("response %v, proposed %v; want an applied invitation of FR-SBDU with its CA", r, e.gov.proposed)
				}
				if len(e.fed.members) != 2 {
					t.Errorf("the registry was changed directly: %v", e.fed.members)
				}
			}},
		{name: "approve", active: true, by: operator, method: "ApproveProposal",
			run: func(ctx context.Context, e env) (any, error) {
				return e.svc.ApproveProposal(ctx, &pb.ApproveProposalRequest{Id: "12"})
			}, target: "proposal 12",
			check: func(t *testing.T, resp any, e env) {
				if p := resp.(*pb.ApproveProposalResponse).GetProposal(); p.GetState() != "applied" || len(e.gov.decisions) != 1 || e.gov.decisions[0] != "approve 12" {
					t.Errorf("proposal %v, decisions %v; want 12 approved", p, e.gov.decisions)
				}
			}},
		{name: "reject", active: true, by: operator, method: "RejectProposal",
			run: func(ctx context.Context, e env) (any, error) {
				return e.svc.RejectProposal(ctx, &pb.RejectProposalRequest{Id: "12"})
			}, target: "proposal 12",
			check: func(t *testing.T, _ any, e env) {
				if len(e.gov.decisions) != 1 || e.gov.decisions[0] != "reject 12" {
					t.Errorf("decisions %v; want 12 rejected", e.gov.decisions)
				}
			}},
		{name: "approve a bad id", active: true, by: operator, method: "ApproveProposal",
			run: func(ctx context.Context, e env) (any, error) {
				return e.svc.ApproveProposal(ctx, &pb.ApproveProposalRequest{Id: "12; drop"})
			}, code: codes.InvalidArgument, errHas: "id:", target: "proposal 12; drop", noChange: true},
		{name: "approve no such proposal", active: true, by: operator, method: "ApproveProposal",
			run: func(ctx context.Context, e env) (any, error) {
				return e.svc.ApproveProposal(ctx, &pb.ApproveProposalRequest{Id: "99"})
			}, code: codes.NotFound, errHas: "99", target: "proposal 99", noChange: true},
		{name: "approve before protocol 3", by: operator, method: "ApproveProposal",
			run: func(ctx context.Context, e env) (any, error) {
				return e.svc.ApproveProposal(ctx, &pb.ApproveProposalRequest{Id: "12"})
			}, code: codes.FailedPrecondition, errHas: "protocol 3", target: "proposal 12", noChange: true},
		{name: "an analyst may not approve", active: true, by: analyst, method: "ApproveProposal",
			run: func(ctx context.Context, e env) (any, error) {
				return e.svc.ApproveProposal(ctx, &pb.ApproveProposalRequest{Id: "12"})
			}, code: codes.PermissionDenied, noChange: true},
		{name: "leave", active: true, by: operator, method: "LeaveFederation",
			run: func(ctx context.Context, e env) (any, error) {
				return e.svc.LeaveFederation(ctx, &pb.LeaveFederationRequest{})
			}, target: agency,
			check: func(t *testing.T, resp any, e env) {
				if !e.gov.left || resp.(*pb.LeaveFederationResponse).GetLogIndex() != 30 {
					t.Errorf("left %v, response %v", e.gov.left, resp)
				}
			}},
		{name: "leave before protocol 3", by: operator, method: "LeaveFederation",
			run: func(ctx context.Context, e env) (any, error) {
				return e.svc.LeaveFederation(ctx, &pb.LeaveFederationRequest{})
			}, code: codes.FailedPrecondition, errHas: "peers remove", target: agency, noChange: true},
		{name: "list", active: true, by: operator, method: "ListProposals",
			run: func(ctx context.Context, e env) (any, error) {
				return e.svc.ListProposals(ctx, &pb.ListProposalsRequest{})
			},
			check: func(t *testing.T, resp any, _ env) {
				r := resp.(*pb.ListProposalsResponse)
				if len(r.Proposals) != 1 || r.Proposals[0].Needed != 2 || r.Threshold != "majority" {
					t.Errorf("list %v", r)
				}
			}},
		{name: "init with a bad threshold", by: operator, method: "InitFederation",
			run: func(ctx context.Context, e env) (any, error) {
				return e.svc.InitFederation(ctx, &pb.InitFederationRequest{Approvals: "most"})
			}, code: codes.InvalidArgument, errHas: "approvals:", noChange: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServices()
			fed := &fakeMembership{joined: true, members: []*pb.Member{{Agency: agency, Address: "de.example:7443", Joined: true, Voter: true}, {Agency: "FR-SBDU", Joined: true}}}
			gov := &fakeGovernance{active: tc.active, needed: tc.needed}
			e := env{svc: &federationService{audit: &s.guard.auditor, fed: fed, gov: gov, agency: agency, now: s.guard.now}, fed: fed, gov: gov}
			resp, err := call(s, tc.by, svcName+tc.method, struct{}{}, func(ctx context.Context, _ struct{}) (any, error) { return tc.run(ctx, e) })
			if got := status.Code(err); got != tc.code {
				t.Fatalf("code %v (%v), want %v", got, err, tc.code)
			}
			if tc.errHas != "" && !strings.Contains(status.Convert(err).Message(), tc.errHas) {
				t.Errorf("error %q does not name %q", status.Convert(err).Message(), tc.errHas)
			}
			if tc.check != nil {
				tc.check(t, resp, e)
			}
			if tc.noChange && (len(gov.proposed)+len(gov.decisions) > 0 || gov.left || fed.removed != "") {
				t.Errorf("a refused call acted: proposed %v, decided %v, left %v, removed %q", gov.proposed, gov.decisions, gov.left, fed.removed)
			}
			evs := s.audit.events()
			if len(evs) != 1 || evs[0].Action != "FederationService."+tc.method {
				t.Fatalf("audit events %v, want one FederationService.%s", evs, tc.method)
			}
			if evs[0].Target != tc.target {
				t.Errorf("audit target %q, want %q", evs[0].Target, tc.target)
			}
		})
	}
}

// TestRebindMember: a rebind request names what is wrong with it (checked
// as an invitation is) before anything is proposed.
func TestRebindMember(t *testing.T) {
	frCA, err := pki.NewCA("FR-SBDU")
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := pki.NewCA("NL-CDIU")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	pub := keys.Public()
	for _, tc := range []struct {
		name   string
		req    *pb.RebindPeerRequest
		errHas string // "" : accepted
	}{
		{"new keys", &pb.RebindPeerRequest{Agency: "FR-SBDU", SigningKey: pub.Signing, SealingKey: pub.Sealing}, ""},
		{"a new CA", &pb.RebindPeerRequest{Agency: "FR-SBDU", CaCert: frCA.CertPEM()}, ""},
		{"both", &pb.RebindPeerRequest{Agency: "FR-SBDU", CaCert: frCA.CertPEM(), SigningKey: pub.Signing, SealingKey: pub.Sealing}, ""},
		{"nothing to bind", &pb.RebindPeerRequest{Agency: "FR-SBDU"}, "needs a ca_cert"},
		{"a bad agency id", &pb.RebindPeerRequest{Agency: "fr sbdu", CaCert: frCA.CertPEM()}, "agency:"},
		{"a CA of another agency", &pb.RebindPeerRequest{Agency: "FR-SBDU", CaCert: otherCA.CertPEM()}, "names agency"},
		{"not a certificate", &pb.RebindPeerRequest{Agency: "FR-SBDU", CaCert: []byte("-----BEGIN NOTHING-----")}, "ca_cert:"},
		{"a signing key alone", &pb.RebindPeerRequest{Agency: "FR-SBDU", SigningKey: pub.Signing}, "sealing_key:"},
		{"a sealing key alone", &pb.RebindPeerRequest{Agency: "FR-SBDU", SealingKey: pub.Sealing}, "signing_key:"},
		{"a short signing key", &pb.RebindPeerRequest{Agency: "FR-SBDU", SigningKey: pub.Signing[:31], SealingKey: pub.Sealing}, "signing_key:"},
		{"a sealing key of nothing", &pb.RebindPeerRequest{Agency: "FR-SBDU", SigningKey: pub.Signing, SealingKey: []byte("x")}, "sealing_key:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := rebindMember(tc.req)
			if tc.errHas == "" {
				if err != nil || m.Agency != tc.req.Agency || string(m.CaCert) != string(tc.req.CaCert) || string(m.SigningKey) != string(tc.req.SigningKey) {
					t.Fatalf("rebindMember: %v, %v", m, err)
				}
				return
			}
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("rebindMember: %v; want InvalidArgument with %q", err, tc.errHas)
			}
		})
	}
}
