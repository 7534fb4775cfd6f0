package replication

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/transport"
)

// testPKI is a throwaway CA issuing one certificate for every test node.
type testPKI struct {
	pool *x509.CertPool
	cert tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{pool: pool, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

// testNode is one federation member: a gRPC server with the raft transport
// and a Replicator, as a node runs them, minus the public services.
type testNode struct {
	id, addr, dir string
	lis           net.Listener
	srv           *grpc.Server
	trans         *transport.Transport
	rep           *Replicator
	sign          ed25519.PrivateKey
	// stoppedApplied is the FSM's applied index when the node was stopped.
	stoppedApplied uint64
}

func testRaftConfig() *raft.Config {
	c := DefaultRaftConfig()
	c.HeartbeatTimeout = raceSlowdown * 300 * time.Millisecond
	c.ElectionTimeout = raceSlowdown * 300 * time.Millisecond
	c.LeaderLeaseTimeout = raceSlowdown * 200 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

func verifyEd25519(pub *peerpb.Publication, key []byte) (*peerpb.PublicationBody, error) {
	if !ed25519.Verify(key, pub.Body, pub.Signature) {
		return nil, errors.New("bad signature")
	}
	body := &peerpb.PublicationBody{}
	return body, proto.Unmarshal(pub.Body, body)
}

func startTestNode(t *testing.T, p *testPKI, id, addr, dir string, rc *raft.Config) *testNode {
	t.Helper()
	return startTestNodeLimit(t, p, id, addr, dir, rc, 64<<20)
}

// startTestNodeLimit is startTestNode with maxMsg the largest gRPC message
// between nodes.
func startTestNodeLimit(t *testing.T, p *testPKI, id, addr, dir string, rc *raft.Config, maxMsg int) *testNode {
	t.Helper()
	var lis net.Listener
	var err error
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	lis, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{id: id, addr: lis.Addr().String(), dir: dir, lis: lis}
	serverTLS := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{p.cert}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	clientTLS := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{p.cert}, RootCAs: p.pool}
	n.srv = grpc.NewServer(grpc.Creds(credentials.NewTLS(serverTLS)), grpc.MaxRecvMsgSize(maxMsg))
	n.trans, err = transport.New(transport.Config{
		LocalAddr: raft.ServerAddress(n.addr),
		Dial: func(ctx context.Context, target string) (*grpc.ClientConn, error) {
			return grpc.NewClient(target, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg)))
		},
		Timeout:    2 * time.Second,
		MaxMessage: maxMsg,
	})
	if err != nil {
		t.Fatal(err)
	}
	n.trans.Register(n.srv)
	go n.srv.Serve(lis)
	n.rep, err = Open(Config{ID: id, Addr: n.addr, Dir: dir, Transport: n.trans, Verify: verifyEd25519, Raft: rc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.stop)
	return n
}

func (n *testNode) stop() {
	if n.rep == nil {
		return
	}
	n.stoppedApplied = n.rep.fsm.Applied()
	n.rep.Close()
	n.trans.Close()
	n.srv.Stop()
	n.rep = nil
}

func (n *testNode) member() *pb.Member {
	if n.sign == nil {
		_, n.sign, _ = ed25519.GenerateKey(rand.Reader)
	}
	return &pb.Member{Agency: n.id, Address: n.addr, CaCert: []byte("test CA"), SigningKey: n.sign.Public().(ed25519.PublicKey), SealingKey: []byte("k"), Voter: true}
}

func (n *testNode) publication(entry string, version uint64) *peerpb.Command {
	body, _ := proto.Marshal(&peerpb.PublicationBody{Origin: n.id, Envelopes: []*peerpb.Envelope{{Header: &peerpb.EnvelopeHeader{EntryId: entry, Version: version, Origin: n.id}}}})
	return &peerpb.Command{Command: &peerpb.Command_Publication{Publication: &peerpb.Publication{Origin: n.id, Body: body, Signature: ed25519.Sign(n.sign, body)}}}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// federation bootstraps nodes[0] and joins the others as voters.
func federation(t *testing.T, size int, rc func() *raft.Config) (*testPKI, []*testNode) {
	t.Helper()
	p := newTestPKI(t)
	var nodes []*testNode
	for i := 0; i < size; i++ {
		nodes = append(nodes, startTestNode(t, p, fmt.Sprintf("AG%d", i), "", t.TempDir(), rc()))
	}
	ctx := ctxT(t)
	if err := nodes[0].rep.Bootstrap(ctx, nodes[0].member()); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		join(t, nodes[0], n)
	}
	return p, nodes
}

func join(t *testing.T, leader, n *testNode) {
	t.Helper()
	ctx := ctxT(t)
	m := n.member()
	if _, err := leader.rep.Apply(ctx, memberCmd(&peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: m}})); err != nil {
		t.Fatal(err)
	}
	if err := leader.rep.AddMember(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.rep.Apply(ctx, memberCmd(&peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: m}})); err != nil {
		t.Fatal(err)
	}
}

func memberCmd(mc *peerpb.MemberChange) *peerpb.Command {
	return &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: mc}}
}

func leaderOf(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n.rep != nil && n.rep.raft.State() == raft.Leader {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	t.Fatal("no leader within 15s")
	return nil
}

// followerOf returns a member of nodes other than l.
func followerOf(nodes []*testNode, l *testNode) *testNode {
	for _, n := range nodes {
		if n != l {
			return n
		}
	}
	return nil
}

// running returns the nodes that are not stopped.
func running(nodes []*testNode) []*testNode {
	var out []*testNode
	for _, n := range nodes {
		if n.rep != nil {
			out = append(out, n)
		}
	}
	return out
}

// waitApplied waits until every running node has applied index.
func waitApplied(t *testing.T, nodes []*testNode, index uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		if n.rep == nil {
			continue
		}
		for n.rep.fsm.Applied() < index {
			if time.Now().After(deadline) {
				t.Fatalf("%s applied %d, want %d", n.id, n.rep.fsm.Applied(), index)
			}
			select {
			case <-n.rep.fsm.Changed():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

func entryIDs(t *testing.T, n *testNode) []string {
	t.Helper()
	es, err := n.rep.fsm.Entries(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range es {
		for _, env := range e.Body.Envelopes {
			ids = append(ids, fmt.Sprintf("%s@%d", env.Header.EntryId, e.Index))
		}
	}
	return ids
}

func sameEntries(t *testing.T, nodes []*testNode, want int) {
	t.Helper()
	var ref []string
	for _, n := range nodes {
		if n.rep == nil {
			continue
		}
		ids := entryIDs(t, n)
		if len(ids) != want {
			t.Fatalf("%s holds %d entries, want %d", n.id, len(ids), want)
		}
		if ref == nil {
			ref = ids
			continue
		}
		for i := range ids {
			if ids[i] != ref[i] {
				t.Fatalf("%s diverges at %d: %s vs %s", n.id, i, ids[i], ref[i])
			}
		}
	}
}

func TestReplicateKillLeaderRestartFollower(t *testing.T) {
	pki, nodes := federation(t, 3, testRaftConfig)
	ctx := ctxT(t)
	l := leaderOf(t, nodes)
	var last uint64
	for i := 0; i < 100; i++ {
		idx, err := l.rep.Apply(ctx, l.publication(fmt.Sprintf("%s/e%d", l.id, i), 1))
		if err != nil {
			t.Fatal(err)
		}
		last = idx
	}
	waitApplied(t, nodes, last)
	sameEntries(t, nodes, 100)
	members, _ := nodes[2].rep.fsm.Members()
	if len(members) != 3 {
		t.Fatalf("registry on a follower has %d members", len(members))
	}

	// Kill the leader: a new one is elected and nothing committed is lost.
	l.stop()
	alive := running(nodes)
	l2 := leaderOf(t, alive)
	if l2 == l {
		t.Fatal("dead node still leads")
	}
	idx, err := l2.rep.Apply(ctx, l.publication(l.id+"/after-failover", 1)) // signed by the old leader's agency: still a member
	if err != nil {
		t.Fatal(err)
	}
	waitApplied(t, alive, idx)
	sameEntries(t, alive, 101)

	// Restart the old leader on its data: it catches up and replays nothing twice.
	restarted := startTestNode(t, pki, l.id, l.addr, l.dir, testRaftConfig())
	restarted.sign = l.sign
	all := append(alive, restarted)
	waitApplied(t, all, idx)
	sameEntries(t, all, 101)
}

func TestSnapshotCatchUpAndForgeryRejected(t *testing.T) {
	small := func() *raft.Config {
		c := testRaftConfig()
		c.SnapshotThreshold = 50
		c.SnapshotInterval = 100 * time.Millisecond
		c.TrailingLogs = 10
		return c
	}
	pki, nodes := federation(t, 3, small)
	ctx := ctxT(t)
	l := leaderOf(t, nodes)
	lagging := followerOf(nodes, l)
	lagging.stop()
	// On a loaded machine the leader can lose its lease to the other live
	// node; a write then goes to whichever leads (l's publications still).
	apply := func(cmd *peerpb.Command) (uint64, error) {
		for {
			idx, err := leaderOf(t, nodes).rep.Apply(ctx, cmd)
			if !errors.Is(err, ErrNotLeader) {
				return idx, err
			}
		}
	}
	var last uint64
	for i := 0; i < 300; i++ {
		idx, err := apply(l.publication(fmt.Sprintf("%s/s%d", l.id, i), 1))
		if err != nil {
			t.Fatal(err)
		}
		last = idx
	}
	// Compact the log past what the lagging node has.
	cur := leaderOf(t, nodes)
	if err := cur.rep.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if first, _ := cur.rep.logs.FirstIndex(); first <= lagging.stoppedApplied {
		t.Fatalf("log not compacted: first index %d", first)
	}
	back := startTestNode(t, pki, lagging.id, lagging.addr, lagging.dir, small())
	all := append([]*testNode{back}, running(nodes)...)
	waitApplied(t, all, last)
	sameEntries(t, all, 300)
	if back.rep.Status().SnapshotIndex == 0 {
		t.Fatal("the lagging node caught up without a snapshot install")
	}

	// A publication claiming l's agency but signed by another key is
	// rejected by every FSM, identically.
	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	body, _ := proto.Marshal(&peerpb.PublicationBody{Origin: l.id, Envelopes: []*peerpb.Envelope{{Header: &peerpb.EnvelopeHeader{EntryId: l.id + "/forged", Version: 1, Origin: l.id}}}})
	forged := &peerpb.Command{Command: &peerpb.Command_Publication{Publication: &peerpb.Publication{Origin: l.id, Body: body, Signature: ed25519.Sign(forger, body)}}}
	idx, err := apply(forged)
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("forged publication: %v, want rejected", err)
	}
	waitApplied(t, all, idx)
	sameEntries(t, all, 300)
}

// TestFollowerBehindALargeBacklog: a follower that was away while the
// others committed more than one message's worth of entries catches up from
// the log. raft sends it up to MaxAppendEntries entries at once whatever
// their size; the transport sends such a batch in parts.
func TestFollowerBehindALargeBacklog(t *testing.T) {
	const maxMsg = 256 << 10
	rc := func() *raft.Config {
		c := testRaftConfig()
		c.SnapshotThreshold = 1 << 20 // no snapshot: the log must carry it
		return c
	}
	p := newTestPKI(t)
	var nodes []*testNode
	for i := 0; i < 3; i++ {
		nodes = append(nodes, startTestNodeLimit(t, p, fmt.Sprintf("AG%d", i), "", t.TempDir(), rc(), maxMsg))
	}
	ctx := ctxT(t)
	if err := nodes[0].rep.Bootstrap(ctx, nodes[0].member()); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		join(t, nodes[0], n)
	}
	l := leaderOf(t, nodes)
	away := followerOf(nodes, l)
	away.stop()
	// 40 entries of 32 KiB: 1.25 MiB, five messages' worth.
	pad := bytes.Repeat([]byte("x"), 32<<10)
	var last uint64
	for i := 0; i < 40; i++ {
		cmd := l.publication(fmt.Sprintf("%s/big%d", l.id, i), 1)
		body := &peerpb.PublicationBody{}
		if err := proto.Unmarshal(cmd.GetPublication().Body, body); err != nil {
			t.Fatal(err)
		}
		body.Envelopes[0].Bodies = []*peerpb.Body{{Ciphertext: pad}}
		b, _ := proto.Marshal(body)
		cmd.GetPublication().Body, cmd.GetPublication().Signature = b, ed25519.Sign(l.sign, b)
		idx, err := l.rep.Apply(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		last = idx
	}
	back := startTestNodeLimit(t, p, away.id, away.addr, away.dir, rc(), maxMsg)
	all := append([]*testNode{back}, running(nodes)...)
	waitApplied(t, all, last)
	sameEntries(t, all, 40)
}
