package federation

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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

func (f *Federation) receiveAvailable(ctx context.Context) error {
	for {
		from, err := f.store.ReceivedIndex()
		if err != nil {
			return err
		}
		es, err := f.rep.EntriesFor(from, 256, f.cfg.Agency)
		if err != nil || len(es) == 0 {
			return err
		}
		batch := make([]store.Received, 0, len(es))
		// Epoch keys opened in this batch are stored only with it: later
		// entries of the batch (a catch-up after a restart) need them now.
		keys := map[string][]byte{}
		for _, e := range es {
			r := f.open(e, keys)
			f.metrics.Received.Add(float64(len(r.Entries)))
			batch = append(batch, r)
		}
		if err := f.store.TakeIn(ctx, batch, es[len(es)-1].Index); err != nil {
			return err
		}
		for _, r := range batch {
			for _, e := range r.Entries {
				f.onReceived(e.Record)
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
func (f *Federation) open(e replication.Entry, keys map[string][]byte) store.Received {
	r := store.Received{Index: e.Index}
	if e.Governance != nil {
		r.Audit = f.governanceAudit(e.Index, e.Governance)
		return r
	}
	self := f.cfg.Agency
	epochKey := func(origin string, epoch uint64) ([]byte, bool) {
		name := origin + "/" + strconv.FormatUint(epoch, 10)
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
	add := func(h *peerpb.EnvelopeHeader, plain []byte) {
		rec := &pb.Record{}
		if err := proto.Unmarshal(plain, rec); err != nil || rec.Origin != h.Origin || rec.Id != h.EntryId || rec.Version != h.Version {
			f.log.Warn("shared body does not match its header", "entry", h.EntryId, "index", e.Index)
			return
		}
		if err := record.CheckText(rec); err != nil { // a partner's node may send any bytes
			f.log.Warn("shared entry refused: text unsafe to print", "origin", h.Origin, "entry", h.EntryId, "index", e.Index, "err", err)
			r.Audit = append(r.Audit, &pb.AuditEvent{Time: timestamppb.New(f.now()), Agency: h.Origin, Action: "shared.refused", Target: h.EntryId,
				Outcome: "invalid", Detail: fmt.Sprintf("version %d at log index %d: %v", h.Version, e.Index, err)})
			return
		}
		se := &pb.SharedEntry{Origin: h.Origin, Record: rec, LogIndex: e.Index}
		r.Entries = append(r.Entries, se)
		if ev := receivedAudit(se, f.now()); ev != nil {
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
				f.log.Warn("shared body does not open", "entry", env.Header.EntryId, "err", err)
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
			f.log.Warn("key grant for an unknown body", "entry", g.EntryId, "err", err)
			continue
		}
		plain, err := f.opener.OpenGranted(env.Header, env.Bodies[g.BodyIndex], g, epochKey)
		if err != nil {
			f.log.Warn("granted body does not open", "entry", g.EntryId, "err", err)
			continue
		}
		add(env.Header, plain)
	}
	return r
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
