package federation

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node/store"
	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/diskfull"
)

// publishLoop drains the outbox: every record version written locally and
// not local-only becomes a sealed entry in the log. It also grants the
// history of this agency's entries to members that joined since.
//
// It keeps up to maxInFlight publications submitted to raft at once (or, on
// a follower, forwarded to the leader over one stream): while one is stored
// and replicated the next is sealed, and raft writes and fsyncs those
// waiting together. A write is acknowledged as soon
// as its publication is applied; taking it off the outbox (one more fsync)
// happens after, off the write's path.
func (f *Federation) publishLoop(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	p := &publisher{
		f: f, inflight: map[string]bool{},
		results: make(chan publishResult, maxInFlight), markWake: make(chan struct{}, 1),
	}
	go p.markLoop(ctx)
	// The policy file is looked at before each publication is sealed
	// (publish) and on every tick, not on every turn: a turn comes with each
	// write's wake-ups and results, many per publication, and its stat was
	// 1.5 % of the CPU at 64 publishers.
	f.policy.Reload(ctx)
	for {
		if f.Joined() {
			p.publish(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case r := <-p.results:
			p.done(ctx, r)
		case <-f.wake:
		case <-tick.C:
			// Once a tick the outbox is read from its first version, as
			// it was on every turn: a version the reads from where the last
			// ended could miss waits at most this long.
			p.mu.Lock()
			p.outbox.Reset()
			p.mu.Unlock()
			// A change of the file (or of the members it names) is taken
			// up, and its catch-up run, with nothing to publish too.
			f.policy.Reload(ctx)
			// Resume once the publications in flight when one failed are
			// all reported: sent again, they keep their order.
			if p.submitted == 0 {
				p.failed = false
			}
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
	f *Federation
	// submitted counts publications awaiting their result.
	submitted int
	// target is where those went: this node's address, or the leader's
	// they were forwarded to.
	target  string
	results chan publishResult

	mu sync.Mutex
	// inflight holds the versions submitted and not yet off the outbox.
	inflight map[string]bool
	// outbox is where the last read of the outbox ended. Every version read
	// goes into inflight; one that leaves inflight while still in the outbox
	// (not taken, failed, not marked) resets it, so the next read starts
	// from the first version again.
	outbox store.OutboxPos
	// toMark are published versions for markLoop to take off the outbox.
	toMark   []*pb.Record
	markWake chan struct{}

	// failed stops submitting after an error until the next tick.
	failed bool

	// sealed is a publication sealed while its version's store commit ran.
	sealed *sealedAhead
	// lastBatch is the number of versions the last publication carried.
	lastBatch int
}

// ahead is the record version a lone writer is committing to the store now
// (ExpectPublished is called before the commit), so that the publish loop,
// idle meanwhile, can seal it while the commit's fsyncs run. It holds a
// copy: the writer's record may still change until it is stored.
type ahead struct {
	mu  sync.Mutex
	rec *pb.Record
	n   int // versions registered since the loop last looked
	// busy: the last publication carried several versions, so writers are
	// not alone and nothing is sealed ahead (nor the loop woken for it).
	busy bool
}

// add notes a version about to be committed; true if it is the only one
// and the loop may seal it ahead.
func (a *ahead) add(r *pb.Record) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	a.rec = nil
	if a.n == 1 && !a.busy {
		a.rec = proto.Clone(r).(*pb.Record)
	}
	return a.rec != nil
}

// setLone notes whether the last publication carried one version at most.
func (a *ahead) setLone(lone bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.busy = !lone
}

// remove forgets a version whose write did not happen.
func (a *ahead) remove(r *pb.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rec != nil && a.rec.Id == r.Id && a.rec.Version == r.Version {
		a.rec = nil
	}
}

// take returns the lone version registered since the last call, if any:
// the loop takes it at the start of each round.
func (a *ahead) take() *pb.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.rec
	a.rec, a.n = nil, 0
	return r
}

// sealedAhead is a publication sealed before its versions were read from
// the outbox, with what its sealing depended on.
type sealedAhead struct {
	recs    []*pb.Record
	data    []byte
	rcpt    map[string]seal.Recipient
	policy  uint64 // its generation
	scanned uint64 // the log index the holdings were scanned to before
}

// sealAhead seals, while nothing is in flight, the one version a writer is
// committing now, so that the publication is ready when the commit
// returns: a lone writer's sealing no longer follows its fsyncs. It is
// submitted only once the outbox read returns that very version, committed
// (takeSealed). With several writers (the last publication carried more
// than one version, or another writer waits) their versions commit
// together and a publication sealed for one would be wasted CPU: they are
// sealed after the commit, as before.
func (p *publisher) sealAhead(r *pb.Record, rcpt map[string]seal.Recipient) {
	f := p.f
	if p.submitted > 0 || r == nil || p.lastBatch > 1 {
		return // not a lone writer: others commit with it, sealed together
	}
	f.mu.Lock()
	alone := len(f.waiters) == 1 && len(f.waiters[versionKey(r)]) == 1
	f.mu.Unlock()
	if !alone {
		return
	}
	if _, err := f.holdings(); err != nil {
		return
	}
	s := &sealedAhead{recs: []*pb.Record{r}, rcpt: rcpt, policy: f.policy.Generation(), scanned: f.held.scanned()}
	data, err := f.sealBatch(s.recs, rcpt)
	if err != nil {
		return // sealed again, and the error reported, once committed
	}
	s.data = data
	p.sealed = s
}

// takeSealed returns the publication sealed ahead if it is for exactly
// these versions, as committed, and nothing it was sealed under changed:
// the recipients, their keys and grants, the policy, and the log entries
// the holdings were scanned to (a withdrawal depends on them). Anything
// else is sealed again: the bytes submitted are always those sealBatch
// gives for the versions read from the outbox.
func (p *publisher) takeSealed(recs []*pb.Record, rcpt map[string]seal.Recipient) ([]byte, bool) {
	s := p.sealed
	p.sealed = nil
	f := p.f
	if s == nil || len(s.recs) != len(recs) || s.policy != f.policy.Generation() || !sameRecipients(s.rcpt, rcpt) {
		return nil, false
	}
	for i, r := range recs {
		if !proto.Equal(r, s.recs[i]) {
			return nil, false
		}
	}
	if _, err := f.holdings(); err != nil || f.held.scanned() != s.scanned {
		return nil, false
	}
	return s.data, true
}

func sameRecipients(a, b map[string]seal.Recipient) bool {
	return maps.EqualFunc(a, b, func(x, y seal.Recipient) bool {
		return x.Epoch == y.Epoch && x.Granted == y.Granted && bytes.Equal(x.SealingKey, y.SealingKey)
	})
}

// scanned is the log index the holdings were scanned to.
func (h *holdings) scanned() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.upTo
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
	next := f.ahead.take()
	// A record is sealed, and a catch-up runs, under the policy file as it
	// stands then: the file is looked at once a call, before the first of
	// them. If that changed the policy in force, the recipients and the
	// catch-up are looked at again.
	reloaded := false
	reload := func() (changed bool) {
		if reloaded {
			return false
		}
		reloaded = true
		gen := f.policy.Generation()
		f.policy.Reload(ctx)
		return f.policy.Generation() != gen
	}
	for !p.failed && p.submitted < maxInFlight {
		rcpt, err := f.recipients()
		if err != nil {
			f.log.Warn("publish", "err", err)
			return
		}
		if f.needsCatchUp(rcpt) {
			if reload() {
				continue
			}
			// The policy or the members changed. Entries sealed before must
			// be in the log before the catch-up looks for what partners lack:
			// drain, then catch up.
			if p.submitted > 0 {
				return
			}
			if err := f.catchUpIfChanged(ctx); err != nil {
				if ctx.Err() == nil {
					f.log.Warn("deliver earlier entries", "err", err)
				}
				p.failed = true
				return
			}
			continue
		}
		// Publications in flight to one leader are ordered by it; before
		// sending to another (or putting them in the log here), wait until
		// they are done, so that none overtakes an earlier one.
		target := f.leaderAddr()
		if p.submitted > 0 && target != p.target {
			return
		}
		p.mu.Lock()
		recs, err := f.store.OutboxExcept(ctx, maxBatch, p.inflight, &p.outbox)
		p.mu.Unlock()
		if err != nil {
			f.log.Warn("publish", "err", err)
			return
		}
		if len(recs) == 0 {
			p.sealAhead(next, rcpt)
			return
		}
		if reload() {
			p.readAgain() // under the new policy
			continue
		}
		if b := boundBytes(recs); len(b) < len(recs) {
			recs = b
			p.readAgain() // the rest go in the next publication
		}
		data, ok := p.takeSealed(recs, rcpt)
		if !ok {
			if data, err = f.sealBatch(recs, rcpt); err != nil {
				f.log.Warn("publish", "err", err)
				p.readAgain()
				p.failed = true
				return
			}
		}
		p.mu.Lock()
		for _, r := range recs {
			p.inflight[versionKey(r)] = true
		}
		p.mu.Unlock()
		p.submitted++
		p.lastBatch = len(recs)
		f.ahead.setLone(len(recs) <= 1)
		start := time.Now()
		if wait, err := f.rep.Submit(data, 30*time.Second); err == nil {
			p.target = f.cfg.Advertise
			go p.await(recs, start, func() (uint64, error) { return wait() })
			continue
		}
		// Not the leader: forward, pipelined over the stream to the leader.
		if target != "" && target != f.cfg.Advertise {
			wait, err := f.forwardAsync(target, data)
			if err == nil {
				p.target = target
				go p.await(recs, start, func() (uint64, error) {
					wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					defer cancel()
					return wait(wctx)
				})
				continue
			}
			if !errors.Is(err, errNoStream) {
				// No stream now: sent another way, this publication could
				// overtake those in flight. It goes again after them.
				p.done(ctx, publishResult{recs: recs, err: err, start: start})
				return
			}
		}
		// No leader known, or one of a release without pipelined forwards:
		// one publication at a time, so that they reach the log in order.
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		idx, err := f.applyRaw(actx, data, nil) // this agency's own publication
		cancel()
		if err == nil {
			f.acknowledge(recs, idx)
		}
		p.done(ctx, publishResult{recs: recs, idx: idx, err: err, start: start})
	}
}

// readAgain makes the next read of the outbox start from its first
// version: versions read were not all put in flight.
func (p *publisher) readAgain() {
	p.mu.Lock()
	p.outbox.Reset()
	p.mu.Unlock()
}

// await waits for a submitted publication's index, acknowledges its
// writers at once (not after the loop's turn) and reports it to the loop.
func (p *publisher) await(recs []*pb.Record, start time.Time, wait func() (uint64, error)) {
	idx, err := wait()
	if err == nil {
		p.f.acknowledge(recs, idx)
	}
	p.results <- publishResult{recs: recs, idx: idx, err: err, start: start}
}

// leaderAddr is the leader's address as this node knows it ("" if none).
func (f *Federation) leaderAddr() string {
	if f.rep.IsLeader() {
		return f.cfg.Advertise
	}
	_, addr := f.rep.Leader()
	return addr
}

// acknowledge gives the writers of the versions a publication carried its
// log index.
func (f *Federation) acknowledge(recs []*pb.Record, idx uint64) {
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
			f.log.Warn("publish", "err", r.err)
		}
		// They stay in the outbox and go again; the FSM keeps the first copy
		// of a version if this one was committed after all.
		p.mu.Lock()
		for _, rec := range r.recs {
			delete(p.inflight, versionKey(rec))
		}
		p.outbox.Reset()
		p.mu.Unlock()
		p.failed = true
		return
	}
	f.metrics.PublishLatency.Observe(time.Since(r.start).Seconds())
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
		err := p.f.store.MarkPublished(ctx, recs)
		if err != nil && ctx.Err() == nil && !diskfull.Is(err) {
			// They stay in the outbox and are published again: a duplicate
			// the FSM ignores.
			p.f.log.Warn("take published records off the outbox", "err", err)
		}
		// Counted once off the outbox, so that the outbox gauge and this
		// counter agree.
		p.f.metrics.Published.Add(float64(len(recs)))
		p.mu.Lock()
		for _, r := range recs {
			delete(p.inflight, versionKey(r))
		}
		if err != nil {
			p.outbox.Reset() // still in the outbox, out of inflight
		}
		p.mu.Unlock()
	}
}

// sealBatch seals record versions, each with the bodies the policy gives
// each partner, into one encoded publication command.
func (f *Federation) sealBatch(recs []*pb.Record, rcpt map[string]seal.Recipient) ([]byte, error) {
	h, err := f.holdings()
	if err != nil {
		return nil, err
	}
	names := sortedKeys(rcpt)
	pol := f.policy.Current()
	items := make([]seal.Item, len(recs))
	// Each record's bodies (policy decisions, redaction, encoding) on every core.
	err = seal.Parallel(len(recs), func(i int) error {
		r := recs[i]
		bodies, err := f.bodiesFor(pol, r, names, h)
		if err != nil {
			return err
		}
		if len(bodies) == 0 {
			// Shared with no partner (yet): the entry is still ordered in the
			// log, with a body only the origin can open, so a partner the
			// policy names later gets it by a key grant.
			plain, err := pol.Decide(r, "").Plaintext(r)
			if err != nil {
				return err
			}
			bodies = []seal.BodyPlain{{Plaintext: plain}}
		}
		items[i] = seal.Item{Header: &peerpb.EnvelopeHeader{EntryId: r.Id, Version: r.Version, Kind: r.Kind, Marking: r.Marking, RelTo: r.RelTo}, Bodies: bodies}
		return nil
	})
	if err != nil {
		return nil, err
	}
	cmd, pub, body, err := f.sealer.SealCommand(items, rcpt) // the body marshalled once, inside the command
	if err != nil {
		return nil, err
	}
	f.rememberOwn(pub, body)
	return cmd, nil
}

// ExpectPublished registers a waiter for a record version's log index. It is
// called before the version is stored, so that the publish loop cannot take
// it up before anyone listens. wait wakes the loop and waits until the
// version is committed, returning its index; 0 if the node is in no
// federation or ctx ends first (the version stays queued and is published
// later). drop forgets the waiter when the write did not happen.
func (f *Federation) ExpectPublished(r *pb.Record) (wait func(ctx context.Context) uint64, drop func()) {
	if r.Local || !f.Joined() {
		return func(context.Context) uint64 { return 0 }, func() {}
	}
	ch := make(chan uint64, 1)
	key := versionKey(r)
	f.mu.Lock()
	f.waiters[key] = append(f.waiters[key], ch)
	f.mu.Unlock()
	if f.ahead.add(r) {
		f.WakeUp() // to seal it while it is committed
	}
	drop = func() {
		f.ahead.remove(r)
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
		f.WakeUp()
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
