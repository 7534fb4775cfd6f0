package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/replication/transport"
)

// The replication floor is the federation's log with nothing of watchfed
// above it: the same hashicorp/raft, bbolt log store, FSM (which verifies
// each publication with the node's seal.Verify) and gRPC transport under mutual TLS
// 1.3, fed signed publications of one envelope by publishers that call raft
// on the leader directly. No record store, audit chain, sealing, partner
// take-in or screening index, and no client hop. Its rows split the gap
// between watchfed and etcd into what the replication stack costs and what
// watchfed's own work on each record costs.

// FloorSystem and FloorWorkload name the floor's rows.
const (
	FloorSystem   = "raft floor"
	FloorWorkload = "raft Apply of a signed publication, no watchfed work"
)

// floor is a running 3-member raft group of the node's replication parts.
type floor struct {
	members []*floorMember
	origin  string
	sign    ed25519.PrivateKey
	seq     atomic.Int64
}

type floorMember struct {
	id, addr string
	srv      *grpc.Server
	trans    *transport.Transport
	rep      *replication.Replicator
}

// startFloor starts three members under dir, the first bootstrapping the
// group and inviting the others as voters, and returns once all three are in.
func startFloor(ctx context.Context, dir string, rc *raft.Config) (*floor, error) {
	ca, err := pki.NewCA("FLOOR")
	if err != nil {
		return nil, err
	}
	issued, err := ca.Issue(pki.IssueRequest{Agency: "FLOOR", Name: "node", Roles: []pki.Role{pki.RoleNode}, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(issued.CertPEM, issued.KeyPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	serverTLS := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	clientTLS := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}, RootCAs: pool}

	_, sign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	f := &floor{sign: sign}
	for i := range 3 {
		m, err := startFloorMember(fmt.Sprintf("FLOOR-%d", i), filepath.Join(dir, fmt.Sprint(i)), serverTLS, clientTLS, rc)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.members = append(f.members, m)
	}
	// The first member bootstraps the group and publishes everything.
	f.origin = f.members[0].id
	lead := f.members[0].rep
	self := &pb.Member{Agency: f.origin, Address: f.members[0].addr, CaCert: ca.CertPEM(), SigningKey: sign.Public().(ed25519.PublicKey), SealingKey: []byte("unused"), Voter: true}
	if err := lead.Bootstrap(ctx, self); err != nil {
		f.Close()
		return nil, err
	}
	for _, m := range f.members[1:] {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			f.Close()
			return nil, err
		}
		mem := &pb.Member{Agency: m.id, Address: m.addr, CaCert: ca.CertPEM(), SigningKey: pub, SealingKey: []byte("unused"), Voter: true}
		if err := joinFloor(ctx, lead, mem); err != nil {
			f.Close()
			return nil, fmt.Errorf("floor: join %s: %w", m.id, err)
		}
	}
	return f, nil
}

// joinFloor registers a member and adds it to raft, as an invitation and a
// join do on a node.
func joinFloor(ctx context.Context, lead *replication.Replicator, m *pb.Member) error {
	change := func(mc *peerpb.MemberChange) error {
		_, err := lead.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: mc}})
		return err
	}
	if err := change(&peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: m}}); err != nil {
		return err
	}
	if err := lead.AddMember(ctx, m); err != nil {
		return err
	}
	return change(&peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: m}})
}

func startFloorMember(id, dir string, serverTLS, clientTLS *tls.Config, rc *raft.Config) (*floorMember, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	const maxMsg = 64 << 20 // the node's limit between members
	m := &floorMember{id: id, addr: lis.Addr().String()}
	m.srv = grpc.NewServer(grpc.Creds(credentials.NewTLS(serverTLS)), grpc.MaxRecvMsgSize(maxMsg), grpc.MaxSendMsgSize(maxMsg))
	m.trans, err = transport.New(transport.Config{
		LocalAddr: raft.ServerAddress(m.addr),
		Dial: func(_ context.Context, target string) (*grpc.ClientConn, error) {
			return grpc.NewClient(target, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)),
				grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg)))
		},
		MaxMessage: maxMsg,
	})
	if err != nil {
		lis.Close()
		return nil, err
	}
	m.trans.Register(m.srv)
	go m.srv.Serve(lis)
	m.rep, err = replication.Open(replication.Config{ID: id, Addr: m.addr, Dir: dir, Transport: m.trans, Verify: seal.Verify, Raft: rc})
	if err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}

func (m *floorMember) close() {
	if m.rep != nil {
		m.rep.Close()
	}
	m.trans.Close()
	m.srv.Stop()
}

// Close stops every member.
func (f *floor) Close() {
	for _, m := range f.members {
		m.close()
	}
}

// publish commits one signed publication of one envelope whose body is
// size bytes, through the leader, and waits until it is applied there.
func (f *floor) publish(ctx context.Context, size int) error {
	i := f.seq.Add(1)
	body, err := proto.Marshal(&peerpb.PublicationBody{Origin: f.origin, Envelopes: []*peerpb.Envelope{{
		Header: &peerpb.EnvelopeHeader{EntryId: fmt.Sprintf("%s/%d", f.origin, i), Version: 1, Origin: f.origin},
		Bodies: []*peerpb.Body{{Ciphertext: make([]byte, size)}},
	}}})
	if err != nil {
		return err
	}
	cmd := &peerpb.Command{Command: &peerpb.Command_Publication{Publication: &peerpb.Publication{Origin: f.origin, Body: body, Signature: ed25519.Sign(f.sign, body)}}}
	idx, err := f.members[0].rep.Apply(ctx, cmd)
	if err != nil {
		return err
	}
	if idx == 0 {
		return errors.New("floor: applied without a log index")
	}
	return nil
}

// floorRow measures n publishers against the floor.
func floorRow(ctx context.Context, f *floor, n int, cfg Config) (Row, error) {
	cfg.progress("%s: %d publishers for %s", FloorSystem, n, cfg.Duration)
	return Load(ctx, FloorSystem, FloorWorkload, n, cfg.Duration, func(ctx context.Context, _ int) error {
		return f.publish(ctx, cfg.ValueSize)
	})
}
