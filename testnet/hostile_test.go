package testnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node"
	"github.com/watchfed/watchfed/node/federation"
	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
)

// TestHostilePartnerNode: on a 3-agency federation, one member's node is
// hostile. With its own node certificate and its agency's keys, it asks the
// leader to remove another agency, to invite agencies (a flood), to take in
// a publication under another agency's id, and to join as another agency;
// its operator runs `peers remove` of another agency on its follower node
// and floods invitations (under protocol 3 pending proposals, bounded); its
// node forwards approvals forged in another agency's name or signed with a
// key not its agency's. Each is refused or left pending and changes nothing; the leader audits what the partner's
// node asked; the honest agencies' records, shared entries and audit chains
// stay intact.
func TestHostilePartnerNode(t *testing.T) {
	l := startLocal(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	de, fr, nl := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	honest := add(t, de, "Honest Designation GmbH")
	waitFor(t, "NL takes in DE's entry", func() bool { _, ok := shared(t, nl)[honest.Record.Id]; return ok })

	// FR must not lead: a leader applies its own operator's changes.
	lead := leaderOtherThan(ctx, t, l, fr, de)
	peer := peerpb.NewPeerServiceClient(nodeConn(t, fr, lead))
	keys := agencyKeys(t, fr)
	forward := func(cmd *peerpb.Command) error {
		data, err := proto.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		_, err = peer.Forward(ctx, &peerpb.ForwardRequest{Command: data})
		return err
	}
	victim := de
	if lead == de {
		victim = nl
	}
	attacks := []struct {
		name string
		cmd  *peerpb.Command
	}{
		{"forged forwarded removal of " + victim.Agency, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{Change: &peerpb.MemberChange_Remove{Remove: victim.Agency}}}}},
		{"publication under " + victim.Agency + "'s id", publicationAs(t, victim.Agency, keys)},
	}
	for i := range 20 {
		attacks = append(attacks, struct {
			name string
			cmd  *peerpb.Command
		}{fmt.Sprintf("invitation %d of a flood", i), &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: &pb.Member{
			Agency: fmt.Sprintf("XX-FLOOD%d", i), Address: "127.0.0.1:1", CaCert: []byte("a CA of FR's making"), Voter: true}}}}}})
	}
	for _, a := range attacks {
		if err := forward(a.cmd); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("%s: Forward = %v; want PermissionDenied", a.name, err)
		}
	}
	other, err := seal.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	pub := other.Public()
	if _, err := peer.Join(ctx, &peerpb.JoinRequest{Member: &pb.Member{Agency: victim.Agency, Address: fr.Addr, SigningKey: pub.Signing, SealingKey: pub.Sealing}}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Join as %s with FR's node certificate = %v; want PermissionDenied", victim.Agency, err)
	}
	waitProtocol(t, l, replication.ProtocolGovernance)
	// Under protocol 3 FR's operator alone gets only pending proposals: a
	// removal of another agency (run on FR's follower node, as on the
	// leader) and an invitation.
	var removal *pb.Proposal
	if err := fr.call(ctx, func(c pb.FederationServiceClient) error {
		resp, err := c.RemovePeer(ctx, &pb.RemovePeerRequest{Agency: victim.Agency})
		removal = resp.GetProposal()
		return err
	}); err != nil || removal.GetState() != "pending" || removal.GetApprovals() != 1 || removal.GetNeeded() != 2 {
		t.Fatalf("peers remove %s on FR's follower node = %v, %v; want a pending proposal with 1 of 2 approvals", victim.Agency, removal, err)
	}
	// A flood of invitations by FR's operator: proposals, bounded.
	accepted := 0
	for i := range 2 * replication.MaxPendingProposals {
		err := fr.call(ctx, func(c pb.FederationServiceClient) error {
			resp, err := c.InvitePeer(ctx, &pb.InvitePeerRequest{Agency: fmt.Sprintf("XX-ALONE%d", i), Address: "127.0.0.1:1", CaCert: caNamed(t, fmt.Sprintf("XX-ALONE%d", i)), Voter: true})
			if err == nil && resp.GetProposal().GetState() != "pending" {
				t.Fatalf("FR inviting alone: %v; want a pending proposal", resp.GetProposal())
			}
			return err
		})
		if err == nil {
			accepted++
		} else if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "pending proposals") {
			t.Fatalf("invitation %d of a flood: %v; want refused for too many pending proposals", i, err)
		}
	}
	if accepted != replication.MaxPendingProposals-1 {
		t.Fatalf("%d invitations of FR's flood pending, want %d (with its removal, %d)", accepted, replication.MaxPendingProposals-1, replication.MaxPendingProposals)
	}
	// Forged approvals of FR's removal proposal, forwarded by FR's node:
	// under another agency's name (signed with FR's key), and in FR's name
	// with a key that is not FR's.
	stranger, err := seal.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for name, cmd := range map[string]*peerpb.Command{
		"approval in " + lead.Agency + "'s name": signedAct(t, lead.Agency, keys, now, removal.Id),
		"approval signed with a stranger's key":  signedAct(t, fr.Agency, stranger, now, removal.Id),
	} {
		if err := forward(cmd); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("%s: Forward = %v; want PermissionDenied", name, err)
		}
	}
	for _, ln := range l.Nodes {
		var ps []*pb.Proposal
		if err := ln.call(ctx, func(c pb.FederationServiceClient) error {
			resp, err := c.ListProposals(ctx, &pb.ListProposalsRequest{})
			ps = resp.GetProposals()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(ps) != replication.MaxPendingProposals {
			t.Fatalf("%s holds %d pending proposals, want FR's %d", ln.Agency, len(ps), replication.MaxPendingProposals)
		}
		for _, p := range ps {
			if p.State != "pending" || p.Approvals != 1 {
				t.Fatalf("%s: proposal %v; want pending with FR's approval alone", ln.Agency, p)
			}
		}
	}

	// Nothing changed: every node lists the three members, all voting, and
	// no flood agency.
	for _, ln := range l.Nodes {
		var peers []*pb.Peer
		if err := ln.call(ctx, func(c pb.FederationServiceClient) error {
			resp, err := c.ListPeers(ctx, &pb.ListPeersRequest{})
			peers = resp.GetPeers()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(peers) != 3 {
			t.Fatalf("%s lists %d peers after the attacks, want 3: %v", ln.Agency, len(peers), peers)
		}
		for _, p := range peers {
			if !p.Voter {
				t.Fatalf("%s: %s no longer votes", ln.Agency, p.Agency)
			}
		}
	}
	// The leader audited what FR's node asked, naming FR.
	for _, want := range []string{"remove " + victim.Agency, "publication of " + victim.Agency, "invite XX-FLOOD0", "join " + victim.Agency} {
		if !auditTarget(t, lead, fr.Agency, want) {
			t.Fatalf("%s's audit log has no refusal of %q by %s", lead.Agency, want, fr.Agency)
		}
	}
	// Honest data intact: DE's entry is still NL's, later writes flow, and
	// every audit chain verifies.
	after := add(t, de, "Published After The Attacks")
	waitFor(t, "NL takes in DE's later entry", func() bool { _, ok := shared(t, nl)[after.Record.Id]; return ok })
	if got := shared(t, nl)[honest.Record.Id]; got != "Honest Designation GmbH v1" {
		t.Fatalf("NL holds %q for DE's entry", got)
	}
	for _, ln := range []*LocalNode{de, nl} {
		v, err := pb.NewAuditServiceClient(conn(t, ln)).VerifyAuditLog(ctx, &pb.VerifyAuditLogRequest{})
		if err != nil || !v.Ok {
			t.Fatalf("%s audit chain: %v, %v", ln.Agency, v, err)
		}
	}
}

// nodeConn dials to's node with a node certificate of from's agency, issued
// by from's CA: what from's node presents to its partners.
func nodeConn(t *testing.T, from, to *LocalNode) *grpc.ClientConn {
	t.Helper()
	ca, err := pki.LoadCA(filepath.Join(from.Dir, "certs"))
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue(pki.IssueRequest{Agency: from.Agency, Name: "hostile-node", Roles: []pki.Role{pki.RoleNode}, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := pki.SaveIssued(is, filepath.Join(t.TempDir(), "node"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pki.Files{CACert: to.Env.CACert, Cert: cert, Key: key}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := grpc.NewClient(to.Addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// agencyKeys reads a node's agency keys from its data directory.
func agencyKeys(t *testing.T, ln *LocalNode) *seal.Keys {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(ln.Dir, node.KeysFile))
	if err != nil {
		t.Fatal(err)
	}
	k, err := seal.UnmarshalKeys(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publicationAs is an (empty) publication claiming origin, signed with keys.
func publicationAs(t *testing.T, origin string, keys *seal.Keys) *peerpb.Command {
	t.Helper()
	pub, err := seal.NewSealer(origin, keys).Seal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &peerpb.Command{Command: &peerpb.Command_Publication{Publication: pub}}
}

// auditTarget reports whether ln's audit log holds a refused peer request by
// agency whose target is target.
func auditTarget(t *testing.T, ln *LocalNode, agency, target string) bool {
	t.Helper()
	resp, err := pb.NewAuditServiceClient(conn(t, ln)).ListAuditEvents(context.Background(), &pb.ListAuditEventsRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range resp.Events {
		if strings.HasPrefix(e.Action, "peer.") && e.Outcome == "denied" && e.Agency == agency && e.Target == target {
			return true
		}
	}
	return false
}

// signedAct is an approval of proposal id in agency's name, signed with keys.
func signedAct(t *testing.T, agency string, keys *seal.Keys, now time.Time, id string) *peerpb.Command {
	t.Helper()
	cmd, err := federation.SignAct(agency, keys.Signing, &peerpb.GovernanceAct{Act: &peerpb.GovernanceAct_Approve{Approve: id}}, now)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// caNamed is the PEM of a new CA of agency.
func caNamed(t *testing.T, agency string) []byte {
	t.Helper()
	ca, err := pki.NewCA(agency)
	if err != nil {
		t.Fatal(err)
	}
	return ca.CertPEM()
}
