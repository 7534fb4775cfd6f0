package testnet

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node/pki"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// writePolicy replaces an agency's policy file (write and rename, as an
// editor that saves atomically would).
func writePolicy(t *testing.T, ln *LocalNode, text string) {
	t.Helper()
	tmp := ln.PolicyPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, ln.PolicyPath()); err != nil {
		t.Fatal(err)
	}
}

// policyInForce waits until the node's audit log shows a policy change whose
// diff contains marker.
func policyInForce(t *testing.T, ln *LocalNode, marker string) {
	t.Helper()
	waitFor(t, ln.Agency+" puts the new policy in force", func() bool {
		return auditHas(t, ln, "policy.change", "ok", marker)
	})
}

func auditHas(t *testing.T, ln *LocalNode, action, outcome, detail string) bool {
	t.Helper()
	resp, err := pb.NewAuditServiceClient(conn(t, ln)).ListAuditEvents(context.Background(), &pb.ListAuditEventsRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range resp.Events {
		if e.Action == action && e.Outcome == outcome && strings.Contains(e.Detail, detail) {
			return true
		}
	}
	return false
}

func getShared(t *testing.T, ln *LocalNode, id string) (*pb.Record, error) {
	t.Helper()
	resp, err := pb.NewSharedServiceClient(conn(t, ln)).GetShared(context.Background(), &pb.GetSharedRequest{Id: id})
	return resp.GetEntry().GetRecord(), err
}

func create(t *testing.T, ln *LocalNode, rec *pb.Record) *pb.Record {
	t.Helper()
	resp, err := pb.NewRecordServiceClient(conn(t, ln)).CreateRecord(context.Background(), &pb.CreateRecordRequest{Record: rec})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Record
}

const policyAB = `agency: DE-BAFA
default: deny
partners:
  FR-SBDU:
    kinds: [designation, denial]
    max_marking: AMBER+STRICT
  NL-CDIU:
    kinds: [designation]
    max_marking: GREEN
    redact: [statement, addresses, aliases, identifiers]
`

// TestPolicyPerPartner: DE shares a record fully with FR and redacted with
// NL, and a second record with FR only. FR and NL see exactly that; NL's
// data directory holds none of the redacted values nor the FR-only record;
// consumers of NL get only what their marking allows; widening delivers the
// older record to NL, narrowing leaves NL out of later versions while a
// delisting still reaches it; every change is in DE's audit log; a broken
// file is refused and the last good policy stays in force.
func TestPolicyPerPartner(t *testing.T) {
	l := startLocal(t, 3)
	de, fr, nl := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	writePolicy(t, de, policyAB)
	policyInForce(t, de, "+    redact: [statement, addresses, aliases, identifiers]")

	both := create(t, de, &pb.Record{
		Marking: pb.Marking_MARKING_GREEN,
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_PERSON, Name: "Viktor SHAREDNAME",
			Aliases:     []*pb.Alias{{Name: "Vitya Hiddenalias"}},
			Identifiers: []*pb.Identifier{{Type: pb.IdentifierType_IDENTIFIER_TYPE_PASSPORT, Value: "P77HIDDEN01", Country: "RU"}},
			Addresses:   []*pb.Address{{Street: "Hiddenstreet 9", City: "Minsk", Country: "BY"}}},
		Detail: &pb.Record_Designation{Designation: &pb.Designation{Program: "TEST", Statement: "Statement-only-for-FR: finances the programme"}},
	})
	frOnly := create(t, de, &pb.Record{
		Marking: pb.Marking_MARKING_AMBER,
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: "Frenchonly Logistics"},
		Detail:  &pb.Record_Designation{Designation: &pb.Designation{Program: "TEST", Statement: "Amber statement"}},
	})

	waitFor(t, "FR reads both records", func() bool { return len(shared(t, fr)) == 2 })
	waitFor(t, "NL reads the shared record", func() bool { _, ok := shared(t, nl)[both.Id]; return ok })
	got, err := getShared(t, fr, both.Id)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetDesignation().Statement == "" || len(got.Subject.Addresses) != 1 || len(got.Subject.Aliases) != 1 {
		t.Fatalf("FR's copy is not whole: %v", got)
	}
	got, err = getShared(t, nl, both.Id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject.Name != "Viktor SHAREDNAME" || got.GetDesignation().Statement != "" || len(got.Subject.Addresses) != 0 ||
		len(got.Subject.Aliases) != 0 || len(got.Subject.Identifiers) != 0 || got.GetDesignation().Program != "TEST" {
		t.Fatalf("NL's copy is not redacted as the policy says: %v", got)
	}
	if _, err := getShared(t, nl, frOnly.Id); status.Code(err) != codes.NotFound {
		t.Fatalf("NL got the FR-only record: %v", err)
	}

	// FR's analysts read an AMBER+STRICT record; FR's consumers get only
	// the GREEN and AMBER ones.
	strict := create(t, de, &pb.Record{
		Marking: pb.Marking_MARKING_AMBER_STRICT, RelTo: []string{"FR-SBDU"},
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: "Strict Tooling"},
		Detail:  &pb.Record_Designation{Designation: &pb.Designation{Program: "TEST"}},
	})
	waitFor(t, "FR's analysts read the AMBER+STRICT record", func() bool { _, ok := shared(t, fr)[strict.Id]; return ok })
	feed := consumerConn(t, fr)
	list, err := pb.NewSharedServiceClient(feed).ListShared(context.Background(), &pb.ListSharedRequest{})
	if err != nil || len(list.Entries) != 2 {
		t.Fatalf("FR consumer sees %d entries (%v), want the GREEN and the AMBER one", len(list.GetEntries()), err)
	}

	// FR stops trusting DE's designations for its feeds: its consumers get
	// none, its analysts and replication are unaffected.
	writePolicy(t, fr, "agency: FR-SBDU\ndefault: deny\npartners:\n  DE-BAFA:\n    kinds: [designation, denial]\n    max_marking: GREEN\n"+
		"receive:\n  partners:\n    DE-BAFA:\n      kinds: [denial]\n")
	policyInForce(t, fr, "+      kinds: [denial]")
	list, err = pb.NewSharedServiceClient(feed).ListShared(context.Background(), &pb.ListSharedRequest{})
	if err != nil || len(list.Entries) != 0 {
		t.Fatalf("FR consumer sees %d untrusted entries (%v)", len(list.GetEntries()), err)
	}
	if got := shared(t, fr); len(got) != 3 {
		t.Fatalf("FR's analysts see %d entries after the receive change, want 3", len(got))
	}

	// The raw bytes of NL's data directory hold none of it.
	nl.Stop()
	for _, secret := range []string{"Strict Tooling", "Hiddenalias", "P77HIDDEN01", "Hiddenstreet", "Statement-only-for-FR", "Frenchonly Logistics", "Amber statement"} {
		if hit := grep(t, nl.Dir, secret); hit != "" {
			t.Errorf("NL's %s holds %q", hit, secret)
		}
	}
	if err := l.Restart(context.Background(), nl); err != nil {
		t.Fatal(err)
	}

	// Widening: NL may now have AMBER records; it receives the older
	// FR-only record, redacted for NL, without a new version.
	writePolicy(t, de, strings.Replace(policyAB, "max_marking: GREEN", "max_marking: AMBER", 1))
	policyInForce(t, de, "+    max_marking: AMBER")
	waitFor(t, "NL receives the older record after widening", func() bool { _, ok := shared(t, nl)[frOnly.Id]; return ok })
	got, _ = getShared(t, nl, frOnly.Id)
	if got.Version != 1 || got.GetDesignation().Statement != "" || got.Subject.Name != "Frenchonly Logistics" {
		t.Fatalf("widened copy: %v", got)
	}
	waitFor(t, "DE audits the delivery to NL", func() bool { return auditHas(t, de, "policy.deliver", "ok", "delivered to NL-CDIU") })

	// Narrowing: NL leaves the policy; an amendment reaches FR only, a
	// delisting reaches NL too (it holds the record), stripped.
	writePolicy(t, de, "agency: DE-BAFA\ndefault: deny\npartners:\n  FR-SBDU:\n    kinds: [designation, denial]\n    max_marking: AMBER\n")
	policyInForce(t, de, "-  NL-CDIU:")
	amended := proto.Clone(both).(*pb.Record)
	amended.Subject.Name = "Viktor SHAREDNAME-AMENDED"
	rc := pb.NewRecordServiceClient(conn(t, de))
	if _, err := rc.AmendRecord(context.Background(), &pb.AmendRecordRequest{Record: amended}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "FR reads the amendment", func() bool { return shared(t, fr)[both.Id] == "Viktor SHAREDNAME-AMENDED v2" })
	if _, err := rc.DelistDesignation(context.Background(), &pb.DelistDesignationRequest{Id: both.Id, Reason: "annulled"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "NL learns of the delisting", func() bool { return strings.HasSuffix(shared(t, nl)[both.Id], " v3") })
	got, _ = getShared(t, nl, both.Id)
	if got.GetDesignation().Status != pb.DesignationStatus_DESIGNATION_STATUS_DELISTED || got.GetDesignation().Statement != "" || got.Subject.Name != "Viktor SHAREDNAME-AMENDED" {
		t.Fatalf("NL's delisting: %v", got)
	}
	if h, err := pb.NewSharedServiceClient(conn(t, nl)).ListShared(context.Background(), &pb.ListSharedRequest{IncludeInactive: true}); err != nil || len(h.Entries) != 2 {
		t.Fatalf("NL entries: %v %v", h, err)
	}

	// A broken file is refused whole: status says why, the last good
	// policy stays (FR still receives).
	writePolicy(t, de, "agency: DE-BAFA\ndefault: deny\npartners:\n  FR-SBDU:\n    kinds: [designation]\n    max_marking: GREEN\n    redact: [shoe_size]\n")
	waitFor(t, "status shows the refused file", func() bool {
		st, err := pb.NewFederationServiceClient(conn(t, de)).GetStatus(context.Background(), &pb.GetStatusRequest{})
		return err == nil && strings.Contains(st.PolicyError, ":7: partners.FR-SBDU.redact: unknown field \"shoe_size\"")
	})
	late := create(t, de, &pb.Record{Marking: pb.Marking_MARKING_AMBER,
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: "After The Bad File"},
		Detail:  &pb.Record_Designation{Designation: &pb.Designation{Program: "TEST", Statement: "kept for FR"}}})
	waitFor(t, "FR still receives under the last good policy", func() bool { _, ok := shared(t, fr)[late.Id]; return ok })
	if got, _ := getShared(t, fr, late.Id); got.GetDesignation().Statement != "kept for FR" {
		t.Fatalf("FR's copy under the last good policy: %v", got)
	}
	if !auditHas(t, de, "policy.change", "invalid", "shoe_size") {
		t.Fatal("the refused file is not in the audit log")
	}
}

// consumerConn dials a node with a consumer-role certificate of its agency.
func consumerConn(t *testing.T, ln *LocalNode) *grpc.ClientConn {
	t.Helper()
	ca, err := pki.LoadCA(filepath.Join(ln.Dir, "certs"))
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue(pki.IssueRequest{Agency: ln.Agency, Name: "feed", Roles: []pki.Role{pki.RoleConsumer}})
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := pki.SaveIssued(is, filepath.Join(t.TempDir(), "feed"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pki.Files{CACert: ln.Env.CACert, Cert: cert, Key: key}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := grpc.NewClient(ln.Addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestPolicyRewriteKeepingSizeAndTime: a policy file rewritten in place with
// the same size and modification time (two saves within the file system's
// timestamp granularity) still comes into force: the node's check of size
// and time falls back to reading the file.
func TestPolicyRewriteKeepingSizeAndTime(t *testing.T) {
	l := startLocal(t, 2)
	de, fr := l.Nodes[0], l.Nodes[1]
	pol := func(marking string) string {
		return "agency: " + de.Agency + "\ndefault: deny\npartners:\n  " + fr.Agency +
			":\n    kinds: [designation]\n    max_marking: " + marking + "\n"
	}
	writePolicy(t, de, pol("AMBER"))
	policyInForce(t, de, "+    max_marking: AMBER")
	fi, err := os.Stat(de.PolicyPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(de.PolicyPath(), []byte(pol("GREEN")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(de.PolicyPath(), fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	policyInForce(t, de, "+    max_marking: GREEN")
}
