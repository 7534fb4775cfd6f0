package node

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/watchfed/watchfed/node/pki"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestRefusedHandshakesCounted: on a node whose federation has member B, a
// certificate of an unknown CA and one of B's CA naming this node's agency
// are refused at the handshake, counted in /metrics, and the impersonation
// is in the audit log.
func TestRefusedHandshakesCounted(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := l.Addr().String()
	l.Close()
	conn := startTestNode(t, func(c *Config) { c.MetricsListen = metricsAddr })
	ctx := context.Background()
	fed := pb.NewFederationServiceClient(conn)
	if _, err := fed.InitFederation(ctx, &pb.InitFederationRequest{}); err != nil {
		t.Fatal(err)
	}
	caB, err := pki.NewCA("B")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fed.InvitePeer(ctx, &pb.InvitePeerRequest{Agency: "B", Address: "127.0.0.1:1", CaCert: caB.CertPEM()}); err != nil {
		t.Fatal(err)
	}
	caX, err := pki.NewCA("X")
	if err != nil {
		t.Fatal(err)
	}
	forge := func(ca *pki.CA, agency string) tls.Certificate {
		tmpl := *ca.Cert // the issuer stays ca's own subject: the chain verifies to ca
		tmpl.Subject.Organization = []string{agency}
		is, err := (&pki.CA{Cert: &tmpl, Key: ca.Key}).Issue(pki.IssueRequest{Agency: agency, Name: "node", Roles: []pki.Role{pki.RoleNode, pki.RoleOperator}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, cert := range []tls.Certificate{forge(caX, "X"), forge(caB, DevAgency)} {
		c, err := tls.Dial("tcp", conn.Target(), &tls.Config{
			MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, NextProtos: []string{"h2"}, // the server is not what is tested
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
		})
		if err == nil {
			// TLS 1.3: the server judges the client's certificate after the
			// client's handshake ends; its verdict is the next read.
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		if err == nil {
			t.Fatal("handshake accepted")
		}
	}

	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if strings.Contains(body, `watchfed_tls_refused_total{direction="in",reason="unknown_ca"} 1`) &&
				strings.Contains(body, `watchfed_tls_refused_total{direction="in",reason="identity_mismatch"} 1`) &&
				strings.Contains(body, "watchfed_identity_mismatch_total 1") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never counted the refusals: %v\n%s", err, body)
		}
		_, _ = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}) // paces the polling by a round trip
	}
	// The event is appended after the count: wait for it.
	for {
		events, err := pb.NewAuditServiceClient(conn).ListAuditEvents(ctx, &pb.ListAuditEventsRequest{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events.Events {
			if ev.Action == "tls.identity_mismatch" && ev.Agency == DevAgency && strings.Contains(ev.Detail, "issued by the CA of agency B") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit event of the impersonation: %v", events.Events)
		}
	}
}
