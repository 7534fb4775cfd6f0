// Package node is one agency's node. It owns the node's configuration, its
// data directory, the sharing policy in force, the screening index's upkeep,
// metrics and backups, and wires the parts, as cmd/rqlited and etcd's embed
// do: the record store (node/store), the federation side (node/federation:
// publishing, receiving, catch-up, the raft member) and the public gRPC
// services (node/api), all on one gRPC server under mutual TLS.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/hashicorp/raft"

	"github.com/watchfed/watchfed/node/anchor"
	"github.com/watchfed/watchfed/node/api"
	"github.com/watchfed/watchfed/node/federation"
	"github.com/watchfed/watchfed/node/peerwatch"
	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/node/screen"
	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
)

// Node is a running agency node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	now     func() time.Time
	server  *grpc.Server
	health  *health.Server
	lis     net.Listener
	opts    Options
	fed     *federation.Federation
	peers   *peerwatch.Watch // what this node last learned of each member
	metrics *metrics
	closing chan struct{}
	sharing sharing
	// index is the screening index over own records in force and readable
	// shared entries; it follows every write and every received entry.
	index *screen.Index
	// anchors anchors the head of the audit chain (node/anchor).
	anchors *anchor.Anchorer
}

// Options are the parts of a node that tests replace.
type Options struct {
	Now func() time.Time
	// Raft overrides raft's timing (tests use short timeouts).
	Raft *raft.Config
	// PublishWait bounds how long a write waits for its shared entry to
	// commit before it returns without a log index (default 10 s).
	PublishWait time.Duration
	// Recover starts the node as a one-member federation from its state:
	// the way out of a lost quorum, and the step after restoring a backup.
	Recover bool
	// AckBeforeCommit is a deliberate bug for testing the reliability
	// checker only: writes report a log index before their entry commits.
	AckBeforeCommit bool
	// MaxWatchers bounds concurrent Watch streams (default 128).
	MaxWatchers int
	// Join is the invitation the node was started with (--join). It is
	// kept in the data directory, and refused if the directory already
	// holds federation state from anything but this same invitation.
	Join *pb.Invitation
}

// Files in a node's data directory.
const (
	StoreFile      = "node.db"         // records, audit log, received entries
	KeysFile       = "keys.pem"        // signing, sealing and epoch master keys (0600)
	InvitationFile = "invitation.json" // the invitation a joining node started with
	raftDir        = "raft"            // wal/ and raft.db (the raft log), fsm.db, snapshots
)

// raftConfig is Options.Raft (or replication's defaults) with the
// configuration's snapshot spacing over it; nil if neither says anything.
func (n *Node) raftConfig() *raft.Config {
	if n.cfg.RaftSnapshotThreshold == 0 && n.cfg.RaftSnapshotInterval == 0 {
		return n.opts.Raft
	}
	c := replication.DefaultRaftConfig()
	if n.opts.Raft != nil {
		c = new(raft.Config)
		*c = *n.opts.Raft
	}
	if n.cfg.RaftSnapshotThreshold != 0 {
		c.SnapshotThreshold = n.cfg.RaftSnapshotThreshold
	}
	if n.cfg.RaftSnapshotInterval != 0 {
		c.SnapshotInterval = n.cfg.RaftSnapshotInterval
	}
	return c
}

// New opens the store and binds the listener; Serve starts answering.
func New(cfg Config, log *slog.Logger, opts Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PublishWait == 0 {
		opts.PublishWait = 10 * time.Second
	}
	tlsCfg, err := pki.Files{CACert: cfg.TLS.CACert, Cert: cfg.TLS.Cert, Key: cfg.TLS.Key}.ServerConfig()
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	if err := checkNodeCert(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, StoreFile), store.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	n := &Node{cfg: cfg, log: log, store: st, now: opts.Now, lis: lis, health: health.NewServer(), opts: opts, closing: make(chan struct{})}
	if opts.MaxWatchers <= 0 {
		opts.MaxWatchers = 128
	}
	if err := n.buildIndex(context.Background()); err != nil {
		lis.Close()
		st.Close()
		return nil, err
	}
	n.metrics = newMetrics(n)
	if n.fed, err = n.openFederation(tlsCfg); err == nil && opts.Join != nil {
		if err = n.checkJoin(opts.Join); err != nil {
			n.fed.Close()
		}
	}
	if err != nil {
		lis.Close()
		st.Close()
		return nil, err
	}
	n.metrics.reg.MustRegister(n.fed.Handshakes().Collectors()...)
	n.anchors = anchor.New(anchor.Config{
		Agency: cfg.Agency, DataDir: cfg.DataDir, Every: cfg.AuditAnchorEvents, Interval: cfg.AuditAnchorInterval,
		Chain: st, Log: n.fed, Key: n.fed.SigningKey(), Logger: log, Now: n.now,
	})
	n.peers = peerwatch.New(cfg.Agency, n.fed, n.now)
	n.metrics.reg.MustRegister(n.peers.Collector())
	n.reloadPolicy(context.Background())
	if cfg.Policy == "" {
		n.log.Warn("no sharing policy file (policy: / --policy): nothing is shared with partners")
	}
	guard := api.NewGuard(cfg.Agency, cfg.MaxMessageBytes, st, n.now, log)
	n.server = grpc.NewServer(
		grpc.Creds(n.fed.Handshakes().Server(credentials.NewTLS(n.fed.ServerTLS()))),
		// Raft batches between members may be large; public calls are held
		// to MaxMessageBytes by the interceptor.
		grpc.MaxRecvMsgSize(federation.MaxPeerMessage),
		grpc.MaxSendMsgSize(federation.MaxPeerMessage),
		grpc.MaxConcurrentStreams(1024),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(guard.Unary),
		grpc.ChainStreamInterceptor(guard.Stream),
	)
	api.Register(n.server, guard, api.Config{
		Agency: cfg.Agency, PolicyFile: cfg.Policy, Holidays: cfg.Holidays,
		PublishWait: opts.PublishWait, AckBeforeCommit: opts.AckBeforeCommit, Now: n.now,
		Store: st, Federation: n.fed, Peers: n.peers, Index: indexSource{n}, Policy: policySource{n},
		Backup: n.writeBackup, Closing: n.closing, MaxWatchers: opts.MaxWatchers,
		Anchors: auditAnchors{n},
	})
	n.fed.Register(n.server) // raft transport and PeerService
	healthpb.RegisterHealthServer(n.server, n.health)
	reflection.Register(n.server)
	return n, nil
}

// openFederation starts the node's federation side with what it needs of
// the node: the store, the policy in force, metrics, the screening index
// and the audit log.
func (n *Node) openFederation(tlsCfg *tls.Config) (*federation.Federation, error) {
	caPEM, err := os.ReadFile(n.cfg.TLS.CACert)
	if err != nil {
		return nil, fmt.Errorf("tls.ca_cert: %w", err)
	}
	inv, err := n.storedInvitation()
	if err != nil {
		return nil, err
	}
	if n.opts.Join != nil {
		inv = n.opts.Join
	}
	return federation.New(federation.Config{
		Agency: n.cfg.Agency, Advertise: n.advertise(),
		KeysFile: filepath.Join(n.cfg.DataDir, KeysFile), RaftDir: filepath.Join(n.cfg.DataDir, raftDir),
		RaftLogDir: n.cfg.RaftLogDir, RaftLogSegmentBytes: n.cfg.RaftLogSegmentBytes,
		TLS: tlsCfg, CACert: caPEM, PeerRoutes: n.cfg.PeerRoutes, Invitation: inv,
		Raft: n.raftConfig(), Recover: n.opts.Recover, Logger: n.log,
	}, federation.Deps{
		Store:      n.store,
		Policy:     policySource{n},
		Metrics:    federation.Metrics{Published: n.metrics.published, Received: n.metrics.received, PublishLatency: n.metrics.publishLat},
		OnReceived: func(rec *pb.Record) { n.follow(rec, true) },
		Audit:      n.auditEvent,
		AppendAudit: func(ev *pb.AuditEvent) {
			if _, err := n.store.AppendAudit(context.Background(), ev); err != nil {
				n.log.Error("audit append failed", "action", ev.Action, "err", err)
			}
		},
		Now: n.now,
	})
}

// checkNodeCert refuses to start with a certificate of another agency or
// without the node role: a misconfigured node must not serve.
func checkNodeCert(cfg Config) error {
	certPEM, err := os.ReadFile(cfg.TLS.Cert)
	if err != nil {
		return fmt.Errorf("tls.cert: %w", err)
	}
	cert, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		return fmt.Errorf("tls.cert %s: %w", cfg.TLS.Cert, err)
	}
	id, err := pki.IdentityOf(cert)
	if err != nil {
		return fmt.Errorf("tls.cert %s: %w", cfg.TLS.Cert, err)
	}
	if id.Agency != cfg.Agency {
		return fmt.Errorf("tls.cert %s names agency %s, but this node is %s", cfg.TLS.Cert, id.Agency, cfg.Agency)
	}
	if !id.Has(pki.RoleNode) {
		return fmt.Errorf("tls.cert %s lacks the node role (has %v)", cfg.TLS.Cert, id.Roles)
	}
	return nil
}

// Addr is the address the node listens on (useful with port 0).
func (n *Node) Addr() string { return n.lis.Addr().String() }

// RaftServers is raft's configuration as this node knows it: each server's
// id and whether it votes (what the registry is reconciled into; peers
// list shows the registry).
func (n *Node) RaftServers() (map[string]bool, error) { return n.fed.Voters() }

// advertise is the address partners reach this node at.
func (n *Node) advertise() string {
	if n.cfg.Advertise != "" {
		return n.cfg.Advertise
	}
	return n.Addr()
}

// peerPoll is how often the node asks every member for its status, for
// /metrics and for what peers list shows of a member that stopped answering.
const peerPoll = 2 * time.Second

// Serve answers until ctx is cancelled, then stops gracefully and closes the
// store. Every acknowledged write is already on disk, so a hard kill instead
// loses nothing either.
func (n *Node) Serve(ctx context.Context) error {
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	errc := make(chan error, 1)
	go func() { errc <- n.server.Serve(n.lis) }()
	loops, stopLoops := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); n.fed.Run(loops) }()
	wg.Add(1)
	go func() { defer wg.Done(); n.peers.Run(loops, peerPoll) }()
	wg.Add(1)
	go func() { defer wg.Done(); n.anchors.Run(loops) }()
	if n.cfg.MetricsListen != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.serveMetrics(loops, n.cfg.MetricsListen); err != nil {
				n.log.Error("metrics listener", "err", err)
			}
		}()
	}
	n.log.Info("node serving", "agency", n.cfg.Agency, "addr", n.Addr(), "data_dir", n.cfg.DataDir)
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	n.health.Shutdown()
	close(n.closing) // ends Watch streams
	stopLoops()
	wg.Wait()
	n.finalAnchor()
	if cerr := n.fed.Close(); cerr != nil && err == nil {
		err = cerr
	}
	done := make(chan struct{})
	go func() { n.server.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		n.server.Stop()
	}
	if cerr := n.store.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	n.log.Info("node stopped")
	return err
}

// auditAnchors are the node's own audit anchors and those the federation
// log holds, for the audit service.
type auditAnchors struct{ n *Node }

func (a auditAnchors) Own() ([]store.Anchor, error) { return a.n.anchors.Anchors() }
func (a auditAnchors) AcceptRestore(ctx context.Context) (anchor.Accepted, error) {
	return a.n.anchors.AcceptRestore(ctx)
}
func (a auditAnchors) Held(agency string) ([]replication.Anchor, error) {
	return a.n.fed.Anchors(agency)
}

// finalAnchor anchors the audit chain's head at shutdown, in the log if it
// can within a few seconds (a last node without a quorum cannot), else in
// the node's anchor file.
func (n *Node) finalAnchor() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := n.anchors.Final(ctx); err != nil {
		n.log.Warn("audit anchor at shutdown", "error", err)
	}
}

// WriteInvitation stores the invitation a joining node starts with.
func WriteInvitation(dataDir string, inv *pb.Invitation) error {
	data, err := protojson.Marshal(inv)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dataDir, InvitationFile), data, 0o600)
}
