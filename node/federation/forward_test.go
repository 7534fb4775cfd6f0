package federation

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/auth"
	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
)

// nodeCaller is the context of a call by agency's node, as the server's TLS
// handshake and interceptor leave it: a verified node certificate of that
// agency's own CA.
func nodeCaller(t *testing.T, agency string) context.Context {
	t.Helper()
	ca, err := pki.NewCA(agency)
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue(pki.IssueRequest{Agency: agency, Name: "node", Roles: []pki.Role{pki.RoleNode}, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.ParseCertPEM(is.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	ctx := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{
		State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf, ca.Cert}}},
	}})
	id, err := auth.PeerIdentity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(auth.WithIdentity(ctx, id), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// publication seals an empty-bodied publication claiming origin, signed
// with keys.
func publication(t *testing.T, origin string, keys *seal.Keys) *peerpb.Command {
	t.Helper()
	pub, err := seal.NewSealer(origin, keys).Seal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &peerpb.Command{Command: &peerpb.Command_Publication{Publication: pub}}
}

func memberChange(c *peerpb.MemberChange) *peerpb.Command {
	return &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: c}}
}

// TestForwardSpeaksOnlyForItsAgency: the leader takes from a partner's node
// only what the partner's agency signed. A forged removal, an invitation, a
// publication under this agency's id or with a signature not the partner's
// are refused before they reach the log, change nothing, and leave an audit
// event naming the partner.
func TestForwardSpeaksOnlyForItsAgency(t *testing.T) {
	h := start(t, shareNothing, true)
	svc := &peerService{f: h.fed}
	other, err := seal.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("IT-UAMA")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cmd    *peerpb.Command
		target string // of the audit event; "" if accepted
	}{
		{"forged removal of another agency", memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Remove{Remove: self}}), "remove " + self},
		{"removal of itself, unsigned", memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Remove{Remove: partner}}), "remove " + partner},
		{"invitation of an agency with the partner's CA", memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: &pb.Member{Agency: "IT-UAMA", Address: "127.0.0.1:9", CaCert: ca.CertPEM(), Voter: true, InvitedAt: timestamppb.Now()}}}), "invite IT-UAMA"},
		{"join forwarded", memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: &pb.Member{Agency: partner}}}), "join " + partner},
		{"publication under this agency's id", publication(t, self, h.partner), "publication of " + self},
		{"publication in its name, signed by another key", publication(t, partner, other), "publication of " + partner},
		{"empty command", &peerpb.Command{}, "empty command"},
		{"governance act of another agency", governance(self, h.partner), "governance act of " + self},
		{"governance act in its name, signed by another key", governance(partner, other), "governance act of " + partner},
		{"audit anchor of another agency", anchor(self, 3, h.partner), "audit anchor of " + self + " at 3"},
		{"audit anchor in its name, signed by another key", anchor(partner, 3, other), "audit anchor of " + partner + " at 3"},
		{"its own publication", publication(t, partner, h.partner), ""},
		{"barrier", &peerpb.Command{Command: &peerpb.Command_Barrier{Barrier: &peerpb.Barrier{}}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := nodeCaller(t, partner)
			data, err := proto.Marshal(tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := h.fed.Members()
			applied := h.fed.rep.Applied()
			n := len(h.refusals())
			resp, err := svc.Forward(ctx, &peerpb.ForwardRequest{Command: data})
			if tc.target == "" {
				if err != nil || resp.Index == 0 {
					t.Fatalf("Forward = %v, %v; want it applied", resp, err)
				}
				return
			}
			if status.Code(err) != codes.PermissionDenied {
				t.Fatalf("Forward = %v, %v; want PermissionDenied", resp, err)
			}
			if got := h.fed.rep.Applied(); got != applied {
				t.Fatalf("applied index %d → %d: the refused command reached the log", applied, got)
			}
			after, _ := h.fed.Members()
			if len(after) != len(before) {
				t.Fatalf("registry changed: %d members → %d", len(before), len(after))
			}
			evs := h.refusals()
			if len(evs) != n+1 {
				t.Fatalf("%d audit events, want one more than %d", len(evs), n)
			}
			ev := evs[len(evs)-1]
			if ev.Action != "peer.forward" || ev.Agency != partner || ev.Target != tc.target || ev.Outcome != "denied" || ev.Detail == "" {
				t.Fatalf("audit event %v; want peer.forward by %s of %q, denied, with the reason", ev, partner, tc.target)
			}
		})
	}
	if m, err := h.fed.Member(self); err != nil || !m.Joined {
		t.Fatalf("%s after the attempts: %v, %v; want it still a joined member", self, m, err)
	}
}

// TestJoinOnlyAsItself: a member's node cannot join, or re-key, another
// agency; the attempt is refused and audited.
func TestJoinOnlyAsItself(t *testing.T) {
	h := start(t, shareNothing, true)
	svc := &peerService{f: h.fed}
	keys, err := seal.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	pub := keys.Public()
	_, err = svc.Join(nodeCaller(t, partner), &peerpb.JoinRequest{Member: &pb.Member{Agency: self, Address: "127.0.0.1:9", SigningKey: pub.Signing, SealingKey: pub.Sealing}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Join as %s with %s's certificate = %v; want PermissionDenied", self, partner, err)
	}
	evs := h.refusals()
	if len(evs) != 1 || evs[0].Action != "peer.join" || evs[0].Agency != partner || !strings.Contains(evs[0].Target, self) {
		t.Fatalf("audit events %v; want one peer.join refusal by %s", evs, partner)
	}
	if m, _ := h.fed.Member(self); string(m.SigningKey) == string(pub.Signing) {
		t.Fatalf("%s's signing key was replaced", self)
	}
}

func checkpoint(c *peerpb.Checkpoint) *peerpb.Command {
	return &peerpb.Command{Command: &peerpb.Command_Checkpoint{Checkpoint: c}}
}

// TestNotForwardable: a node forwards its own agency's publications,
// checkpoint reports and barriers; not another's, nor a checkpoint take
// (the leader's), nor an unsigned membership change.
func TestNotForwardable(t *testing.T) {
	keys, err := seal.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cmd  *peerpb.Command
		ok   bool
	}{
		{"own publication", publication(t, self, keys), true},
		{"barrier", &peerpb.Command{Command: &peerpb.Command_Barrier{Barrier: &peerpb.Barrier{}}}, true},
		{"another agency's publication", publication(t, partner, keys), false},
		{"invitation", memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: &pb.Member{Agency: partner}}}), false},
		{"removal", memberChange(&peerpb.MemberChange{Change: &peerpb.MemberChange_Remove{Remove: partner}}), false},
		{"empty", &peerpb.Command{}, false},
		{"own audit anchor", anchor(self, 1, keys), true},
		{"another agency's audit anchor", anchor(partner, 1, keys), false},
		{"own checkpoint report", checkpoint(&peerpb.Checkpoint{Index: 9, StateHash: make([]byte, 32), Agency: self}), true},
		{"another agency's checkpoint report", checkpoint(&peerpb.Checkpoint{Index: 9, StateHash: make([]byte, 32), Agency: partner}), false},
		{"checkpoint take", checkpoint(&peerpb.Checkpoint{}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := notForwardable(tc.cmd, self); (err == nil) != tc.ok {
				t.Fatalf("notForwardable = %v; want forwardable %v", err, tc.ok)
			}
		})
	}
}

func (h *harness) refusals() []*pb.AuditEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*pb.AuditEvent(nil), h.appended...)
}

// governance is a removal proposal in agency's name, signed with keys.
func governance(agency string, keys *seal.Keys) *peerpb.Command {
	act, _ := proto.Marshal(&peerpb.GovernanceAct{Agency: agency, SignedAt: timestamppb.Now(),
		Act: &peerpb.GovernanceAct_Propose{Propose: &peerpb.Proposal{Change: &peerpb.Proposal_Remove{Remove: "XX"}}}})
	return &peerpb.Command{Command: &peerpb.Command_Governance{Governance: &peerpb.Governance{
		Agency: agency, Act: act, Signature: ed25519.Sign(keys.Signing, replication.GovernanceMessage(agency, act)),
	}}}
}

// anchor is an audit anchor in agency's name at seq, signed with keys.
func anchor(agency string, seq uint64, keys *seal.Keys) *peerpb.Command {
	a := &peerpb.AuditAnchor{Agency: agency, Sequence: seq, HeadHash: make([]byte, 32), SignedAt: timestamppb.Now()}
	a.Signature = ed25519.Sign(keys.Signing, replication.AnchorMessage(a))
	return &peerpb.Command{Command: &peerpb.Command_AuditAnchor{AuditAnchor: a}}
}
