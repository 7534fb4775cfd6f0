package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// These tests put the node's PeerService on a real port under mutual TLS
// 1.3, as a node serves it, and call it as the partner's node would: with
// the partner's node certificate, through the connections a node keeps.

// tlsLeader is a harness whose node has a real CA and certificate, and the
// partner's node's client side.
type tlsLeader struct {
	*harness
	serverTLS *tls.Config
	partner   *tls.Config // the partner's node dialling this one
	accepted  atomic.Int64
}

func startTLSLeader(t *testing.T) *tlsLeader {
	t.Helper()
	selfCA, err := pki.NewCA(self)
	if err != nil {
		t.Fatal(err)
	}
	partnerCA, err := pki.NewCA(partner)
	if err != nil {
		t.Fatal(err)
	}
	l := &tlsLeader{
		serverTLS: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{nodeCert(t, selfCA)}, ClientAuth: tls.RequireAndVerifyClientCert},
	}
	roots := x509.NewCertPool()
	roots.AddCert(selfCA.Cert)
	l.partner = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{nodeCert(t, partnerCA)}, RootCAs: roots}
	l.harness = startWith(t, shareNothing, true, l.serverTLS, selfCA.CertPEM(), partnerCA.CertPEM())
	return l
}

func nodeCert(t *testing.T, ca *pki.CA) tls.Certificate {
	t.Helper()
	agency := ca.Cert.Subject.Organization[0]
	is, err := ca.Issue(pki.IssueRequest{Agency: agency, Name: "node", Roles: []pki.Role{pki.RoleNode}, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// countingListener counts the connections it accepted: one per TCP and TLS
// handshake of a caller.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// serve serves the node's PeerService on addr ("127.0.0.1:0": a free port)
// as a node does, and returns its address and a stop that kills it.
func (l *tlsLeader) serve(t *testing.T, addr string) (string, func()) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(l.fed.Handshakes().Server(credentials.NewTLS(l.fed.ServerTLS()))))
	l.fed.Register(s)
	go s.Serve(countingListener{lis, &l.accepted})
	t.Cleanup(s.Stop)
	return lis.Addr().String(), s.Stop
}

// partnerConns are the partner's node's connections.
func (l *tlsLeader) partnerConns(t *testing.T) *peerConns {
	t.Helper()
	conns := newPeerConns(func(addr string) (*grpc.ClientConn, error) {
		return grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(l.partner)))
	})
	t.Cleanup(conns.Close)
	return conns
}

// partnerPublication is a publication of one entry by the partner (or, with
// origin another agency, one the partner's node has no business sending).
func (l *tlsLeader) partnerPublication(t *testing.T, origin string, i int) []byte {
	t.Helper()
	pub, err := seal.NewSealer(origin, l.harness.partner).Seal([]seal.Item{{
		Header: &peerpb.EnvelopeHeader{EntryId: fmt.Sprintf("%s/%d", origin, i), Version: 1, Kind: pb.Kind_KIND_DESIGNATION, Marking: pb.Marking_MARKING_GREEN},
		Bodies: []seal.BodyPlain{{Plaintext: []byte("x")}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(&peerpb.Command{Command: &peerpb.Command_Publication{Publication: pub}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// partnerEntries are the partner's entries in the log, by id, with their index.
func (l *tlsLeader) partnerEntries(t *testing.T) map[string]uint64 {
	t.Helper()
	es, err := l.fed.rep.Entries(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, e := range es {
		for _, env := range e.Body.Envelopes {
			out[env.Header.EntryId] = e.Index
		}
	}
	return out
}

// TestForwardsShareOneConnection: a follower's publications are forwarded
// many at once over one connection, and committed in the order sent; status
// calls use the same connection; when the leader's node is killed and
// started again, the follower connects again by itself and forwards go on.
func TestForwardsShareOneConnection(t *testing.T) {
	l := startTLSLeader(t)
	addr, kill := l.serve(t, "127.0.0.1:0")
	conns := l.partnerConns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pc, err := conns.get(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 32
	waits := make([]func(context.Context) (uint64, error), n)
	for i := range waits {
		if waits[i], err = pc.fwd.submit(l.partnerPublication(t, partner, i)); err != nil {
			t.Fatalf("forward %d: %v", i, err)
		}
	}
	var last uint64
	for i, wait := range waits {
		idx, err := wait(ctx)
		if err != nil {
			t.Fatalf("forward %d: %v", i, err)
		}
		if idx <= last {
			t.Fatalf("forward %d committed at %d, after forward %d at %d: order not kept", i, idx, i-1, last)
		}
		last = idx
	}
	again, err := conns.get(addr, nil)
	if err != nil || again != pc {
		t.Fatalf("second get = %p, %v; want the same connection %p", again, err, pc)
	}
	if _, err := (peerClient{again.conn}).GetNodeStatus(ctx, &peerpb.GetNodeStatusRequest{}); err != nil {
		t.Fatalf("status over the kept connection: %v", err)
	}
	if got := l.accepted.Load(); got != 1 {
		t.Fatalf("%d forwards and a status call made %d connections; want 1", n, got)
	}

	kill()
	l.serve(t, addr) // the leader's node back on its address
	i := n
	waitUntil(t, ctx, func() bool {
		i++
		wait, err := pc.fwd.submit(l.partnerPublication(t, partner, i))
		if err != nil {
			return false
		}
		idx, err := wait(ctx)
		return err == nil && idx > last
	}, "a forward to the restarted leader")
	if got := l.accepted.Load(); got != 2 {
		t.Fatalf("%d connections after the leader's restart; want 2 (one each)", got)
	}
}

// TestForwardStreamRefusals: a stream carries only its caller's agency's
// commands, numbered without gaps; the first refused ends it, audited, and
// nothing sent after it reaches the log.
func TestForwardStreamRefusals(t *testing.T) {
	l := startTLSLeader(t)
	addr, _ := l.serve(t, "127.0.0.1:0")
	pc, err := l.partnerConns(t).get(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		reqs  func(i int) []*peerpb.ForwardStreamRequest // i: a fresh entry number
		code  codes.Code
		audit string // the refusal's audit target; "" if none
	}{
		{"another agency's publication", func(i int) []*peerpb.ForwardStreamRequest {
			return []*peerpb.ForwardStreamRequest{
				{Sequence: 1, Command: l.partnerPublication(t, partner, i)},
				{Sequence: 2, Command: l.partnerPublication(t, self, i+1)},
				{Sequence: 3, Command: l.partnerPublication(t, partner, i+2)},
			}
		}, codes.PermissionDenied, "publication of " + self},
		{"a gap in the sequence", func(i int) []*peerpb.ForwardStreamRequest {
			return []*peerpb.ForwardStreamRequest{
				{Sequence: 1, Command: l.partnerPublication(t, partner, i)},
				{Sequence: 3, Command: l.partnerPublication(t, partner, i+1)},
				{Sequence: 4, Command: l.partnerPublication(t, partner, i+2)},
			}
		}, codes.InvalidArgument, ""},
		{"a repeated sequence", func(i int) []*peerpb.ForwardStreamRequest {
			return []*peerpb.ForwardStreamRequest{
				{Sequence: 1, Command: l.partnerPublication(t, partner, i)},
				{Sequence: 1, Command: l.partnerPublication(t, partner, i+1)},
			}
		}, codes.InvalidArgument, ""},
	}
	for k, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			i := 100 * (k + 1)
			reqs := tc.reqs(i)
			audits := len(l.refusals())
			stream, err := peerpb.NewPeerServiceClient(pc.conn).ForwardStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range reqs {
				if err := stream.Send(r); err != nil {
					break // the leader ended the stream: Recv says why
				}
			}
			first, err := stream.Recv()
			if err != nil || first.Sequence != 1 || first.Index == 0 {
				t.Fatalf("first answer %v, %v; want command 1 committed", first, err)
			}
			if _, err := stream.Recv(); status.Code(err) != tc.code {
				t.Fatalf("after command 1: %v; want %v", err, tc.code)
			}
			got := l.partnerEntries(t)
			if _, ok := got[fmt.Sprintf("%s/%d", partner, i)]; !ok {
				t.Fatalf("command 1 not in the log")
			}
			for j := 1; j < len(reqs); j++ {
				for _, origin := range []string{partner, self} {
					if idx, ok := got[fmt.Sprintf("%s/%d", origin, i+j)]; ok {
						t.Fatalf("command %d, sent after the refused one, is in the log at %d", j+1, idx)
					}
				}
			}
			evs := l.refusals()
			if tc.audit == "" {
				return
			}
			if len(evs) != audits+1 || evs[len(evs)-1].Target != tc.audit || evs[len(evs)-1].Agency != partner {
				t.Fatalf("audit events %v; want one refusal of %q by %s", evs[audits:], tc.audit, partner)
			}
		})
	}
}

// TestRetainClosesStaleConnections: a connection to an address no member
// has, or dialled under a CA its member no longer has, is closed.
func TestRetainClosesStaleConnections(t *testing.T) {
	conns := newPeerConns(func(addr string) (*grpc.ClientConn, error) {
		return grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13})))
	})
	defer conns.Close()
	for _, a := range []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"} {
		if _, err := conns.get(a, []byte("CA of "+a)); err != nil {
			t.Fatal(err)
		}
	}
	conns.retain(keepConn([]*pb.Member{
		{Agency: "A", Address: "127.0.0.1:7001", CaCert: []byte("CA of 127.0.0.1:7001")}, // unchanged
		{Agency: "B", Address: "127.0.0.1:7002", CaCert: []byte("another CA")},           // re-bound
		{Agency: "C", Address: "127.0.0.1:7009", CaCert: []byte("CA of 127.0.0.1:7003")}, // moved
	}))
	conns.mu.Lock()
	defer conns.mu.Unlock()
	if len(conns.conns) != 1 || conns.conns["127.0.0.1:7001"] == nil {
		t.Fatalf("kept %v; want only 127.0.0.1:7001", conns.conns)
	}
}

// TestConnLoopDropsNonMembers: as entries apply, the node closes its
// connection to an address no member has, and keeps a member's.
func TestConnLoopDropsNonMembers(t *testing.T) {
	h := start(t, shareNothing, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const stranger = "127.0.0.1:9"
	m, err := h.fed.Member(partner)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := h.fed.peer(m.Address)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.fed.peer(stranger); err != nil {
		t.Fatal(err)
	}
	held := func(addr string) *peerConn {
		h.fed.conns.mu.Lock()
		defer h.fed.conns.mu.Unlock()
		return h.fed.conns.conns[addr]
	}
	if err := h.fed.Barrier(ctx); err != nil { // an applied entry wakes the loop
		t.Fatal(err)
	}
	waitUntil(t, ctx, func() bool { return held(stranger) == nil }, "the connection to a non-member's address to close")
	if held(m.Address) != kept {
		t.Fatalf("the connection to %s (%s) was closed too", partner, m.Address)
	}
}
