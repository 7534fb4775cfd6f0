package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/auth"
	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/node/store"
	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/replication/transport"
)

// Files in a node's data directory besides node.db.
const (
	KeysFile       = "keys.pem"        // signing, sealing and epoch master keys (0600)
	InvitationFile = "invitation.json" // the invitation a joining node started with
	raftDir        = "raft"
)

// federation is the node's membership of the federation: its keys, its raft
// member, and the loops that publish its records and take in what partners
// sealed to it.
type federation struct {
	n      *Node
	keys   *seal.Keys
	sealer *seal.Sealer
	opener *seal.Opener
	trans  *transport.Transport
	rep    *replication.Replicator
	caPEM  []byte
	base   *tls.Config // the node's own certificate and CA
	invite *pb.Invitation
	// handshakes holds certificates to their agency's registered CA and
	// logs, counts and audits refused TLS handshakes, both ways.
	handshakes *auth.Handshakes

	wake     chan struct{} // a write queued something to publish
	mu       sync.Mutex
	waiters  map[string][]chan uint64 // versionKey → callers waiting for its log index
	received chan struct{}            // closed and replaced when entries were taken in

	held     holdings // what partners can read of this agency's entries
	lastPub  uint64   // log index of the last publication (publish loop only)
	caughtUp string   // policy generation and members the last catch-up ran for
}

// wakeUp asks the publish loop for a round now.
func (f *federation) wakeUp() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func newFederation(n *Node, base *tls.Config) (*federation, error) {
	keys, err := loadOrMakeKeys(filepath.Join(n.cfg.DataDir, KeysFile))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(n.cfg.TLS.CACert)
	if err != nil {
		return nil, err
	}
	f := &federation{
		n: n, keys: keys, caPEM: caPEM, base: base,
		sealer: seal.NewSealer(n.cfg.Agency, keys), opener: seal.NewOpener(n.cfg.Agency, keys),
		wake: make(chan struct{}, 1), waiters: map[string][]chan uint64{}, received: make(chan struct{}),
	}
	f.handshakes = auth.NewHandshakes(auth.HandshakeConfig{Logger: n.log, Issuers: f.issuers, Now: n.now, Audit: func(ev *pb.AuditEvent) {
		if _, err := n.store.AppendAudit(context.Background(), ev); err != nil {
			n.log.Error("audit append failed", "action", ev.Action, "err", err)
		}
	}})
	if data, err := os.ReadFile(filepath.Join(n.cfg.DataDir, InvitationFile)); err == nil {
		f.invite = &pb.Invitation{}
		if err := protojson.Unmarshal(data, f.invite); err != nil {
			return nil, fmt.Errorf("%s: %w", InvitationFile, err)
		}
	}
	f.trans, err = transport.New(transport.Config{
		LocalAddr:  raft.ServerAddress(n.advertise()),
		Dial:       func(ctx context.Context, target string) (*grpc.ClientConn, error) { return f.dial(target) },
		Authorize:  f.authorizeNode,
		MaxMessage: maxPeerMessage,
		Logger:     n.log,
	})
	if err != nil {
		return nil, err
	}
	f.rep, err = replication.Open(replication.Config{
		ID: n.cfg.Agency, Addr: n.advertise(), Dir: filepath.Join(n.cfg.DataDir, raftDir),
		Transport: f.trans, Verify: seal.Verify, Logger: n.log, Raft: n.opts.Raft, Recover: n.opts.Recover,
	})
	if err != nil {
		return nil, err
	}
	return f, nil
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
func (f *federation) trustPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(f.caPEM)
	for _, m := range f.knownMembers() {
		pool.AppendCertsFromPEM(m.CaCert)
	}
	return pool
}

// issuers are the CA certificates registered per agency: the registry's (or
// the invitation's) and this node's own.
func (f *federation) issuers() map[string][]byte {
	out := map[string][]byte{f.n.cfg.Agency: f.caPEM}
	for _, m := range f.knownMembers() {
		out[m.Agency] = slices.Concat(out[m.Agency], m.CaCert)
	}
	return out
}

// knownMembers is the registry, or the invitation's members until the
// registry has reached a joining node.
func (f *federation) knownMembers() []*pb.Member {
	ms, _ := f.rep.Members()
	if len(ms) == 0 && f.invite != nil {
		return f.invite.Members
	}
	return ms
}

// serverTLS builds each handshake's config with the current trust pool:
// membership changes take effect without a restart.
func (f *federation) serverTLS() *tls.Config {
	cfg := f.base.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := f.base.Clone()
		c.ClientCAs = f.trustPool()
		return c, nil
	}
	return cfg
}

func (f *federation) dial(target string) (*grpc.ClientConn, error) {
	cfg := f.base.Clone()
	cfg.ClientCAs, cfg.ClientAuth = nil, tls.NoClientCert
	cfg.RootCAs = f.trustPool()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(f.handshakes.Client(credentials.NewTLS(cfg))),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxPeerMessage), grpc.MaxCallSendMsgSize(maxPeerMessage))}
	if via, ok := f.n.cfg.PeerRoutes[target]; ok {
		// Connect elsewhere, but keep target as the name TLS verifies.
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", via)
		}))
	}
	return grpc.NewClient(target, opts...)
}

// barrier commits a barrier through the log and waits until this node has
// applied it and taken in every entry before it: a read after that reflects
// every write acknowledged before the barrier started.
func (f *federation) barrier(ctx context.Context) error {
	idx, err := f.apply(ctx, &peerpb.Command{Command: &peerpb.Command_Barrier{Barrier: &peerpb.Barrier{}}})
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
		received := f.receivedCh()
		got, err := f.n.store.ReceivedIndex()
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

// maxPeerMessage bounds node-to-node messages (raft batches of publications).
const maxPeerMessage = 64 << 20

// authorizeNode admits raft and peer calls only from the node certificates
// of registered members (invited or joined).
func (f *federation) authorizeNode(ctx context.Context) error {
	id, err := auth.PeerIdentity(ctx)
	if err != nil {
		return err
	}
	if !id.Has(pki.RoleNode) {
		return fmt.Errorf("certificate %s lacks the node role", id)
	}
	for _, m := range f.knownMembers() {
		if m.Agency == id.Agency {
			return nil
		}
	}
	if id.Agency == f.n.cfg.Agency {
		return nil
	}
	return fmt.Errorf("agency %s is not a federation member", id.Agency)
}

// self is this node's registry entry.
func (f *federation) self(voter bool) *pb.Member {
	pub := f.keys.Public()
	return &pb.Member{Agency: f.n.cfg.Agency, Address: f.n.advertise(), CaCert: f.caPEM, SigningKey: pub.Signing, SealingKey: pub.Sealing, Voter: voter}
}

// joined reports whether this agency is a joined member.
func (f *federation) joined() bool {
	m, err := f.rep.Member(f.n.cfg.Agency)
	return err == nil && m.Joined
}

// apply commits a command, through the leader if this node is not it.
func (f *federation) apply(ctx context.Context, cmd *peerpb.Command) (uint64, error) {
	data, err := proto.Marshal(cmd)
	if err != nil {
		return 0, err
	}
	return f.applyRaw(ctx, data)
}

// applyRaw is apply for an encoded command.
func (f *federation) applyRaw(ctx context.Context, data []byte) (uint64, error) {
	for attempt := 0; ; attempt++ {
		idx, err := f.rep.ApplyRaw(ctx, data)
		if !errors.Is(err, replication.ErrNotLeader) {
			return idx, err
		}
		_, addr := f.rep.Leader()
		if addr != "" && addr != f.n.advertise() {
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

func (f *federation) forward(ctx context.Context, addr string, data []byte) (uint64, error) {
	conn, err := f.dial(addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	resp, err := peerpb.NewPeerServiceClient(conn).Forward(ctx, &peerpb.ForwardRequest{Command: data})
	if err != nil {
		return 0, err
	}
	return resp.Index, nil
}

// recipients are the joined members other than this agency, with their
// current epoch (1 until rotation) and whether its key already travelled.
func (f *federation) recipients() (map[string]seal.Recipient, error) {
	ms, err := f.rep.Members()
	if err != nil {
		return nil, err
	}
	out := map[string]seal.Recipient{}
	for _, m := range ms {
		if !m.Joined || m.Agency == f.n.cfg.Agency {
			continue
		}
		out[m.Agency] = seal.Recipient{SealingKey: m.SealingKey, Epoch: 1, Granted: f.rep.Granted(f.n.cfg.Agency, m.Agency, 1)}
	}
	return out, nil
}

// publishLoop drains the outbox: every record version written locally and
// not local-only becomes a sealed entry in the log. It also grants the
// history of this agency's entries to members that joined since.
//
// On the leader it keeps up to maxInFlight publications submitted to raft at
// once: while one is stored and replicated the next is sealed, and raft
// writes and fsyncs those waiting together. A write is acknowledged as soon
// as its publication is applied; taking it off the outbox (one more fsync)
// happens after, off the write's path.
func (f *federation) publishLoop(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	p := &publisher{
		f: f, inflight: map[string]bool{},
		results: make(chan publishResult, maxInFlight), markWake: make(chan struct{}, 1),
	}
	go p.markLoop(ctx)
	for {
		f.n.reloadPolicy(ctx)
		if f.joined() {
			p.publish(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case r := <-p.results:
			p.done(ctx, r)
		case <-f.wake:
		case <-tick.C:
			p.failed = false
		}
	}
}

// maxBatch and maxBatchBytes bound one publication: a bulk import becomes
// many publications of this many entries (or this many bytes of records),
// each one signature, each well within a message between nodes.
const (
	maxBatch      = 1024
	maxBatchBytes = 4 << 20
)

// boundBytes keeps the records that fit in maxBatchBytes (at least one).
func boundBytes(recs []*pb.Record) []*pb.Record {
	size := 0
	for i, r := range recs {
		if size += proto.Size(r); size > maxBatchBytes && i > 0 {
			return recs[:i]
		}
	}
	return recs
}

// maxInFlight bounds the publications submitted and not yet applied.
const maxInFlight = 8

// publisher is publishLoop's state; only its goroutine touches it, but for
// inflight and toMark, shared with markLoop.
type publisher struct {
	f *federation
	// submitted counts publications awaiting their result.
	submitted int
	results   chan publishResult

	mu sync.Mutex
	// inflight holds the versions submitted and not yet off the outbox.
	inflight map[string]bool
	// toMark are published versions for markLoop to take off the outbox.
	toMark   []*pb.Record
	markWake chan struct{}

	// failed stops submitting after an error until the next tick.
	failed bool
}

type publishResult struct {
	recs  []*pb.Record
	idx   uint64
	err   error
	start time.Time
}

func versionKey(r *pb.Record) string { return store.OutboxKey(r.Id, r.Version) }

// publish grants history when nothing is in flight, then submits
// publications while there is room.
func (p *publisher) publish(ctx context.Context) {
	f := p.f
	for !p.failed && p.submitted < maxInFlight {
		rcpt, err := f.recipients()
		if err != nil {
			f.n.log.Warn("publish", "err", err)
			return
		}
		if f.needsCatchUp(rcpt) {
			// The policy or the members changed. Entries sealed before must
			// be in the log before the catch-up looks for what partners lack:
			// drain, then catch up.
			if p.submitted > 0 {
				return
			}
			if err := f.catchUpIfChanged(ctx); err != nil {
				if ctx.Err() == nil {
					f.n.log.Warn("deliver earlier entries", "err", err)
				}
				p.failed = true
				return
			}
			continue
		}
		p.mu.Lock()
		recs, err := f.n.store.OutboxExcept(ctx, maxBatch, p.inflight)
		p.mu.Unlock()
		if err != nil || len(recs) == 0 {
			if err != nil {
				f.n.log.Warn("publish", "err", err)
			}
			return
		}
		recs = boundBytes(recs)
		data, err := f.sealBatch(recs, rcpt)
		if err != nil {
			f.n.log.Warn("publish", "err", err)
			p.failed = true
			return
		}
		p.mu.Lock()
		for _, r := range recs {
			p.inflight[versionKey(r)] = true
		}
		p.mu.Unlock()
		p.submitted++
		start := time.Now()
		if wait, err := f.rep.Submit(data, 30*time.Second); err == nil {
			go func() {
				idx, err := wait()
				if err == nil {
					// The writers hear at once, not after this loop's turn.
					f.acknowledge(recs, idx)
				}
				p.results <- publishResult{recs: recs, idx: idx, err: err, start: start}
			}()
			continue
		}
		// Not the leader: forward, one publication at a time, so that they
		// reach the log in order.
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		idx, err := f.applyRaw(actx, data)
		cancel()
		if err == nil {
			f.acknowledge(recs, idx)
		}
		p.done(ctx, publishResult{recs: recs, idx: idx, err: err, start: start})
	}
}

// acknowledge gives the writers of the versions a publication carried its
// log index.
func (f *federation) acknowledge(recs []*pb.Record, idx uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rec := range recs {
		key := versionKey(rec)
		for _, ch := range f.waiters[key] {
			ch <- idx
		}
		delete(f.waiters, key)
	}
}

// done takes an acknowledged publication's versions off the outbox, or puts
// a failed one's back.
func (p *publisher) done(ctx context.Context, r publishResult) {
	f := p.f
	p.submitted--
	if r.err != nil {
		if ctx.Err() == nil {
			f.n.log.Warn("publish", "err", r.err)
		}
		// They stay in the outbox and go again; the FSM keeps the first copy
		// of a version if this one was committed after all.
		p.mu.Lock()
		for _, rec := range r.recs {
			delete(p.inflight, versionKey(rec))
		}
		p.mu.Unlock()
		p.failed = true
		return
	}
	f.n.metrics.publishLat.Observe(time.Since(r.start).Seconds())
	p.mu.Lock()
	p.toMark = append(p.toMark, r.recs...)
	p.mu.Unlock()
	select {
	case p.markWake <- struct{}{}:
	default:
	}
}

// markLoop takes published versions off the outbox, many publications'
// worth in one transaction, and only then out of inflight.
func (p *publisher) markLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.markWake:
		}
		p.mu.Lock()
		recs := p.toMark
		p.toMark = nil
		p.mu.Unlock()
		if len(recs) == 0 {
			continue
		}
		if err := p.f.n.store.MarkPublished(ctx, recs); err != nil && ctx.Err() == nil {
			// They stay in the outbox and are published again: a duplicate
			// the FSM ignores.
			p.f.n.log.Warn("take published records off the outbox", "err", err)
		}
		// Counted once off the outbox, so that the outbox gauge and this
		// counter agree.
		p.f.n.metrics.published.Add(float64(len(recs)))
		p.mu.Lock()
		for _, r := range recs {
			delete(p.inflight, versionKey(r))
		}
		p.mu.Unlock()
	}
}

// sealBatch seals record versions, each with the bodies the policy gives
// each partner, into one encoded publication command.
func (f *federation) sealBatch(recs []*pb.Record, rcpt map[string]seal.Recipient) ([]byte, error) {
	h, err := f.holdings()
	if err != nil {
		return nil, err
	}
	names := sortedKeys(rcpt)
	pol := f.n.policy()
	items := make([]seal.Item, 0, len(recs))
	for _, r := range recs {
		bodies, err := f.bodiesFor(pol, r, names, h)
		if err != nil {
			return nil, err
		}
		if len(bodies) == 0 {
			// Shared with no partner (yet): the entry is still ordered in the
			// log, with a body only the origin can open, so a partner the
			// policy names later gets it by a key grant.
			plain, err := pol.Decide(r, "").Plaintext(r)
			if err != nil {
				return nil, err
			}
			bodies = []seal.BodyPlain{{Plaintext: plain}}
		}
		items = append(items, seal.Item{Header: &peerpb.EnvelopeHeader{EntryId: r.Id, Version: r.Version, Kind: r.Kind, Marking: r.Marking, RelTo: r.RelTo}, Bodies: bodies})
	}
	pub, err := f.sealer.Seal(items, rcpt)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(&peerpb.Command{Command: &peerpb.Command_Publication{Publication: pub}})
}

// expectPublished registers a waiter for a record version's log index. It is
// called before the version is stored, so that the publish loop cannot take
// it up before anyone listens. wait wakes the loop and waits until the
// version is committed, returning its index; 0 if the node is in no
// federation or ctx ends first (the version stays queued and is published
// later). drop forgets the waiter when the write did not happen.
func (f *federation) expectPublished(r *pb.Record) (wait func(ctx context.Context) uint64, drop func()) {
	if r.Local || !f.joined() {
		return func(context.Context) uint64 { return 0 }, func() {}
	}
	ch := make(chan uint64, 1)
	key := versionKey(r)
	f.mu.Lock()
	f.waiters[key] = append(f.waiters[key], ch)
	f.mu.Unlock()
	drop = func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		ws := slices.DeleteFunc(f.waiters[key], func(c chan uint64) bool { return c == ch })
		if len(ws) == 0 {
			delete(f.waiters, key)
		} else {
			f.waiters[key] = ws
		}
	}
	wait = func(ctx context.Context) uint64 {
		f.wakeUp()
		select {
		case idx := <-ch:
			return idx
		case <-ctx.Done():
			drop()
			return 0
		}
	}
	return wait, drop
}

// catchUpIfChanged runs a catch-up when the policy in force or the joined
// members changed since the last one that completed.
func (f *federation) catchUpIfChanged(ctx context.Context) error {
	rcpt, err := f.recipients()
	if err != nil {
		return err
	}
	fp := f.catchUpPrint(rcpt)
	if fp == f.caughtUp {
		return nil
	}
	if _, err := f.catchUp(ctx); err != nil {
		return err
	}
	f.caughtUp = fp
	return nil
}

// catchUpPrint identifies the policy in force and the joined members.
func (f *federation) catchUpPrint(rcpt map[string]seal.Recipient) string {
	_, gen := f.n.policyState()
	return fmt.Sprint(gen, sortedKeys(rcpt))
}

// needsCatchUp reports whether the policy or the members changed since the
// last catch-up that completed.
func (f *federation) needsCatchUp(rcpt map[string]seal.Recipient) bool {
	return f.catchUpPrint(rcpt) != f.caughtUp
}

// receiveLoop takes in, in log order, what the log brings this agency:
// epoch keys sealed to it, and the entries it can open.
func (f *federation) receiveLoop(ctx context.Context) {
	for {
		changed := f.rep.Changed()
		if err := f.receiveAvailable(ctx); err != nil && ctx.Err() == nil {
			f.n.log.Error("take in shared entries", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

func (f *federation) receiveAvailable(ctx context.Context) error {
	for {
		from, err := f.n.store.ReceivedIndex()
		if err != nil {
			return err
		}
		es, err := f.rep.Entries(from, 256)
		if err != nil || len(es) == 0 {
			return err
		}
		batch := make([]store.Received, 0, len(es))
		// Epoch keys opened in this batch are stored only with it: later
		// entries of the batch (a catch-up after a restart) need them now.
		keys := map[string][]byte{}
		for _, e := range es {
			r := f.open(e, keys)
			f.n.metrics.received.Add(float64(len(r.Entries)))
			batch = append(batch, r)
		}
		if err := f.n.store.TakeIn(ctx, batch, es[len(es)-1].Index); err != nil {
			return err
		}
		for _, r := range batch {
			for _, e := range r.Entries {
				f.n.follow(e.Record, true)
			}
		}
		f.mu.Lock()
		close(f.received)
		f.received = make(chan struct{})
		f.mu.Unlock()
	}
}

// open decrypts what one entry holds for this agency; keys holds the epoch
// keys opened earlier in the same batch, and receives this entry's.
func (f *federation) open(e replication.Entry, keys map[string][]byte) store.Received {
	r := store.Received{Index: e.Index}
	self := f.n.cfg.Agency
	epochKey := func(origin string, epoch uint64) ([]byte, bool) {
		if k, ok := keys[fmt.Sprint(origin, "/", epoch)]; ok {
			return k, true
		}
		return f.n.store.EpochKey(origin, epoch)
	}
	for _, g := range e.Body.EpochGrants {
		if g.Recipient != self {
			continue
		}
		k, err := f.opener.OpenEpochGrant(g)
		if err != nil {
			f.n.log.Warn("epoch grant does not open", "origin", g.Origin, "index", e.Index, "err", err)
			continue
		}
		keys[fmt.Sprint(g.Origin, "/", g.Epoch)] = k
		r.EpochKeys = append(r.EpochKeys, store.EpochKey{Origin: g.Origin, Epoch: g.Epoch, Key: k})
	}
	if e.Body.Origin == self {
		return r // this agency's own entries are its records already
	}
	add := func(h *peerpb.EnvelopeHeader, plain []byte) {
		rec := &pb.Record{}
		if err := proto.Unmarshal(plain, rec); err != nil || rec.Origin != h.Origin || rec.Id != h.EntryId || rec.Version != h.Version {
			f.n.log.Warn("shared body does not match its header", "entry", h.EntryId, "index", e.Index)
			return
		}
		if err := record.CheckText(rec); err != nil { // a partner's node may send any bytes
			f.n.log.Warn("shared entry refused: text unsafe to print", "origin", h.Origin, "entry", h.EntryId, "index", e.Index, "err", err)
			r.Audit = append(r.Audit, &pb.AuditEvent{Time: timestamppb.New(f.n.now()), Agency: h.Origin, Action: "shared.refused", Target: h.EntryId,
				Outcome: "invalid", Detail: fmt.Sprintf("version %d at log index %d: %v", h.Version, e.Index, err)})
			return
		}
		se := &pb.SharedEntry{Origin: h.Origin, Record: rec, LogIndex: e.Index}
		r.Entries = append(r.Entries, se)
		if ev := receivedAudit(se, f.n.now()); ev != nil {
			r.Audit = append(r.Audit, ev)
		}
	}
	for _, env := range e.Body.Envelopes {
		for i, b := range env.Bodies {
			plain, err := f.opener.OpenBody(env.Header, uint32(i), b, epochKey)
			if errors.Is(err, seal.ErrNotRecipient) {
				continue
			}
			if err != nil {
				f.n.log.Warn("shared body does not open", "entry", env.Header.EntryId, "err", err)
				continue
			}
			add(env.Header, plain)
		}
	}
	for _, g := range e.Body.KeyGrants {
		if g.GetKey().GetRecipient() != self {
			continue
		}
		env, err := f.rep.Envelope(g.EntryId, g.Version)
		if err != nil || int(g.BodyIndex) >= len(env.Bodies) {
			f.n.log.Warn("key grant for an unknown body", "entry", g.EntryId, "err", err)
			continue
		}
		plain, err := f.opener.OpenGranted(env.Header, env.Bodies[g.BodyIndex], g, epochKey)
		if err != nil {
			f.n.log.Warn("granted body does not open", "entry", g.EntryId, "err", err)
			continue
		}
		add(env.Header, plain)
	}
	return r
}

// receivedCh returns a channel closed when new entries were taken in.
func (f *federation) receivedCh() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.received
}
