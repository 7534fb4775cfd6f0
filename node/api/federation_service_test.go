package api

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node/pki"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// fakeMembership is a federation of the members it is given; Invite adds an
// invited one.
type fakeMembership struct {
	Membership
	joined  bool
	members []*pb.Member
	removed string
}

func (f *fakeMembership) Joined() bool                   { return f.joined }
func (f *fakeMembership) Members() ([]*pb.Member, error) { return f.members, nil }
func (f *fakeMembership) Invite(_ context.Context, m *pb.Member) (uint64, error) {
	f.members = append(f.members, m)
	return 7, nil
}

// TestInvitePeer: an invitation names what is wrong with its request, is
// refused on a node in no federation and to anyone but an operator, and
// lists the joined members for the newcomer.
func TestInvitePeer(t *testing.T) {
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
	const invite = "/watchfed.v1.FederationService/InvitePeer"
	good := func() *pb.InvitePeerRequest {
		return &pb.InvitePeerRequest{Agency: "FR-SBDU", Address: "fr.example:7443", CaCert: partnerCA.CertPEM(), Voter: true}
	}
	for _, tc := range []struct {
		name    string
		by      caller
		req     func(*pb.InvitePeerRequest)
		joined  bool
		code    codes.Code
		errHas  string
		outcome string
	}{
		{"an operator invites", operator, func(*pb.InvitePeerRequest) {}, true, codes.OK, "", "ok"},
		{"an analyst may not", analyst, func(*pb.InvitePeerRequest) {}, true, codes.PermissionDenied, "", "denied"},
		{"a bad agency id", operator, func(r *pb.InvitePeerRequest) { r.Agency = "fr sbdu" }, true, codes.InvalidArgument, "agency:", "invalid"},
		{"no address", operator, func(r *pb.InvitePeerRequest) { r.Address = "" }, true, codes.InvalidArgument, "address:", "invalid"},
		{"address with an escape sequence", operator, func(r *pb.InvitePeerRequest) { r.Address = "de\x1b]8;;:7400" }, true, codes.InvalidArgument, "address:", "invalid"},
		{"address without a port", operator, func(r *pb.InvitePeerRequest) { r.Address = "de-bafa.example.org" }, true, codes.InvalidArgument, "address:", "invalid"},
		{"not a CA certificate", operator, func(r *pb.InvitePeerRequest) { r.CaCert = []byte("junk") }, true, codes.InvalidArgument, "ca_cert:", "invalid"},
		{"another agency's CA", operator, func(r *pb.InvitePeerRequest) { r.CaCert = ca.CertPEM() }, true, codes.InvalidArgument, "ca_cert:", "invalid"},
		{"in no federation", operator, func(*pb.InvitePeerRequest) {}, false, codes.FailedPrecondition, "federation init", "conflict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServices()
			fed := &fakeMembership{joined: tc.joined, members: []*pb.Member{{Agency: agency, Address: "de.example:7443", Joined: true, Voter: true}}}
			svc := &federationService{audit: &s.guard.auditor, fed: fed, agency: agency, now: s.guard.now}
			req := good()
			tc.req(req)
			resp, err := call(s, tc.by, invite, req, svc.InvitePeer)
			if got := status.Code(err); got != tc.code {
				t.Fatalf("code %v (%v), want %v", got, err, tc.code)
			}
			if tc.errHas != "" && !strings.Contains(status.Convert(err).Message(), tc.errHas) {
				t.Errorf("error %q does not name %q", status.Convert(err).Message(), tc.errHas)
			}
			if tc.code == codes.OK {
				inv := resp.GetInvitation()
				if inv.GetAgency() != "FR-SBDU" || len(inv.GetMembers()) != 1 || inv.GetMembers()[0].Agency != agency {
					t.Errorf("invitation %v, want FR-SBDU with the one joined member", inv)
				}
				if len(fed.members) != 2 || fed.members[1].Agency != "FR-SBDU" {
					t.Errorf("registry %v, want FR-SBDU invited", fed.members)
				}
			} else if len(fed.members) != 1 {
				t.Errorf("a refused invitation changed the registry: %v", fed.members)
			}
			evs := s.audit.events()
			if len(evs) != 1 || evs[0].Action != "FederationService.InvitePeer" || evs[0].Outcome != tc.outcome {
				t.Fatalf("audit events %v, want one FederationService.InvitePeer %s", evs, tc.outcome)
			}
			if tc.code != codes.PermissionDenied && evs[0].Target != req.Agency {
				t.Errorf("audit target %q, want %q", evs[0].Target, req.Agency)
			}
		})
	}
}
