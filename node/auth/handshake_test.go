package auth

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/credentials"

	"github.com/watchfed/watchfed/node/pki"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

type party struct {
	ca   *pki.CA
	cert tls.Certificate
}

func issue(t *testing.T, ca *pki.CA, agency, name string, role pki.Role) tls.Certificate {
	t.Helper()
	is, err := ca.Issue(pki.IssueRequest{Agency: agency, Name: name, Roles: []pki.Role{role}, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newCA(t *testing.T, agency string) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(agency)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// forge has agency from's CA issue a certificate naming agency as: what a
// member that turned hostile (or stole a member's CA key) can do.
func forge(t *testing.T, from *pki.CA, as, name string) tls.Certificate {
	t.Helper()
	tmpl := *from.Cert // keeps the issuer's raw subject: the chain verifies to from
	tmpl.Subject.Organization = []string{as}
	return issue(t, &pki.CA{Cert: &tmpl, Key: from.Key}, as, name, pki.RoleNode)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }
func counter(c interface{ Write(*dto.Metric) error }) float64 {
	m := &dto.Metric{}
	_ = c.Write(m)
	return m.GetCounter().GetValue()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestHandshakesRefused runs real TLS 1.3 handshakes against a node of
// agency A whose federation also has member B: a certificate of an unknown
// CA, one of B's CA naming A, and others, are each refused, counted by
// reason, logged at most once a minute per address and reason with the
// count of those suppressed, and audited.
func TestHandshakesRefused(t *testing.T) {
	caA, caB, caX := newCA(t, "A"), newCA(t, "B"), newCA(t, "X")
	pool := x509.NewCertPool()
	pool.AddCert(caA.Cert)
	pool.AddCert(caB.Cert)
	serverCfg := &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{issue(t, caA, "A", "node-a", pki.RoleNode)},
		ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	}
	var (
		logs   syncBuf
		mu     sync.Mutex
		events []*pb.AuditEvent
		clk    = &clock{now: time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)}
	)
	h := NewHandshakes(HandshakeConfig{
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
		Issuers: func() map[string][]byte { return map[string][]byte{"A": caA.CertPEM(), "B": caB.CertPEM()} },
		Audit:   func(ev *pb.AuditEvent) { mu.Lock(); events = append(events, ev); mu.Unlock() },
		Now:     clk.Now,
	})
	creds := h.Server(credentials.NewTLS(serverCfg))

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	results := make(chan error)
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			conn, _, err := creds.ServerHandshake(c)
			if conn != nil {
				conn.Close()
			}
			c.Close()
			results <- err
		}
	}()
	// dial runs a client handshake and returns the server's verdict.
	dial := func(cert *tls.Certificate, raw string) error {
		t.Helper()
		c, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if raw != "" {
			_, _ = c.Write([]byte(raw))
		} else {
			roots := x509.NewCertPool()
			roots.AddCert(caA.Cert)
			cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"h2"}}
			if cert != nil {
				// Sent whatever CAs the server asks for, as an attacker would.
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
			}
			tc := tls.Client(c, cfg)
			if tc.Handshake() == nil {
				_, _ = tc.Read(make([]byte, 1)) // TLS 1.3: the server judges the client's certificate after
			}
		}
		return <-results
	}

	good := issue(t, caA, "A", "operator-1", pki.RoleOperator)
	partner := issue(t, caB, "B", "node-b", pki.RoleNode)
	unknown := issue(t, caX, "X", "node-x", pki.RoleNode)
	unknownAsA := forge(t, caX, "A", "node-a")
	forged := forge(t, caB, "A", "node-a")
	forgedNobody := forge(t, caB, "Z", "node-z")

	for _, tc := range []struct {
		name   string
		cert   *tls.Certificate
		raw    string
		reason string // "" accepted
	}{
		{"own agency", &good, "", ""},
		{"member", &partner, "", ""},
		{"unknown CA", &unknown, "", ReasonUnknownCA},
		{"unknown CA naming A", &unknownAsA, "", ReasonUnknownCA},
		{"member's CA naming A", &forged, "", ReasonIdentityMismatch},
		{"member's CA naming a non-member", &forgedNobody, "", ReasonIdentityMismatch},
		{"no certificate", nil, "", ReasonNoCertificate},
		{"not TLS", nil, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", ReasonNotTLS},
	} {
		err := dial(tc.cert, tc.raw)
		if tc.reason == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if got, _ := classify(err); got != tc.reason {
			t.Errorf("%s: reason %s, want %s (%v)", tc.name, got, tc.reason, err)
		}
	}
	if n := counter(h.refused.WithLabelValues("in", ReasonUnknownCA)); n != 2 {
		t.Errorf("unknown_ca counted %v, want 2", n)
	}
	if n := counter(h.mismatch); n != 2 {
		t.Errorf("identity mismatches counted %v, want 2", n)
	}
	log := logs.String()
	for _, want := range []string{
		"reason=unknown_ca", `certificate="\"CN=node-x,OU=node,O=X\""`,
		"reason=identity_mismatch", "names agency A but was issued by the CA of agency B",
		"reason=no_certificate", "reason=not_tls",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	// Both mismatches came from one address within the minute: one line.
	if n := strings.Count(log, "reason=identity_mismatch"); n != 1 {
		t.Errorf("%d identity_mismatch lines within a minute, want 1:\n%s", n, log)
	}
	for range 3 {
		if dial(&forged, "") == nil {
			t.Fatal("forged certificate accepted")
		}
	}
	clk.Add(time.Minute)
	if dial(&forged, "") == nil {
		t.Fatal("forged certificate accepted")
	}
	log = logs.String()
	if n := strings.Count(log, "reason=identity_mismatch"); n != 2 || !strings.Contains(log, "suppressed=4") {
		t.Errorf("after a minute: %d lines (want 2), the second with suppressed=4:\n%s", n, log)
	}
	if n := counter(h.refused.WithLabelValues("in", ReasonIdentityMismatch)); n != 6 {
		t.Errorf("identity_mismatch refusals counted %v, want 6", n)
	}
	mu.Lock()
	defer mu.Unlock()
	var mismatchEvents int
	for _, ev := range events {
		if ev.Action == "tls.identity_mismatch" && ev.Agency == "A" && ev.Outcome == "denied" && strings.Contains(ev.Detail, "agency B") {
			mismatchEvents++
		}
	}
	if mismatchEvents != 2 {
		t.Errorf("%d identity mismatch audit events, want 2: %v", mismatchEvents, events)
	}
}

func TestLimiterBounded(t *testing.T) {
	l := limiter{every: time.Minute, seen: map[limitKey]*limitSlot{}}
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	key := func(i int) limitKey {
		return limitKey{"in", net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).String(), "unknown_ca"}
	}
	let := 0
	for i := range maxKeys * 2 {
		if ok, _ := l.allow(key(i), now); ok {
			let++
		}
	}
	if len(l.seen) > maxKeys+1 {
		t.Fatalf("%d keys held, at most %d", len(l.seen), maxKeys+1)
	}
	if let != maxPerInterval {
		t.Fatalf("%d events let through from a flood of %d addresses in a minute, want %d", let, maxKeys*2, maxPerInterval)
	}
	// A minute later an address held back reports what it was refused meanwhile.
	ok, suppressed := l.allow(key(maxPerInterval), now.Add(time.Minute))
	if !ok || suppressed != 1 {
		t.Fatalf("a minute later: let through %v with %d suppressed, want true with 1", ok, suppressed)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&MismatchError{Claimed: "A", Issuer: "B"}, ReasonIdentityMismatch},
		{x509.UnknownAuthorityError{}, ReasonUnknownCA},
		{&tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired}}, ReasonBadCertificate},
		{errors.New("tls: client didn't provide a certificate"), ReasonNoCertificate},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, ReasonNotTLS},
		{fmt.Errorf("remote error: %w", tls.AlertError(42)), ReasonAlert},
		{io.EOF, ReasonAborted},
		{fmt.Errorf("handshake: %w", context.DeadlineExceeded), ReasonAborted},
		{errors.New("tls: client offered only unsupported versions: [303]"), ReasonProtocol},
	} {
		if got, _ := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
