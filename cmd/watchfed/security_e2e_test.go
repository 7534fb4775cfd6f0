package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// issue makes a certificate with the node's own dev CA through the CLI.
func (n *devNode) issue(name string, roles ...string) []string {
	n.t.Helper()
	args := []string{"certs", "issue", "--dir", filepath.Join(n.dir, "certs"), "--agency", "DEV", "--name", name,
		"--out", filepath.Join(n.t.TempDir(), name)}
	for _, r := range roles {
		args = append(args, "--role", r)
	}
	lines := strings.Fields(n.ok(args...))
	return []string{"WATCHFED_CLIENT_CERT=" + lines[0], "WATCHFED_CLIENT_KEY=" + lines[1]}
}

func TestRolesAreEnforced(t *testing.T) {
	n := startDevNode(t, t.TempDir(), freeAddr(t))
	consumer := n.issue("feed", "consumer")
	analyst := n.issue("ana", "analyst")
	operator := n.issue("op", "operator")

	add := []string{"designations", "add", "--schema", "organization", "--name", "Acme Arms", "--program", "X", "--marking", "GREEN"}
	cases := []struct {
		name string
		env  []string
		args []string
		want int
	}{
		{"consumer cannot read records", consumer, []string{"records", "list"}, exitDenied},
		{"consumer cannot write", consumer, add, exitDenied},
		{"operator cannot write records", operator, add, exitDenied},
		{"operator reads records", operator, []string{"records", "list"}, exitOK},
		{"analyst cannot read the audit log", analyst, []string{"audit", "list"}, exitDenied},
		{"analyst cannot verify the audit log", analyst, []string{"audit", "verify"}, exitDenied},
		{"analyst writes", analyst, add, exitOK},
		{"operator reads the audit log", operator, []string{"audit", "list"}, exitOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := n.cli("", tc.env, tc.args...)
			if r.code != tc.want {
				t.Fatalf("exit %d, want %d; stderr %s", r.code, tc.want, r.stderr)
			}
			if tc.want == exitDenied && !strings.Contains(r.stderr, "PermissionDenied") {
				t.Fatalf("stderr does not say why: %s", r.stderr)
			}
		})
	}
	// Refusals are audited too, with who and the outcome.
	events := decode[[]struct {
		Actor   string `json:"actor"`
		Action  string `json:"action"`
		Outcome string `json:"outcome"`
	}](t, n.ok("audit", "list", "-o", "json", "--limit", "1000"))
	var denied int
	for _, e := range events {
		if e.Outcome == "denied" && (e.Actor == "feed" || e.Actor == "ana" || e.Actor == "op") {
			denied++
		}
	}
	if denied != 5 {
		t.Fatalf("audit log has %d denied calls by the test users, want 5: %+v", denied, events)
	}
}

func TestForeignCAAndNoCertificateRefused(t *testing.T) {
	n := startDevNode(t, t.TempDir(), freeAddr(t))
	other := t.TempDir()
	n.ok("certs", "ca", "--agency", "FR-SBDU", "--dir", other)
	lines := strings.Fields(n.ok("certs", "issue", "--dir", other, "--agency", "FR-SBDU", "--name", "mallory", "--role", "analyst", "--role", "operator"))
	r := n.cli("", []string{"WATCHFED_CLIENT_CERT=" + lines[0], "WATCHFED_CLIENT_KEY=" + lines[1]}, "records", "list")
	if r.code == 0 || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("foreign CA: exit %d, stderr %s", r.code, r.stderr)
	}

	// No client certificate at all: the TLS handshake fails, no RPC runs.
	caPEM, err := os.ReadFile(n.envValue("WATCHFED_CACERT"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	conn, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = pb.NewRecordServiceClient(conn).ListRecords(ctx, &pb.ListRecordsRequest{})
	if code := status.Code(err); code != codes.Unavailable {
		t.Fatalf("no certificate: got %v (code %v), want Unavailable from the refused handshake", err, code)
	}

	// TLS 1.2 is refused even with a good certificate.
	cert, err := tls.LoadX509KeyPair(n.envValue("WATCHFED_CLIENT_CERT"), n.envValue("WATCHFED_CLIENT_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := tls.Dial("tcp", n.addr, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12, NextProtos: []string{"h2"}})
	if err == nil {
		raw.Close()
		t.Fatal("a TLS 1.2 handshake succeeded")
	}
}
