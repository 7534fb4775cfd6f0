package federation

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node/store"
	"github.com/watchfed/watchfed/policy"
	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// holdings is what each partner can read of this agency's entries, read
// from the log itself (bodies sealed to it and key grants), so it is exact
// after a crash and never claims what was not committed. Only what reached a
// partner since it last joined counts: a member that joined again holds new
// keys, and what was sealed to its old ones is delivered again.
type holdings struct {
	mu      sync.Mutex
	upTo    uint64                       // log index scanned so far
	joined  map[string]uint64            // partner → the join index its holdings count from
	held    map[string]map[string]uint64 // entry id → partner → highest version it can read
	reseals map[string]uint32            // "id@version" → highest reseal number published
	order   []string                     // entry ids in the order of their first publication
	latest  map[string]uint64            // entry id → latest published version
}

// refresh scans the log entries applied since the last call.
func (f *Federation) holdings() (*holdings, error) {
	h := &f.held
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held == nil {
		h.held, h.reseals, h.latest, h.joined = map[string]map[string]uint64{}, map[string]uint32{}, map[string]uint64{}, map[string]uint64{}
	}
	members, err := f.rep.Members()
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		if m.Joined && h.joined[m.Agency] != m.JoinedIndex {
			// Joined again since the last scan: what it held before is
			// sealed to keys it no longer has.
			for _, byPartner := range h.held {
				delete(byPartner, m.Agency)
			}
			h.joined[m.Agency] = m.JoinedIndex
		}
	}
	var index uint64 // of the entry being scanned
	note := func(id, partner string, v uint64) {
		if index < h.joined[partner] {
			return // sealed to keys of an earlier membership
		}
		if h.held[id] == nil {
			h.held[id] = map[string]uint64{}
		}
		h.held[id][partner] = max(h.held[id][partner], v)
	}
	for {
		es, err := f.rep.EntriesFrom(h.upTo, 1024, f.cfg.Agency)
		if err != nil {
			return nil, err
		}
		if len(es) == 0 {
			return h, nil
		}
		for _, e := range es {
			h.upTo, index = e.Index, e.Index
			if e.Body.Origin != f.cfg.Agency {
				continue
			}
			for _, env := range e.Body.Envelopes {
				hd := env.Header
				if _, seen := h.latest[hd.EntryId]; !seen {
					h.order = append(h.order, hd.EntryId)
				}
				h.latest[hd.EntryId] = max(h.latest[hd.EntryId], hd.Version)
				key := fmt.Sprintf("%s@%d", hd.EntryId, hd.Version)
				h.reseals[key] = max(h.reseals[key], hd.Reseal)
				for _, b := range env.Bodies {
					for _, r := range b.Recipients {
						note(hd.EntryId, r, hd.Version)
					}
				}
			}
			for _, g := range e.Body.KeyGrants {
				note(g.EntryId, g.GetKey().GetRecipient(), g.Version)
			}
		}
	}
}

// holds is the highest version of an entry a partner can read (0: none).
func (h *holdings) holds(id, partner string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held[id][partner]
}

// bodiesFor turns the policy's decisions for one record version into sealed
// bodies: partners with the same decision share one body; partners left
// out get none. A delisting (or a denial's end) also reaches every partner
// that holds an earlier version but is no longer entitled to the record, as
// a withdrawal notice that carries no redactable field.
func (f *Federation) bodiesFor(pol *policy.Policy, rec *pb.Record, partners []string, h *holdings) ([]seal.BodyPlain, error) {
	if rec.Kind == pb.Kind_KIND_CONSULTATION {
		return consultationBodies(rec, partners)
	}
	groups := map[string]*seal.BodyPlain{}
	var keys []string
	for _, p := range partners {
		d := pol.Decide(rec, p)
		if !d.Share {
			if store.Active(rec) || h.holds(rec.Id, p) == 0 || rec.Origin != f.cfg.Agency || rec.Local {
				continue
			}
			d = policy.Withdrawal(rec, p)
		}
		k := d.Key()
		if groups[k] == nil {
			plain, err := d.Plaintext(rec)
			if err != nil {
				return nil, err
			}
			groups[k] = &seal.BodyPlain{Plaintext: plain}
			keys = append(keys, k)
		}
		groups[k].Recipients = append(groups[k].Recipients, p)
	}
	out := make([]seal.BodyPlain, 0, len(keys))
	for _, k := range keys {
		out = append(out, *groups[k])
	}
	return out, nil
}

// catchUp delivers to each partner the entries the policy now entitles it
// to but it cannot read yet: a new member, or a partner a widened policy
// names. It walks this agency's entries in the order they were first
// published, and for each reuses a published body by a key grant when that
// body is exactly what the partner is entitled to, else seals a further
// body for it. It returns the number of entries delivered.
func (f *Federation) catchUp(ctx context.Context) (int, error) {
	h, err := f.holdings()
	if err != nil {
		return 0, err
	}
	rcpt, err := f.recipients()
	if err != nil || len(rcpt) == 0 {
		return 0, err
	}
	pol := f.policy.Current()
	h.mu.Lock()
	order := slices.Clone(h.order)
	h.mu.Unlock()
	delivered := 0
	for _, partner := range sortedKeys(rcpt) {
		before := delivered
		if err := f.catchUpPartner(ctx, pol, h, order, partner, rcpt[partner], &delivered); err != nil {
			return delivered, err
		}
		if n := delivered - before; n > 0 {
			f.audit(ctx, "policy.deliver", partner, fmt.Sprintf("%d earlier entries delivered to %s, newly entitled by the policy or newly joined", n, partner))
		}
	}
	if delivered > 0 {
		// Let the holdings see what was just published before the next round.
		if err := f.waitApplied(ctx); err != nil {
			return delivered, err
		}
		if _, err := f.holdings(); err != nil {
			return delivered, err
		}
		f.log.Info("delivered earlier entries to newly entitled partners", "entries", delivered)
	}
	return delivered, nil
}

// catchUpChunk is how many records a catch-up reads from the store at once.
const catchUpChunk = 256

// catchUpPartner is catchUp for one partner; it adds what it delivered to *delivered.
func (f *Federation) catchUpPartner(ctx context.Context, pol *policy.Policy, h *holdings, order []string, partner string, rc seal.Recipient, delivered *int) (err error) {
	self, err := f.sealer.EpochKey(f.cfg.Agency, 0)
	if err != nil {
		return err
	}
	keys := func(string, uint64) ([]byte, bool) { return self, true }
	q := f.startPublishing(ctx)
	defer func() {
		n, qerr := q.close()
		*delivered += n
		err = cmp.Or(err, qerr)
	}()
	var grants []seal.GrantRef
	flush := func() error {
		if len(grants) == 0 {
			return nil
		}
		pub, err := f.sealer.Grant(grants, partner, rc)
		if err != nil {
			return err
		}
		// Publications go out in order and the queue stops at the first
		// that fails: the ones after this carry no epoch grant of their own.
		epoch := !rc.Granted
		rc.Granted = true
		n := len(grants)
		grants = nil
		return q.put(ctx, queued{pub: pub, n: n, epoch: epoch})
	}
	for next := 0; next < len(order); {
		// The next entries the partner cannot read yet, read at once.
		var refs []store.VersionRef
		h.mu.Lock()
		for ; next < len(order) && len(refs) < catchUpChunk; next++ {
			id := order[next]
			if v := h.latest[id]; h.held[id][partner] < v {
				refs = append(refs, store.VersionRef{ID: id, Version: v})
			}
		}
		h.mu.Unlock()
		if len(refs) == 0 {
			continue
		}
		ws, err := f.walk(ctx, pol, refs, partner, keys)
		if err != nil {
			return fmt.Errorf("catch up %s: %w", partner, err)
		}
		for _, w := range ws {
			if !w.share {
				continue
			}
			rec, want := w.rec, w.want
			if w.same {
				grants = append(grants, w.ref)
				if len(grants) >= maxBatch {
					if err := flush(); err != nil {
						return err
					}
				}
				continue
			}
			// No published body is what this partner is now entitled to: seal
			// one more, after the grants before it (order is kept).
			if err := flush(); err != nil {
				return err
			}
			key := fmt.Sprintf("%s@%d", rec.Id, rec.Version)
			h.mu.Lock()
			h.reseals[key]++
			n := h.reseals[key]
			h.mu.Unlock()
			item := seal.Item{
				Header: &peerpb.EnvelopeHeader{EntryId: rec.Id, Version: rec.Version, Kind: rec.Kind, Marking: rec.Marking, RelTo: rec.RelTo, Reseal: n},
				Bodies: []seal.BodyPlain{{Recipients: []string{partner}, Plaintext: want}},
			}
			pub, err := f.sealer.Seal([]seal.Item{item}, map[string]seal.Recipient{partner: rc})
			if err != nil {
				return err
			}
			epoch := !rc.Granted
			rc.Granted = true
			if err := q.put(ctx, queued{pub: pub, n: 1, epoch: epoch}); err != nil {
				return err
			}
		}
	}
	return flush()
}

// walked is what the catch-up worked out for one record version.
type walked struct {
	rec   *pb.Record
	share bool   // the partner is entitled to it
	want  []byte // what it is entitled to read (if share)
	ref   seal.GrantRef
	same  bool // ref is a published body that is exactly want
}

// walk works out, for records of this agency, what a partner is entitled to
// and whether a published body is exactly that. The records are split into
// one contiguous part per core, each read in one transaction: per record
// this is a store read, a policy decision, an encoding and a decryption,
// the bulk of a catch-up's work at the origin.
func (f *Federation) walk(ctx context.Context, pol *policy.Policy, refs []store.VersionRef, partner string, keys func(string, uint64) ([]byte, bool)) ([]walked, error) {
	out := make([]walked, len(refs))
	parts := min(runtime.GOMAXPROCS(0), 4, len(refs))
	errs := make([]error, parts)
	inParts(len(refs), parts, func(p, lo, hi int) {
		errs[p] = f.walkPart(ctx, pol, refs[lo:hi], out[lo:hi], partner, keys)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func (f *Federation) walkPart(ctx context.Context, pol *policy.Policy, refs []store.VersionRef, out []walked, partner string, keys func(string, uint64) ([]byte, bool)) error {
	recs, err := f.store.Versions(ctx, refs)
	if err != nil {
		return err
	}
	for i, rec := range recs {
		w := &out[i]
		w.rec = rec
		d := pol.Decide(rec, partner)
		if !d.Share {
			continue
		}
		if w.want, err = d.Plaintext(rec); err != nil {
			return err
		}
		w.share = true
		if w.ref, w.same, err = f.sameBody(rec, w.want, keys); err != nil {
			return err
		}
	}
	return nil
}

// publishQueue publishes a catch-up's publications in order from a
// goroutine of its own, so that the walk reads and seals the next ones while
// earlier ones are being committed, and several are in the log's hands at
// once (raft stores and replicates them together): a commit is a
// replication round trip, an fsync and the leader's apply, and a catch-up
// that waited for each of its publications of 1,024 grants in turn spent
// most of its time waiting.
type publishQueue struct {
	ch     chan queued
	failed chan struct{} // closed at the first publication that failed
	done   chan struct{}
	err    error // set before failed closes
	sent   int   // entries in the publications committed
}

type queued struct {
	pub *peerpb.Publication
	n   int // entries it delivers
	// epoch: it carries the partner's epoch key, which the later ones'
	// key grants need: it is committed before any later one is sent.
	epoch bool
}

// catchUpWindow is how many of a catch-up's publications may be in flight.
const catchUpWindow = 4

func (f *Federation) startPublishing(ctx context.Context) *publishQueue {
	q := &publishQueue{ch: make(chan queued, 2), failed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(q.done)
		var inflight []queuedWait // sent, in order, not yet committed
		target := ""              // where those in flight went
		fail := func(err error) {
			if q.err == nil {
				q.err = err
				close(q.failed)
			}
		}
		// settle waits, oldest first, until at most keep are in flight.
		settle := func(keep int) {
			for len(inflight) > keep {
				w := inflight[0]
				inflight = inflight[1:]
				idx, err := w.wait()
				if err != nil {
					fail(err)
					continue
				}
				f.lastPub = max(f.lastPub, idx)
				q.sent += w.n
			}
		}
		defer settle(0)
		for p := range q.ch {
			if q.err != nil {
				continue // nothing after a failure goes out
			}
			data, err := proto.Marshal(&peerpb.Command{Command: &peerpb.Command_Publication{Publication: p.pub}})
			if err != nil {
				fail(err)
				continue
			}
			// As the publisher does: pipelined to this node's raft when it
			// leads, or on the forward stream to the leader; never past
			// those in flight to another leader.
			leader := f.leaderAddr()
			if len(inflight) > 0 && leader != target {
				settle(0)
			}
			var wait func() (uint64, error)
			if w, err := f.rep.Submit(data, 30*time.Second); err == nil {
				target, wait = f.cfg.Advertise, w
			} else if leader != "" && leader != f.cfg.Advertise {
				if w, err := f.forwardAsync(leader, data); err == nil {
					target = leader
					wait = func() (uint64, error) {
						wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
						defer cancel()
						return w(wctx)
					}
				}
			}
			if wait == nil {
				// No pipelined way (an election under way, a leader of an
				// earlier release): one at a time, after those in flight.
				settle(0)
				if err := f.publish(ctx, p.pub); err != nil {
					fail(err)
					continue
				}
				q.sent += p.n
				continue
			}
			inflight = append(inflight, queuedWait{wait: wait, n: p.n})
			if p.epoch {
				settle(0)
			} else {
				settle(catchUpWindow - 1)
			}
		}
	}()
	return q
}

type queuedWait struct {
	wait func() (uint64, error)
	n    int
}

// put queues a publication; it fails once an earlier one failed.
func (q *publishQueue) put(ctx context.Context, p queued) error {
	select {
	case q.ch <- p:
		return nil
	case <-q.failed:
		return q.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close waits for the queued publications and returns the number of
// entries those committed delivered, and the first failure.
func (q *publishQueue) close() (int, error) {
	close(q.ch)
	<-q.done
	return q.sent, q.err
}

// sameBody finds a body of the version's first publication whose plaintext
// is exactly want (the origin opens its own wrap of every body with its own
// epoch key, keys).
func (f *Federation) sameBody(rec *pb.Record, want []byte, keys func(string, uint64) ([]byte, bool)) (seal.GrantRef, bool, error) {
	env, err := f.rep.Envelope(rec.Id, rec.Version)
	if err != nil {
		return seal.GrantRef{}, false, err
	}
	for i, b := range env.Bodies {
		plain, err := f.opener.OpenBody(env.Header, uint32(i), b, keys)
		if err != nil {
			continue
		}
		if bytes.Equal(plain, want) {
			return seal.GrantRef{Header: env.Header, Index: uint32(i), Body: b}, true, nil
		}
	}
	return seal.GrantRef{}, false, nil
}

func (f *Federation) publish(ctx context.Context, pub *peerpb.Publication) error {
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	idx, err := f.Apply(actx, &peerpb.Command{Command: &peerpb.Command_Publication{Publication: pub}})
	f.lastPub = max(f.lastPub, idx)
	return err
}

// waitApplied waits until this node's FSM applied its last publication.
func (f *Federation) waitApplied(ctx context.Context) error {
	target := f.lastPub
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for f.rep.Applied() < target {
		ch := f.rep.Changed()
		if f.rep.Applied() >= target {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the log to apply: %w", ctx.Err())
		case <-ch:
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// catchUpIfChanged runs a catch-up when the policy in force or the joined
// members changed since the last one that completed.
func (f *Federation) catchUpIfChanged(ctx context.Context) error {
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
func (f *Federation) catchUpPrint(rcpt map[string]seal.Recipient) string {
	var ms []string
	for _, a := range sortedKeys(rcpt) {
		ms = append(ms, fmt.Sprintf("%s@%d", a, rcpt[a].Epoch)) // a member joined again is new
	}
	return fmt.Sprint(f.policy.Generation(), ms)
}

// needsCatchUp reports whether the policy or the members changed since the
// last catch-up that completed.
func (f *Federation) needsCatchUp(rcpt map[string]seal.Recipient) bool {
	return f.catchUpPrint(rcpt) != f.caughtUp
}

// consultationBodies seals a consultation step to exactly its rel_to, past
// the sharing policy: the consultation to the denying agency, an answer to
// the consulting agency, and a decided approval also to the partners that
// hold the denial, without the question (the thread stays between the two).
func consultationBodies(r *pb.Record, members []string) ([]seal.BodyPlain, error) {
	consulted := r.GetConsultation().GetConsultedAgency()
	var to, notified []string
	for _, a := range r.RelTo {
		switch {
		case !slices.Contains(members, a):
		case r.GetConsultation() != nil && a != consulted:
			notified = append(notified, a)
		default:
			to = append(to, a)
		}
	}
	marshal := proto.MarshalOptions{Deterministic: true}.Marshal
	var bodies []seal.BodyPlain
	if len(to) > 0 {
		plain, err := marshal(r)
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, seal.BodyPlain{Recipients: slices.Sorted(slices.Values(to)), Plaintext: plain})
	}
	if len(notified) > 0 {
		notice := proto.Clone(r).(*pb.Record)
		notice.GetConsultation().Question = ""
		plain, err := marshal(notice)
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, seal.BodyPlain{Recipients: slices.Sorted(slices.Values(notified)), Plaintext: plain})
	}
	return bodies, nil
}

// Holders are the agencies that can read a version of a partner's entry,
// as the clear log says: those it was sealed to, and those granted it later
// (a member that joined since, a partner a widened policy entitled).
func (f *Federation) Holders(id string, version uint64) ([]string, error) {
	env, err := f.rep.Envelope(id, version)
	if err != nil {
		return nil, err
	}
	granted, err := f.rep.Grantees(id, version)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(env.GetHeader().GetRecipients())
	for _, g := range granted {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out, nil
}

// Holds is, for one of this agency's entries, the highest version each
// partner can read, as the log says up to now.
func (f *Federation) Holds(id string) (map[string]uint64, error) {
	h, err := f.holdings()
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]uint64, len(h.held[id]))
	for p, v := range h.held[id] {
		out[p] = v
	}
	return out, nil
}

// inParts runs fn on parts contiguous ranges of [0, n) at once, one
// goroutine each, and returns when all are done.
func inParts(n, parts int, fn func(p, lo, hi int)) {
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() { fn(p, p*n/parts, (p+1)*n/parts) })
	}
	wg.Wait()
}
