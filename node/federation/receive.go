package federation

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/node/store"
	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/replication/diskfull"
)

// receiveLoop takes in, in log order, what the log brings this agency:
// epoch keys sealed to it, and the entries it can open.
func (f *Federation) receiveLoop(ctx context.Context) {
	for {
		changed := f.rep.Changed()
		// A full disk is logged once by the store.
		if err := f.receiveAvailable(ctx); err != nil && ctx.Err() == nil && !diskfull.Is(err) {
			f.log.Error("take in shared entries", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

// receiveAvailable takes in every entry applied since the last one taken
// in, in three stages that overlap: parts of about receivePart records are
// opened (decrypted, checked) while the part before is stored and the one
// before that indexed for screening. A catch-up's 100,000 records arrive in
// one read; opened, stored and indexed one after the other they kept one
// core busy at a time. Each stage goes in log order, and a part is indexed
// only once stored: what is screened is readable.
func (f *Federation) receiveAvailable(ctx context.Context) error {
	from, err := f.store.ReceivedIndex()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	toStore, toIndex := make(chan receivedPart, 1), make(chan receivedPart, 1)
	var storeErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(toIndex)
		for p := range toStore {
			if storeErr == nil {
				storeErr = f.store.TakeIn(ctx, p.batch, p.upTo, p.caughtUp)
			}
			if storeErr != nil {
				cancel() // the opening stops; what it sent is passed over
				continue
			}
			toIndex <- p
		}
	})
	wg.Go(func() {
		for p := range toIndex {
			for _, r := range p.batch {
				for _, e := range r.Entries {
					f.onReceived(e.Record)
				}
			}
			f.mu.Lock()
			close(f.received)
			f.received = make(chan struct{})
			f.mu.Unlock()
		}
	})
	openErr := f.openAvailable(ctx, from, toStore)
	wg.Wait()
	if storeErr != nil {
		return storeErr
	}
	return openErr
}

// receivePart is about how many records a part of receiveAvailable holds.
const receivePart = 2048

// receivedPart is what entries up to upTo hold for this agency.
type receivedPart struct {
	batch []store.Received
	upTo  uint64
	// caughtUp: nothing more was applied when the part was read.
	caughtUp bool
}

// openAvailable reads the entries after from and opens them, sending them
// to out in parts (closed at the end). An error leaves the entries not sent
// to be read again at the next call.
func (f *Federation) openAvailable(ctx context.Context, from uint64, out chan<- receivedPart) error {
	defer close(out)
	// Epoch keys opened here are stored only with their part: later
	// entries (a catch-up after a restart) need them before that.
	keys := map[string][]byte{}
	var part receivedPart
	records := 0
	send := func() error {
		if len(part.batch) == 0 {
			return nil
		}
		select {
		case out <- part:
		case <-ctx.Done():
			return ctx.Err()
		}
		part, records = receivedPart{}, 0
		return nil
	}
	for {
		es, err := f.rep.EntriesFor(from, 256, f.cfg.Agency)
		if err != nil || len(es) == 0 {
			// The last part holds all there was: its take-in may wait for
			// company (the entries to come). Parts sent before it had more
			// behind them and are stored at once.
			part.caughtUp = err == nil
			if serr := send(); err == nil {
				err = serr
			}
			return err
		}
		for _, e := range es {
			r := f.open(e, keys)
			f.metrics.Received.Add(float64(len(r.Entries)))
			part.batch, part.upTo = append(part.batch, r), e.Index
			if records += len(r.Entries); records >= receivePart {
				if err := send(); err != nil {
					return err
				}
			}
		}
		from = es[len(es)-1].Index
	}
}

// open decrypts what one entry holds for this agency; keys holds the epoch
// keys opened earlier in the same batch, and receives this entry's.
func (f *Federation) open(e replication.Entry, keys map[string][]byte) store.Received {
	r := store.Received{Index: e.Index}
	if e.Governance != nil {
		r.Audit = f.governanceAudit(e.Index, e.Governance)
		return r
	}
	self := f.cfg.Agency
	for _, g := range e.Body.EpochGrants {
		if g.Recipient != self {
			continue
		}
		k, err := f.opener.OpenEpochGrant(g)
		if err != nil {
			f.log.Warn("epoch grant does not open", "origin", g.Origin, "index", e.Index, "err", err)
			continue
		}
		keys[g.Origin+"/"+strconv.FormatUint(g.Epoch, 10)] = k
		r.EpochKeys = append(r.EpochKeys, store.EpochKey{Origin: g.Origin, Epoch: g.Epoch, Key: k})
	}
	if e.Body.Origin == self {
		return r // this agency's own entries are its records already
	}
	// What there is to open: a body sealed to this agency is found by
	// trying (the opener says ErrNotRecipient), a key grant by its recipient.
	var items []sealedItem
	for _, env := range e.Body.Envelopes {
		for i, b := range env.Bodies {
			items = append(items, sealedItem{header: env.Header, index: uint32(i), body: b})
		}
	}
	for _, g := range e.Body.KeyGrants {
		if g.GetKey().GetRecipient() == self {
			items = append(items, sealedItem{grant: g})
		}
	}
	var mu sync.Mutex // keys, read and filled from the parts below
	epochKey := func(origin string, epoch uint64) ([]byte, bool) {
		name := origin + "/" + strconv.FormatUint(epoch, 10)
		mu.Lock()
		defer mu.Unlock()
		if k, ok := keys[name]; ok {
			return k, true
		}
		// Kept for the rest of the batch: one read of the store, not one per body.
		k, ok := f.store.EpochKey(origin, epoch)
		if ok {
			keys[name] = k
		}
		return k, ok
	}
	// A large entry (a catch-up's 1,024 key grants) is opened in one
	// contiguous part per core; the parts' results are joined in order, so
	// the entry is taken in as if opened in one pass.
	parts := 1
	if len(items) >= openPartMin {
		parts = min(runtime.GOMAXPROCS(0), 4, len(items)/openPartMin)
	}
	res := make([]store.Received, parts)
	inParts(len(items), parts, func(p, lo, hi int) {
		for _, it := range items[lo:hi] {
			f.openItem(e.Index, it, epochKey, &res[p])
		}
	})
	for _, p := range res {
		r.Entries = append(r.Entries, p.Entries...)
		r.Audit = append(r.Audit, p.Audit...)
	}
	return r
}

// openPartMin is the fewest items worth a part of their own in open.
const openPartMin = 64

// sealedItem is a body sealed to recipients (header, index, body) or a key
// grant to this agency for a published body (grant).
type sealedItem struct {
	header *peerpb.EnvelopeHeader
	index  uint32
	body   *peerpb.Body
	grant  *peerpb.KeyGrant
}

// openItem opens one item of the entry at index and adds what it holds for
// this agency (an entry, audit events) to r.
func (f *Federation) openItem(index uint64, it sealedItem, epochKey seal.EpochKeys, r *store.Received) {
	var (
		h     *peerpb.EnvelopeHeader
		plain []byte
		err   error
	)
	if g := it.grant; g != nil {
		env, err := f.rep.Envelope(g.EntryId, g.Version)
		if err != nil || int(g.BodyIndex) >= len(env.Bodies) {
			f.log.Warn("key grant for an unknown body", "entry", g.EntryId, "err", err)
			return
		}
		h = env.Header
		if plain, err = f.opener.OpenGranted(h, env.Bodies[g.BodyIndex], g, epochKey); err != nil {
			f.log.Warn("granted body does not open", "entry", g.EntryId, "err", err)
			return
		}
	} else {
		h = it.header
		plain, err = f.opener.OpenBody(h, it.index, it.body, epochKey)
		if errors.Is(err, seal.ErrNotRecipient) {
			return
		}
		if err != nil {
			f.log.Warn("shared body does not open", "entry", h.EntryId, "err", err)
			return
		}
	}
	rec := &pb.Record{}
	if err := proto.Unmarshal(plain, rec); err != nil || rec.Origin != h.Origin || rec.Id != h.EntryId || rec.Version != h.Version {
		f.log.Warn("shared body does not match its header", "entry", h.EntryId, "index", index)
		return
	}
	if err := record.CheckText(rec); err != nil { // a partner's node may send any bytes
		f.log.Warn("shared entry refused: text unsafe to print", "origin", h.Origin, "entry", h.EntryId, "index", index, "err", err)
		r.Audit = append(r.Audit, &pb.AuditEvent{Time: timestamppb.New(f.now()), Agency: h.Origin, Action: "shared.refused", Target: h.EntryId,
			Outcome: "invalid", Detail: fmt.Sprintf("version %d at log index %d: %v", h.Version, index, err)})
		return
	}
	se := &pb.SharedEntry{Origin: h.Origin, Record: rec, LogIndex: index}
	r.Entries = append(r.Entries, se)
	if ev := receivedAudit(se, f.now()); ev != nil {
		r.Audit = append(r.Audit, ev)
	}
}

// Received returns a channel closed when new entries were taken in.
func (f *Federation) Received() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.received
}

// receivedAudit records the taking in of a partner's consultation step, so
// that every step is in both agencies' audit logs.
func receivedAudit(e *pb.SharedEntry, now time.Time) *pb.AuditEvent {
	r := e.GetRecord()
	if r.GetKind() != pb.Kind_KIND_CONSULTATION {
		return nil
	}
	return &pb.AuditEvent{
		Time: timestamppb.New(now), Agency: e.Origin, Actor: r.UpdatedBy, Action: "consultation.received",
		Target: r.Id, Outcome: "ok", Detail: fmt.Sprintf("version %d at log index %d: %s", r.Version, e.LogIndex, r.ChangeNote),
	}
}
