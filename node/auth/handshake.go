package auth

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/pki"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Reasons a TLS handshake is refused, as logged and counted.
const (
	ReasonUnknownCA        = "unknown_ca"        // the certificate's CA is no member's
	ReasonIdentityMismatch = "identity_mismatch" // a member's CA vouching for another agency
	ReasonBadCertificate   = "bad_certificate"   // expired, wrong usage or names nobody
	ReasonNoCertificate    = "no_certificate"    // a client without a certificate
	ReasonNotTLS           = "not_tls"           // plain text or garbage on the port
	ReasonAlert            = "alert"             // the other side refused us
	ReasonProtocol         = "protocol"          // TLS version, cipher or other protocol failure
	ReasonAborted          = "aborted"           // the connection closed or timed out mid-handshake
)

// MismatchError is a certificate from a member's CA naming another agency:
// a partner (or whoever holds its CA key) speaking for someone else.
type MismatchError struct {
	Claimed string // the agency the certificate names
	Issuer  string // the agency whose registered CA issued it ("" if none)
	Subject string
}

func (e *MismatchError) Error() string {
	issuer := "no agency's registered CA"
	if e.Issuer != "" {
		issuer = "the CA of agency " + e.Issuer
	}
	return fmt.Sprintf("certificate %s names agency %s but was issued by %s", e.Subject, e.Claimed, issuer)
}

// HandshakeConfig sets up a Handshakes.
type HandshakeConfig struct {
	Logger *slog.Logger
	// Issuers returns, per agency, the CA certificates (PEM) registered for
	// it, this node's own agency included.
	Issuers func() map[string][]byte
	// Audit, if set, takes an event for each refusal that is logged.
	Audit func(*pb.AuditEvent)
	// Every is the log and audit interval per peer address and reason
	// (default one minute).
	Every time.Duration
	Now   func() time.Time
}

// Handshakes watches the node's TLS handshakes, both ways: it refuses a
// certificate whose issuing CA is not the one registered for the agency it
// names, and makes every refused handshake visible: a log line and an
// audit event at most once per peer address and reason per interval (with
// the count of those suppressed), and a counter for /metrics.
type Handshakes struct {
	cfg      HandshakeConfig
	refused  *prometheus.CounterVec
	mismatch prometheus.Counter
	limit    limiter
}

// NewHandshakes returns a watch with its counters.
func NewHandshakes(cfg HandshakeConfig) *Handshakes {
	if cfg.Every == 0 {
		cfg.Every = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handshakes{
		cfg: cfg,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchfed_tls_refused_total",
			Help: "TLS handshakes refused, by direction (in: a caller; out: a partner this node dialled) and reason.",
		}, []string{"direction", "reason"}),
		mismatch: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchfed_identity_mismatch_total",
			Help: "Certificates from a member's CA naming another agency (also counted in watchfed_tls_refused_total).",
		}),
		limit: limiter{every: cfg.Every, seen: map[limitKey]*limitSlot{}},
	}
}

// Collectors are the counters to register with the node's metrics.
func (h *Handshakes) Collectors() []prometheus.Collector {
	return []prometheus.Collector{h.refused, h.mismatch}
}

// Server wraps a server's transport credentials.
func (h *Handshakes) Server(c credentials.TransportCredentials) credentials.TransportCredentials {
	return &watched{TransportCredentials: c, h: h}
}

// Client wraps a client's transport credentials (the node dialling partners).
func (h *Handshakes) Client(c credentials.TransportCredentials) credentials.TransportCredentials {
	return &watched{TransportCredentials: c, h: h, client: true}
}

type watched struct {
	credentials.TransportCredentials
	h      *Handshakes
	client bool
}

func (w *watched) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := w.TransportCredentials.ServerHandshake(raw)
	return w.h.finish("in", raw.RemoteAddr(), conn, info, err)
}

func (w *watched) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := w.TransportCredentials.ClientHandshake(ctx, authority, raw)
	return w.h.finish("out", raw.RemoteAddr(), conn, info, err)
}

func (w *watched) Clone() credentials.TransportCredentials {
	return &watched{TransportCredentials: w.TransportCredentials.Clone(), h: w.h, client: w.client}
}

// finish checks the identity binding of a completed handshake and records
// a refusal.
func (h *Handshakes) finish(dir string, peer net.Addr, conn net.Conn, info credentials.AuthInfo, err error) (net.Conn, credentials.AuthInfo, error) {
	if err == nil {
		if err = h.checkBinding(info); err != nil {
			conn.Close()
		}
	}
	if err != nil {
		h.refuse(dir, peer, err)
		return nil, nil, err
	}
	return conn, info, nil
}

// checkBinding holds a certificate to its agency: the CA that issued it must
// be the one registered for the agency it names. Chain verification only
// proves some member's CA issued it.
func (h *Handshakes) checkBinding(info credentials.AuthInfo) error {
	ti, ok := info.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return errors.New("no verified certificate")
	}
	leaf := ti.State.VerifiedChains[0][0]
	id, err := pki.IdentityOf(leaf)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", subjectOf(leaf), err)
	}
	issuers := h.cfg.Issuers()
	owner := ""
	for _, chain := range ti.State.VerifiedChains {
		root := chain[len(chain)-1]
		if holdsCert(issuers[id.Agency], root) {
			return nil
		}
		for agency, pemCAs := range issuers {
			if holdsCert(pemCAs, root) {
				owner = agency
			}
		}
	}
	return &MismatchError{Claimed: id.Agency, Issuer: owner, Subject: subjectOf(leaf)}
}

// holdsCert reports whether the PEM bundle holds the certificate.
func holdsCert(pemCerts []byte, c *x509.Certificate) bool {
	for len(pemCerts) > 0 {
		var b *pem.Block
		b, pemCerts = pem.Decode(pemCerts)
		if b == nil {
			return false
		}
		if b.Type == "CERTIFICATE" && bytes.Equal(b.Bytes, c.Raw) {
			return true
		}
	}
	return false
}

// refuse counts a refused handshake, and logs and audits it unless one of
// the same peer and reason was logged within the interval.
func (h *Handshakes) refuse(dir string, peer net.Addr, err error) {
	reason, cert := classify(err)
	h.refused.WithLabelValues(dir, reason).Inc()
	var mm *MismatchError
	if errors.As(err, &mm) {
		h.mismatch.Inc()
	}
	if reason == ReasonAborted || h.cfg.Logger == nil {
		return // a client hanging up is not a refusal worth a line
	}
	host := peer.String()
	if hp, _, e := net.SplitHostPort(host); e == nil {
		host = hp
	}
	ok, suppressed := h.limit.allow(limitKey{dir, host, reason}, h.cfg.Now())
	if !ok {
		return
	}
	attrs := []any{"direction", dir, "peer", peer.String(), "reason", reason, "err", safe(err.Error())}
	if cert != "" {
		attrs = append(attrs, "certificate", cert)
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	h.cfg.Logger.Warn("TLS handshake refused", attrs...)
	if h.cfg.Audit != nil {
		detail := fmt.Sprintf("%s %s: %s", dir, reason, safe(err.Error()))
		if suppressed > 0 {
			detail += fmt.Sprintf(" (and %d more from this address since the last event)", suppressed)
		}
		ev := &pb.AuditEvent{Time: timestamppb.New(h.cfg.Now()), Action: "tls.refused", Target: peer.String(), Outcome: "denied", Detail: detail}
		if mm != nil {
			ev.Action, ev.Agency = "tls.identity_mismatch", safe(mm.Claimed)
		}
		h.cfg.Audit(ev)
	}
}

// classify names the reason of a handshake error and the certificate it
// concerns, if any.
func classify(err error) (reason, cert string) {
	var (
		mm      *MismatchError
		unknown x509.UnknownAuthorityError
		invalid x509.CertificateInvalidError
		host    x509.HostnameError
		verify  *tls.CertificateVerificationError
		header  tls.RecordHeaderError
		alert   tls.AlertError
		netErr  net.Error
	)
	if errors.As(err, &verify) && len(verify.UnverifiedCertificates) > 0 {
		cert = subjectOf(verify.UnverifiedCertificates[0])
	}
	switch {
	case errors.As(err, &mm):
		return ReasonIdentityMismatch, mm.Subject
	case errors.As(err, &unknown):
		if unknown.Cert != nil {
			cert = subjectOf(unknown.Cert)
		}
		return ReasonUnknownCA, cert
	case errors.As(err, &invalid), errors.As(err, &host), verify != nil:
		return ReasonBadCertificate, cert
	case strings.Contains(err.Error(), "didn't provide a certificate"):
		return ReasonNoCertificate, ""
	case errors.As(err, &header):
		return ReasonNotTLS, ""
	case errors.As(err, &alert):
		return ReasonAlert, ""
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.As(err, &netErr) && netErr.Timeout():
		return ReasonAborted, ""
	case strings.HasPrefix(err.Error(), "certificate ") || strings.Contains(err.Error(), "no verified certificate"):
		return ReasonBadCertificate, cert // names nobody: checkBinding's own errors
	}
	return ReasonProtocol, cert
}

// subjectOf names a certificate for a log line; its text is the peer's, so
// it is quoted with anything unprintable escaped.
func subjectOf(c *x509.Certificate) string {
	return strconv.Quote(c.Subject.String())
}

// safe escapes what a peer may have put in an error's text.
func safe(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// limiter lets one event per key through per interval, and at most
// maxPerInterval in all, and counts the rest: a flood from many addresses
// neither floods the log and the audit log nor grows the limiter, which
// holds at most maxKeys keys (past that, addresses share one key).
type limiter struct {
	mu          sync.Mutex
	every       time.Duration
	seen        map[limitKey]*limitSlot
	windowStart time.Time
	windowCount int
}

type limitKey struct{ dir, host, reason string }

type limitSlot struct {
	last       time.Time // zero until an event of the key was let through
	suppressed int
}

const (
	maxKeys        = 4096
	maxPerInterval = 100
)

func (l *limiter) allow(k limitKey, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.seen[k]
	if !ok && len(l.seen) >= maxKeys {
		for key, slot := range l.seen {
			if !slot.last.IsZero() && now.Sub(slot.last) >= l.every { // held-back counts stay until reported
				delete(l.seen, key)
			}
		}
		if len(l.seen) >= maxKeys {
			k.host = "*"
			s, ok = l.seen[k]
		}
	}
	if !ok {
		s = &limitSlot{}
		l.seen[k] = s
	}
	if !s.last.IsZero() && now.Sub(s.last) < l.every {
		s.suppressed++
		return false, 0
	}
	if now.Sub(l.windowStart) >= l.every {
		l.windowStart, l.windowCount = now, 0
	}
	if l.windowCount >= maxPerInterval {
		s.suppressed++
		return false, 0
	}
	l.windowCount++
	n := s.suppressed
	s.last, s.suppressed = now, 0
	return true, n
}
