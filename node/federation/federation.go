// Package federation is a node's side of the federation: its keys, its raft
// member, the trust of partners' node certificates, and the loops that
// publish this agency's records (sealed per the sharing policy), take in
// what partners sealed to it, and catch newly entitled partners up. It also
// answers the node-to-node PeerService. It reaches the rest of the node only
// through what New is given (Config and Deps), never back through the node.
package federation

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node/auth"
	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/node/store"
	"github.com/watchfed/watchfed/policy"
	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/replication/transport"
)

// Config is what the federation side needs to know of its node.
type Config struct {
	Agency string
	// Advertise is the address partners reach this node at (gRPC and raft).
	Advertise string
	// KeysFile holds the signing, sealing and epoch master keys (made if absent).
	KeysFile string
	// RaftDir holds the raft log (wal/, raft.db), fsm.db and the snapshots.
	RaftDir string
	// RaftLogDir holds the raft log instead of RaftDir when set (a disk of its own).
	RaftLogDir string
	// RaftLogSegmentBytes sizes the raft log's segment files (0: the default).
	RaftLogSegmentBytes int
	// TLS is the node's own certificate and CA; CACert is that CA in PEM.
	TLS    *tls.Config
	CACert []byte
	// PeerRoutes maps a member's address to the address to connect to.
	PeerRoutes map[string]string
	// Invitation is the one a joining node started with (nil otherwise).
	Invitation *pb.Invitation
	// Raft overrides raft's timing; Recover restarts as a one-member federation.
	Raft    *raft.Config
	Recover bool
	Logger  *slog.Logger
}

// Store is what the federation side reads and writes of the record store:
// the outbox of versions to publish, and the entries and epoch keys taken in.
type Store interface {
	OutboxExcept(ctx context.Context, limit int, except map[string]bool, pos *store.OutboxPos) ([]*pb.Record, error)
	MarkPublished(ctx context.Context, recs []*pb.Record) error
	// DiskFull is the last write's full-disk error, nil once one succeeds.
	DiskFull() error
	Versions(ctx context.Context, refs []store.VersionRef) ([]*pb.Record, error)
	ReceivedIndex() (uint64, error)
	TakeIn(ctx context.Context, batch []store.Received, upTo uint64, caughtUp bool) error
	EpochKey(origin string, epoch uint64) ([]byte, bool)
}

// Policy is the sharing policy in force: Current never returns nil,
// Generation changes whenever it does, and Reload reads the file again if
// it changed (the publish loop calls it every round).
type Policy interface {
	Current() *policy.Policy
	Generation() uint64
	Error() string
	Reload(ctx context.Context)
}

// Metrics are the node's counters the loops feed.
type Metrics struct {
	Published      prometheus.Counter
	Received       prometheus.Counter
	PublishLatency prometheus.Observer
}

// Deps are the other parts of the node the federation side works with.
type Deps struct {
	Store   Store
	Policy  Policy
	Metrics Metrics
	// OnReceived follows each shared entry taken in (the screening index).
	OnReceived func(*pb.Record)
	// Audit records what the node did on its own (a catch-up delivery).
	Audit func(ctx context.Context, action, target, detail string)
	// AppendAudit appends an event as it is (a refused TLS handshake).
	AppendAudit func(*pb.AuditEvent)
	Now         func() time.Time
}

// Federation is the node's membership of the federation: its keys, its raft
// member, and the loops that publish its records and take in what partners
// sealed to it.
type Federation struct {
	cfg        Config
	log        *slog.Logger
	store      Store
	policy     Policy
	metrics    Metrics
	onReceived func(*pb.Record)
	audit      func(ctx context.Context, action, target, detail string)
	// appendAudit appends an event as it is (a refused partner request).
	appendAudit func(*pb.AuditEvent)
	now         func() time.Time
	refusals    refusals
	verified    verifiedOnce // forwarded and own publications checked before they apply
	ownKey      ed25519.PublicKey

	keys   *seal.Keys
	sealer *seal.Sealer
	opener *seal.Opener
	trans  *transport.Transport
	rep    *replication.Replicator
	conns  *peerConns // one connection per partner for PeerService calls
	caPEM  []byte
	base   *tls.Config // the node's own certificate and CA
	invite *pb.Invitation
	// recovering is the registry while a --recover start asks the members
	// whether a live quorum answers (before the raft member exists).
	recovering []*pb.Member
	// handshakes holds certificates to their agency's registered CA and
	// logs, counts and audits refused TLS handshakes, both ways.
	handshakes *auth.Handshakes

	wake     chan struct{} // a write queued something to publish
	mu       sync.Mutex
	waiters  map[string][]chan uint64 // versionKey → callers waiting for its log index
	received chan struct{}            // closed and replaced when entries were taken in

	held     holdings // what partners can read of this agency's entries
	ahead    ahead    // versions being committed now, to seal meanwhile
	lastPub  uint64   // log index of the last publication (publish loop only)
	caughtUp string   // policy generation and members the last catch-up ran for
}

// New loads or makes the node's keys and starts its raft member; Run starts
// the loops.
func New(cfg Config, deps Deps) (*Federation, error) {
	keys, err := loadOrMakeKeys(cfg.KeysFile)
	if err != nil {
		return nil, err
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Federation{
		cfg: cfg, log: cfg.Logger, store: deps.Store, policy: deps.Policy, metrics: deps.Metrics,
		onReceived: deps.OnReceived, audit: deps.Audit, appendAudit: deps.AppendAudit, now: deps.Now,
		keys: keys, caPEM: cfg.CACert, base: cfg.TLS, invite: cfg.Invitation,
		sealer: seal.NewSealer(cfg.Agency, keys), opener: seal.NewOpener(cfg.Agency, keys), ownKey: ownSigningKey(keys),
		wake: make(chan struct{}, 1), waiters: map[string][]chan uint64{}, received: make(chan struct{}),
	}
	f.conns = newPeerConns(f.Dial)
	f.handshakes = auth.NewHandshakes(auth.HandshakeConfig{Logger: cfg.Logger, Issuers: f.issuers, Now: deps.Now, Audit: deps.AppendAudit})
	f.trans, err = transport.New(transport.Config{
		LocalAddr:  raft.ServerAddress(cfg.Advertise),
		Dial:       func(ctx context.Context, target string) (*grpc.ClientConn, error) { return f.Dial(target) },
		Authorize:  f.AuthorizeNode,
		MaxMessage: MaxPeerMessage,
		// The leader may be a partner's node: the size it declares for a
		// snapshot must fit this node's disk before any of it is written.
		AcceptSnapshot: replication.SnapshotRoom(cfg.RaftDir),
		Logger:         cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	f.rep, err = replication.Open(replication.Config{
		ID: cfg.Agency, Addr: cfg.Advertise, Dir: cfg.RaftDir, LogDir: cfg.RaftLogDir, LogSegmentBytes: cfg.RaftLogSegmentBytes,
		Transport: f.trans, Verify: f.verified.verify, Logger: cfg.Logger, Raft: cfg.Raft, Recover: cfg.Recover,
		PeerApplied: func(ctx context.Context, addr string) (uint64, error) {
			st, err := f.PeerStatus(ctx, addr)
			return st.GetAppliedIndex(), err
		},
		LeaderLast: func(ctx context.Context, addr string) (uint64, error) {
			st, err := f.PeerStatus(ctx, addr)
			return st.GetLastIndex(), err
		},
		BeforeRecover: f.refuseForkOf,
	})
	if err != nil {
		f.trans.Close()
		f.conns.Close()
		return nil, err
	}
	return f, nil
}

// Handshakes checks, logs, counts and audits the TLS handshakes of the
// node's server and of its calls to partners.
func (f *Federation) Handshakes() *auth.Handshakes { return f.handshakes }

// Invitation is the invitation this node started with (nil if none).
func (f *Federation) Invitation() *pb.Invitation { return f.invite }

// Register adds the raft transport and the PeerService to the node's server.
func (f *Federation) Register(s *grpc.Server) {
	f.trans.Register(s)
	ps := &peerService{f: f}
	peerpb.RegisterPeerServiceServer(s, ps)
	registerLegacyPeerService(s, ps)
}

// Run runs the publish and receive loops, and the join loop of a node that
// was invited and has not joined yet, until ctx ends.
func (f *Federation) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); f.publishLoop(ctx) }()
	go func() { defer wg.Done(); f.connLoop(ctx) }()
	go func() { defer wg.Done(); f.receiveLoop(ctx) }()
	go func() { defer wg.Done(); f.protocolLoop(ctx) }()
	if f.invite != nil && !f.Joined() {
		go f.joinLoop(ctx)
	}
	wg.Wait()
}

// Close stops the raft member and its transport, and closes the
// connections to partners.
func (f *Federation) Close() error {
	f.conns.Close()
	err := f.rep.Close()
	if cerr := f.trans.Close(); err == nil {
		err = cerr
	}
	return err
}

// WakeUp asks the publish loop for a round now.
func (f *Federation) WakeUp() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func loadOrMakeKeys(path string) (*seal.Keys, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		k, err := seal.UnmarshalKeys(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k, err := seal.GenerateKeys()
	if err != nil {
		return nil, err
	}
	data, err = seal.MarshalKeys(k)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return k, nil
}

// trustPool is the node's own CA plus every registered member's CA (or,
// before the registry reached this node, those of its invitation).
func (f *Federation) trustPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(f.caPEM)
	for _, m := range f.knownMembers() {
		pool.AppendCertsFromPEM(m.CaCert)
	}
	return pool
}

// issuers are the CA certificates registered per agency: the registry's (or
// the invitation's) and this node's own.
func (f *Federation) issuers() map[string][]byte {
	out := map[string][]byte{f.cfg.Agency: f.caPEM}
	for _, m := range f.knownMembers() {
		out[m.Agency] = slices.Concat(out[m.Agency], m.CaCert)
	}
	return out
}

// knownMembers is the registry, or the invitation's members until the
// registry has reached a joining node.
func (f *Federation) knownMembers() []*pb.Member {
	if f.rep == nil {
		return f.recovering
	}
	ms, _ := f.rep.Members()
	if len(ms) == 0 && f.invite != nil {
		return f.invite.Members
	}
	return ms
}

// ServerTLS builds each handshake's config with the current trust pool:
// membership changes take effect without a restart.
func (f *Federation) ServerTLS() *tls.Config {
	cfg := f.base.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := f.base.Clone()
		c.ClientCAs = f.trustPool()
		return c, nil
	}
	return cfg
}

// Dial makes a client connection to a partner's node (connected on first
// use): mutual TLS 1.3 with the node's certificate, trusting the registered
// CAs as they are at each handshake.
func (f *Federation) Dial(target string) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(f.handshakes.Client(peerTLS{f})),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxPeerMessage), grpc.MaxCallSendMsgSize(MaxPeerMessage)),
		// Ping an idle connection now and then, so that a dead link is
		// found before a write waits on it (the server allows one per 10 s).
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		// Reconnect within seconds of a partner's return, not gRPC's default
		// of up to two minutes: a follower's writes wait on it.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second}, MinConnectTimeout: 10 * time.Second})}
	if via, ok := f.cfg.PeerRoutes[target]; ok {
		// Connect elsewhere, but keep target as the name TLS verifies.
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", via)
		}))
	}
	return grpc.NewClient(target, opts...)
}

// Barrier commits a barrier through the log and waits until this node has
// applied it and taken in every entry before it: a read after that reflects
// every write acknowledged before the barrier started.
func (f *Federation) Barrier(ctx context.Context) error {
	idx, err := f.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_Barrier{Barrier: &peerpb.Barrier{}}})
	if err != nil {
		return err
	}
	for {
		changed := f.rep.Changed()
		if f.rep.Applied() >= idx {
			break
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-changed:
		}
	}
	last, err := f.rep.LastEntry(idx)
	if err != nil {
		return err
	}
	for {
		received := f.Received()
		got, err := f.store.ReceivedIndex()
		if err != nil {
			return err
		}
		if got >= last {
			return nil
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-received:
		}
	}
}

// MaxPeerMessage bounds node-to-node messages (raft batches of publications).
const MaxPeerMessage = 64 << 20

// AuthorizeNode admits raft and peer calls only from the node certificates
// of registered members (invited or joined).
func (f *Federation) AuthorizeNode(ctx context.Context) error {
	_, err := f.nodeIdentity(ctx)
	return err
}

// nodeIdentity is AuthorizeNode returning the caller it admitted.
func (f *Federation) nodeIdentity(ctx context.Context) (pki.Identity, error) {
	id, err := auth.PeerIdentity(ctx)
	if err != nil {
		return id, err
	}
	if !id.Has(pki.RoleNode) {
		return id, fmt.Errorf("certificate %s lacks the node role", id)
	}
	for _, m := range f.knownMembers() {
		if m.Agency == id.Agency {
			return id, nil
		}
	}
	if id.Agency == f.cfg.Agency {
		return id, nil
	}
	return id, fmt.Errorf("agency %s is not a federation member", id.Agency)
}

// Self is this node's registry entry.
func (f *Federation) Self(voter bool) *pb.Member {
	pub := f.keys.Public()
	return &pb.Member{Agency: f.cfg.Agency, Address: f.cfg.Advertise, CaCert: f.caPEM, SigningKey: pub.Signing, SealingKey: pub.Sealing, Voter: voter}
}

// Joined reports whether this agency is a joined member.
func (f *Federation) Joined() bool {
	m, err := f.rep.Member(f.cfg.Agency)
	return err == nil && m.Joined
}

// Apply commits a command, through the leader if this node is not it and
// the command is this agency's to forward (notForwardable).
func (f *Federation) Apply(ctx context.Context, cmd *peerpb.Command) (uint64, error) {
	data, err := proto.Marshal(cmd)
	if err != nil {
		return 0, err
	}
	return f.applyRaw(ctx, data, notForwardable(cmd, f.cfg.Agency))
}

// applyRaw is Apply for an encoded command; notOurs, if not nil, says why
// it must not be forwarded (it is then applied only if this node leads).
func (f *Federation) applyRaw(ctx context.Context, data []byte, notOurs error) (uint64, error) {
	for attempt := 0; ; attempt++ {
		idx, err := f.rep.ApplyRaw(ctx, data)
		if !errors.Is(err, replication.ErrNotLeader) {
			return idx, err
		}
		id, addr := f.rep.Leader()
		if notOurs != nil && id != "" {
			// Refused before anything changed, so nothing is left half made.
			return 0, status.Errorf(codes.FailedPrecondition, "this node does not lead; run this on the leader (%s): %v", id, notOurs)
		}
		if addr != "" && addr != f.cfg.Advertise {
			idx, err = f.forward(ctx, addr, data)
			if err == nil || status.Code(err) != codes.Unavailable {
				return idx, err
			}
		}
		// No leader known yet (an election is under way): wait a little.
		select {
		case <-ctx.Done():
			return 0, status.Errorf(codes.Unavailable, "no federation leader: %v", ctx.Err())
		case <-time.After(time.Duration(min(attempt+1, 10)) * 50 * time.Millisecond):
		}
	}
}

// forward has the leader at addr apply a command, over the connection kept to it.
func (f *Federation) forward(ctx context.Context, addr string, data []byte) (uint64, error) {
	pc, err := f.peer(addr)
	if err != nil {
		return 0, err
	}
	resp, err := peerClient{pc.conn}.Forward(ctx, &peerpb.ForwardRequest{Command: data})
	if err != nil {
		return 0, err
	}
	return resp.Index, nil
}

// recipients are the joined members other than this agency, with their
// current epoch (epochOf) and whether its key already travelled.
func (f *Federation) recipients() (map[string]seal.Recipient, error) {
	ms, err := f.rep.Members()
	if err != nil {
		return nil, err
	}
	out := map[string]seal.Recipient{}
	for _, m := range ms {
		if !m.Joined || m.Agency == f.cfg.Agency {
			continue
		}
		epoch := epochOf(m)
		out[m.Agency] = seal.Recipient{SealingKey: m.SealingKey, Epoch: epoch, Granted: f.rep.Granted(f.cfg.Agency, m.Agency, epoch)}
	}
	return out, nil
}

// epochOf is the epoch of the origin→member keys: the log index at which the
// member joined. Keys follow membership: a member that leaves and joins
// again (with new keys, or an impostor under its id) starts a new epoch, so
// nothing published after its departure is wrapped under an epoch key it
// held, and its new sealing key is granted the new epoch's key. (A member
// from before join indexes were recorded keeps epoch 1.)
func epochOf(m *pb.Member) uint64 { return max(m.JoinedIndex, 1) }
