// Package replicationtest runs a raft group of replication members in one
// process, as nodes run them minus the public services and the sealing:
// each member is a gRPC server with the raft transport under mutual TLS
// 1.3 and a Replicator over a directory of its own. In the manner of
// hashicorp/raft's testing.go, Start forms the group and the Cluster finds
// the leader, waits until an index is applied everywhere, and stops and
// restarts members on their data. It serves the replication tests and the
// bench's floor measurement alike, so it returns errors rather than taking
// a testing.T (the bench is linked into the watchfed binary, which must
// not import testing).
package replicationtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/replication/transport"
)

// Options shape a cluster; the zero value of each field has a default.
type Options struct {
	// Size is the number of members (default 3). The first bootstraps the
	// group; the others are invited and join as voters, through whichever
	// member leads at the time.
	Size int
	// Dir holds each member's directory, Dir/<id>.
	Dir string
	// Prefix names the members Prefix0, Prefix1, ... (default "AG").
	Prefix string
	// Raft makes each member's raft config (default replication.DefaultRaftConfig).
	Raft func() *raft.Config
	// MaxMessage is the largest message between members (default 64 MiB,
	// the node's).
	MaxMessage int
	// Verify checks publications' signatures (default Ed25519 over the body).
	Verify replication.VerifyFunc
	// Timeout bounds each raft RPC between members (default the transport's).
	Timeout time.Duration
	// Route, if set, gives the address member from dials to reach target
	// (a member's address): a proxy in between, as a node's peer_routes
	// name one (the bench's delayed links).
	Route func(from, target string) string
}

// Cluster is a running group.
type Cluster struct {
	opts  Options
	certs *certs
	// Members in the order they were started; a restarted member replaces
	// its stopped self.
	Members []*Member
}

// Member is one member of the group.
type Member struct {
	ID, Addr, Dir string
	// Rep is nil while the member is stopped.
	Rep *replication.Replicator
	// Sign is the member's agency signing key, registered in the registry.
	Sign ed25519.PrivateKey
	// StoppedApplied is the applied index when the member was last stopped.
	StoppedApplied uint64

	srv   *grpc.Server
	trans *transport.Transport
}

// Start starts opts.Size members and forms the group: the first bootstraps
// it, each other is invited, added to raft and joined, as a node's
// invitation and join do.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Size == 0 {
		opts.Size = 3
	}
	if opts.Prefix == "" {
		opts.Prefix = "AG"
	}
	if opts.Raft == nil {
		opts.Raft = replication.DefaultRaftConfig
	}
	if opts.MaxMessage == 0 {
		opts.MaxMessage = 64 << 20
	}
	if opts.Verify == nil {
		opts.Verify = VerifyEd25519
	}
	cs, err := newCerts()
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, certs: cs}
	for i := range opts.Size {
		id := fmt.Sprintf("%s%d", opts.Prefix, i)
		m := &Member{ID: id, Addr: "127.0.0.1:0", Dir: filepath.Join(opts.Dir, id)}
		if _, m.Sign, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return nil, err
		}
		if err := c.run(m); err != nil {
			c.Close()
			return nil, fmt.Errorf("start %s: %w", id, err)
		}
		c.Members = append(c.Members, m)
	}
	first := c.Members[0]
	if err := first.Rep.Bootstrap(ctx, first.Registry(), ed25519.Sign(first.Sign, replication.JoinMessage(first.Registry()))); err != nil {
		c.Close()
		return nil, err
	}
	for _, m := range c.Members[1:] {
		if err := c.Join(ctx, m.Registry()); err != nil {
			c.Close()
			return nil, fmt.Errorf("join %s: %w", m.ID, err)
		}
	}
	return c, nil
}

// Join registers a member through whichever running member leads, as an
// invitation and a join do on a node, and waits until the leader has
// reconciled raft's configuration to the registry: the member votes if it
// joined as a voter. On a loaded machine leadership can move while the
// group forms (a leader of two voters steps down when the other misses a
// heartbeat); Join then carries on through the new leader from where the
// registry is, until ctx ends.
func (c *Cluster) Join(ctx context.Context, m *pb.Member) error {
	for {
		l, err := c.Leader(ctx)
		if err != nil {
			return err
		}
		err = Join(ctx, l.Rep, m)
		if !leadershipMoved(err) {
			return err
		}
	}
}

// Join registers a member through the leader, as an invitation and a join
// do on a node, and waits until the leader has reconciled raft's
// configuration to the registry. It starts from where the registry is, so
// it may be called again, on a new leader, after a leadership change cut it
// short (see leadershipMoved): an agency already invited is invited again
// (an invitation is replaced until its join), one already joined is not.
func Join(ctx context.Context, leader *replication.Replicator, m *pb.Member) error {
	change := func(mc *peerpb.MemberChange) error {
		_, err := leader.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: mc}})
		return err
	}
	joined := func() bool { reg, err := leader.Member(m.Agency); return err == nil && reg.Joined }
	if !joined() {
		// A new leader may not have applied a join committed under the
		// last one yet: the invitation is then refused, and applying that
		// refusal applied the join before it.
		err := change(&peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: m}})
		if err != nil && !(errors.Is(err, replication.ErrRejected) && joined()) {
			return fmt.Errorf("invite: %w", err)
		}
		if err == nil {
			if err := change(&peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: m}}); err != nil {
				return fmt.Errorf("join: %w", err)
			}
		}
	}
	return leader.WaitConfiguration(ctx, func(s map[string]bool) bool { voter, in := s[m.Agency]; return in && voter == m.Voter })
}

// Apply commits cmd through whichever running member leads and returns its
// index once the leader applied it. When leadership moves before the
// command is known to have committed, it is applied again through the new
// leader, so cmd must be one the FSM takes twice as once: a publication
// (a version published again is skipped), not a member change (see Join).
func (c *Cluster) Apply(ctx context.Context, cmd *peerpb.Command) (uint64, error) {
	for {
		l, err := c.Leader(ctx)
		if err != nil {
			return 0, err
		}
		idx, err := l.Rep.Apply(ctx, cmd)
		if !leadershipMoved(err) {
			return idx, err
		}
	}
}

// leadershipMoved says whether a leader-only call failed because the
// member was not, or stopped being, the leader: the call is to be made
// again on whichever member leads now.
func leadershipMoved(err error) bool {
	return errors.Is(err, replication.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress)
}

// run starts a member's server, transport and replicator on its address
// and directory.
func (c *Cluster) run(m *Member) error {
	lis, err := net.Listen("tcp", m.Addr)
	if err != nil {
		return err
	}
	m.Addr = lis.Addr().String()
	maxMsg := c.opts.MaxMessage
	m.srv = grpc.NewServer(grpc.Creds(credentials.NewTLS(c.certs.server)), grpc.MaxRecvMsgSize(maxMsg), grpc.MaxSendMsgSize(maxMsg))
	m.trans, err = transport.New(transport.Config{
		LocalAddr: raft.ServerAddress(m.Addr),
		Dial: func(_ context.Context, target string) (*grpc.ClientConn, error) {
			if c.opts.Route != nil {
				target = c.opts.Route(m.ID, target)
			}
			return grpc.NewClient(target, grpc.WithTransportCredentials(credentials.NewTLS(c.certs.client)),
				grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg)))
		},
		Timeout:    c.opts.Timeout,
		MaxMessage: maxMsg,
	})
	if err != nil {
		lis.Close()
		return err
	}
	m.trans.Register(m.srv)
	go m.srv.Serve(lis)
	m.Rep, err = replication.Open(replication.Config{ID: m.ID, Addr: m.Addr, Dir: m.Dir, Transport: m.trans, Verify: c.opts.Verify, Raft: c.opts.Raft()})
	if err != nil {
		m.trans.Close()
		m.srv.Stop()
		return err
	}
	return nil
}

// Registry is the member's entry in the member registry.
func (m *Member) Registry() *pb.Member {
	return &pb.Member{Agency: m.ID, Address: m.Addr, CaCert: []byte("test CA"), SigningKey: m.Sign.Public().(ed25519.PublicKey), SealingKey: []byte("unused"), Voter: true}
}

// Publication is a publication by the member's agency of one entry version
// whose body holds size bytes, signed with its key.
func (m *Member) Publication(entry string, version uint64, size int) *peerpb.Command {
	env := &peerpb.Envelope{Header: &peerpb.EnvelopeHeader{EntryId: entry, Version: version, Origin: m.ID}}
	if size > 0 {
		env.Bodies = []*peerpb.Body{{Ciphertext: make([]byte, size)}}
	}
	body, _ := proto.Marshal(&peerpb.PublicationBody{Origin: m.ID, Envelopes: []*peerpb.Envelope{env}})
	return &peerpb.Command{Command: &peerpb.Command_Publication{Publication: &peerpb.Publication{Origin: m.ID, Body: body, Signature: ed25519.Sign(m.Sign, body)}}}
}

// Running reports whether the member is started.
func (m *Member) Running() bool { return m.Rep != nil }

// Stop stops the member, keeping its directory.
func (m *Member) Stop() {
	if m.Rep == nil {
		return
	}
	m.StoppedApplied = m.Rep.Applied()
	m.Rep.Close()
	m.trans.Close()
	m.srv.Stop()
	m.Rep = nil
}

// Restart starts a stopped member again on its address and directory.
func (c *Cluster) Restart(m *Member) error {
	if m.Running() {
		return fmt.Errorf("%s is running", m.ID)
	}
	return c.run(m)
}

// Running returns the members that are started.
func (c *Cluster) Running() []*Member {
	var out []*Member
	for _, m := range c.Members {
		if m.Running() {
			out = append(out, m)
		}
	}
	return out
}

// Leader waits for a running member to lead and returns it.
func (c *Cluster) Leader(ctx context.Context) (*Member, error) {
	for {
		for _, m := range c.Running() {
			if m.Rep.IsLeader() {
				return m, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no leader: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Follower returns a running member other than not.
func (c *Cluster) Follower(not *Member) *Member {
	for _, m := range c.Running() {
		if m != not {
			return m
		}
	}
	return nil
}

// WaitApplied waits until every running member has applied index.
func (c *Cluster) WaitApplied(ctx context.Context, index uint64) error {
	for _, m := range c.Running() {
		for m.Rep.Applied() < index {
			changed := m.Rep.Changed()
			if m.Rep.Applied() >= index {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s applied %d, want %d: %w", m.ID, m.Rep.Applied(), index, ctx.Err())
			case <-changed:
			}
		}
	}
	return nil
}

// Close stops every member.
func (c *Cluster) Close() {
	for _, m := range c.Members {
		m.Stop()
	}
}

// VerifyEd25519 checks a publication's Ed25519 signature over its body.
func VerifyEd25519(pub *peerpb.Publication, key []byte) (*peerpb.PublicationBody, error) {
	if !ed25519.Verify(key, pub.Body, pub.Signature) {
		return nil, errors.New("bad signature")
	}
	body := &peerpb.PublicationBody{}
	return body, proto.Unmarshal(pub.Body, body)
}
