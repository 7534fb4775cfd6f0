package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Outbox returns up to limit record versions written but not yet published,
// oldest version of each record first.
func (s *Store) Outbox(ctx context.Context, limit int) ([]*pb.Record, error) {
	return s.OutboxExcept(ctx, limit, nil, nil)
}

// OutboxKey names a version in the outbox, as OutboxExcept's skip set does.
func OutboxKey(id string, version uint64) string { return string(versionKey(id, version)) }

// OutboxPos is where the last read of the outbox ended, so that the next
// starts there (or at the lowest version queued since, if lower) rather than
// at the first version, past every one in flight. It assumes that the
// reader made every version it read part of its skip set: a reader that
// drops some, or puts some back, calls Reset. The zero value reads from the
// first version. One reader: the versions queued since are noted for it.
type OutboxPos struct {
	valid bool
	next  []byte // the first key the next read visits; nil: none left
}

// Reset makes the next read start from the first version.
func (p *OutboxPos) Reset() { *p = OutboxPos{} }

// outboxLow is the lowest outbox key queued since the reader last looked.
type outboxLow struct {
	mu  sync.Mutex
	key []byte // nil: none
}

// noteQueued notes the versions a write queued (or tried to: a commit
// that failed may still be read later), once its commit returned.
func (s *Store) noteQueued(recs []*pb.Record) {
	var low []byte
	for _, r := range recs {
		if k := versionKey(r.GetId(), r.GetVersion()); !r.GetLocal() && (low == nil || bytes.Compare(k, low) < 0) {
			low = k
		}
	}
	if low == nil {
		return
	}
	s.queued.mu.Lock()
	if s.queued.key == nil || bytes.Compare(low, s.queued.key) < 0 {
		s.queued.key = low
	}
	s.queued.mu.Unlock()
}

// takeQueued returns and forgets the lowest key queued since the last call.
func (s *Store) takeQueued() []byte {
	s.queued.mu.Lock()
	defer s.queued.mu.Unlock()
	k := s.queued.key
	s.queued.key = nil
	return k
}

// OutboxExcept is Outbox without the versions in skip (those already being
// published), keyed by OutboxKey. A set rather than a function: the scan
// passes every version in flight, and a lookup by the key's bytes costs no
// allocation.
//
// It reads only commits that returned (their fsyncs done), so that nothing
// is published that a power cut could take from this store after partners
// hold it.
//
// With pos, the read starts where the last one with it ended, or at the
// lowest version queued since if that is lower, and pos is moved to where
// this one ended: a publisher with many versions in flight no longer walks
// past all of them on every turn.
func (s *Store) OutboxExcept(ctx context.Context, limit int, skip map[string]bool, pos *OutboxPos) ([]*pb.Record, error) {
	var start []byte // nil: the first key
	if pos != nil {
		// Taken before the read's transaction begins: a version noted is
		// one whose commit returned, so the read sees it.
		low := s.takeQueued()
		if pos.valid {
			start = pos.next
			if low != nil && (start == nil || bytes.Compare(low, start) < 0) {
				start = low
			}
			if start == nil {
				return nil, nil // read to the end, and nothing queued since
			}
		}
	}
	var out []*pb.Record
	var next []byte
	err := s.viewSettled(ctx, func(tx *bolt.Tx) error {
		out, next = out[:0], nil
		c := tx.Bucket(bucketOutbox).Cursor()
		k, v := c.First()
		if start != nil {
			k, v = c.Seek(start)
		}
		for ; k != nil; k, v = c.Next() {
			if len(out) == limit {
				next = append([]byte(nil), k...)
				break
			}
			if skip[string(k)] {
				continue
			}
			val(tx, bucketOutbox, k, v)
			rec, err := decodeRecord(get(tx, bucketVersions, k))
			if err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	if pos != nil {
		if err != nil {
			pos.Reset() // what was noted since is read again from the first
		} else {
			*pos = OutboxPos{valid: true, next: next}
		}
	}
	return out, err
}

// MarkPublished takes versions off the outbox once their publication
// committed. It rides on the next write's commit (waiting at most
// lazyDelay): losing it in a crash only publishes the versions again, a
// duplicate the log ignores.
func (s *Store) MarkPublished(ctx context.Context, recs []*pb.Record) error {
	return s.batchLazy(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		for _, r := range recs {
			if err := b.Delete(versionKey(r.Id, r.Version)); err != nil {
				return err
			}
		}
		return nil
	}, lazyDelay)
}

// Received is what one log entry brought this agency: epoch keys and the
// records it can read.
type Received struct {
	Index     uint64
	EpochKeys []EpochKey
	Entries   []*pb.SharedEntry
	// Audit events of the taking in (received consultations), appended in
	// the same transaction: recorded exactly once.
	Audit []*pb.AuditEvent
}

// EpochKey is an origin's epoch key received through an epoch grant.
type EpochKey struct {
	Origin string
	Epoch  uint64
	Key    []byte
}

// TakeIn stores what log entries brought, in one transaction, and advances
// the received index past them: replaying an entry after a crash is a no-op.
// The transaction rides on the next write's commit or waits for more
// entries: a partner under a stream of entries commits them in fewer,
// larger transactions, and its fsyncs leave its raft log's alone. A batch
// of fewer than takeInAtOnce records that is all the caller had
// (caughtUp: a partner keeping up with a stream) waits up to takeInDelay;
// any other up to lazyDelay, as the caller has more to store after it.
//
// Entries that brought nothing (this agency's own, or sealed to others)
// advance the index in memory only; it is written with the next entries
// that bring something, or at Close, and a crash before that only reads
// them again.
func (s *Store) TakeIn(ctx context.Context, batch []Received, upTo uint64, caughtUp bool) error {
	empty := true
	records := 0
	for _, r := range batch {
		empty = empty && len(r.EpochKeys) == 0 && len(r.Entries) == 0 && len(r.Audit) == 0
		records += len(r.Entries)
	}
	if empty {
		s.noteReceived(upTo)
		return nil
	}
	delay := lazyDelay
	if caughtUp && records < takeInAtOnce {
		delay = takeInDelay
	}
	return s.batchLazy(func(tx *bolt.Tx) error {
		done := u64(get(tx, bucketMeta, keyReceived))
		for _, r := range batch {
			if r.Index <= done {
				continue
			}
			for _, k := range r.EpochKeys {
				if err := put(tx.Bucket(bucketEpochs), epochKeyKey(k.Origin, k.Epoch), k.Key); err != nil {
					return err
				}
			}
			for n, e := range r.Entries {
				if err := putShared(tx, r.Index, n, e); err != nil {
					return err
				}
			}
			for _, ev := range r.Audit {
				if _, err := appendAudit(tx, ev); err != nil {
					return err
				}
			}
		}
		return writeReceived(tx, max(upTo, s.received.Load()))
	}, delay)
}

// takeInAtOnce is the size of a take-in that does not wait takeInDelay.
const takeInAtOnce = 256

// noteReceived advances the received index in memory.
func (s *Store) noteReceived(upTo uint64) {
	for {
		cur := s.received.Load()
		if upTo <= cur || s.received.CompareAndSwap(cur, upTo) {
			return
		}
	}
}

func writeReceived(tx *bolt.Tx, upTo uint64) error {
	if upTo > u64(get(tx, bucketMeta, keyReceived)) {
		return put(tx.Bucket(bucketMeta), keyReceived, be64(upTo))
	}
	return nil
}

func putShared(tx *bolt.Tx, index uint64, n int, e *pb.SharedEntry) error {
	id, v := e.GetRecord().GetId(), e.GetRecord().GetVersion()
	key := versionKey(id, v)
	if get(tx, bucketShared, key) != nil {
		return nil
	}
	e.LogIndex, e.Position = index, uint32(n)
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
	if err != nil {
		return err
	}
	if err := put(tx.Bucket(bucketShared), key, data); err != nil {
		return err
	}
	at := binary.BigEndian.AppendUint32(be64(index), uint32(n))
	if err := put(tx.Bucket(bucketSharedAt), at, key); err != nil {
		return err
	}
	cur := tx.Bucket(bucketSharedID)
	if u64(get(tx, bucketSharedID, []byte(id))) < v {
		return put(cur, []byte(id), be64(v))
	}
	return nil
}

// ReceivedIndex is the last log index whose entries were taken in.
func (s *Store) ReceivedIndex() (uint64, error) {
	var v uint64
	err := s.view(func(tx *bolt.Tx) error {
		v = u64(get(tx, bucketMeta, keyReceived))
		return nil
	})
	return max(v, s.received.Load()), err
}

// EpochKey returns an epoch key received from origin.
func (s *Store) EpochKey(origin string, epoch uint64) ([]byte, bool) {
	var k []byte
	_ = s.view(func(tx *bolt.Tx) error {
		k = bytes.Clone(get(tx, bucketEpochs, epochKeyKey(origin, epoch)))
		return nil
	})
	return k, k != nil
}

// SharedCurrent returns the latest received version of each shared record.
func (s *Store) SharedCurrent(ctx context.Context, origin string, includeInactive bool) ([]*pb.SharedEntry, error) {
	out, _, err := s.SharedList(ctx, SharedListOptions{Origin: origin, IncludeInactive: includeInactive})
	return out, err
}

// SharedListOptions select and page the shared records.
type SharedListOptions struct {
	Origin          string                     // only this origin agency's, if set
	IncludeInactive bool                       // delisted designations, revoked or annulled denials
	Filter          func(*pb.SharedEntry) bool // only those it keeps, if set
	After           string                     // page token: the last id of the previous page
	Limit           int                        // 0: no limit
}

// SharedList returns the latest version of the selected shared records in
// id order; next is the last id returned when more remain.
func (s *Store) SharedList(ctx context.Context, o SharedListOptions) (out []*pb.SharedEntry, next string, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSharedID).Cursor()
		k, v := c.First()
		if o.After != "" {
			if k, v = c.Seek([]byte(o.After)); k != nil && string(k) == o.After {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			e, err := decodeShared(get(tx, bucketShared, versionKey(string(k), u64(val(tx, bucketSharedID, k, v)))))
			if err != nil {
				return err
			}
			if (o.Origin != "" && e.Origin != o.Origin) || (!o.IncludeInactive && !Active(e.Record)) || (o.Filter != nil && !o.Filter(e)) {
				continue
			}
			if o.Limit > 0 && len(out) == o.Limit {
				next = out[len(out)-1].Record.Id
				return nil
			}
			out = append(out, e)
		}
		return nil
	})
	return out, next, err
}

// Shared returns the latest received version of one shared record.
func (s *Store) Shared(ctx context.Context, id string) (*pb.SharedEntry, error) {
	var out *pb.SharedEntry
	err := s.view(func(tx *bolt.Tx) (err error) {
		v := u64(get(tx, bucketSharedID, []byte(id)))
		if v == 0 {
			return fmt.Errorf("shared %s: %w", id, ErrNotFound)
		}
		out, err = decodeShared(get(tx, bucketShared, versionKey(id, v)))
		return err
	})
	return out, err
}

// SharedFrom returns received entries at or after (index, position), in log
// order, as many as fit in maxBytes encoded: a caller's memory is bounded by
// bytes, since one entry may be 64 bytes or 256 KiB. It returns at least one
// entry when there is one, even one larger than maxBytes.
func (s *Store) SharedFrom(ctx context.Context, index uint64, position uint32, maxBytes int) ([]*pb.SharedEntry, error) {
	var out []*pb.SharedEntry
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSharedAt).Cursor()
		size := 0
		for k, v := c.Seek(binary.BigEndian.AppendUint32(be64(index), position)); k != nil; k, v = c.Next() {
			data := get(tx, bucketShared, val(tx, bucketSharedAt, k, v))
			if size += len(data); size > maxBytes && len(out) > 0 {
				break
			}
			e, err := decodeShared(data)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

func decodeShared(data []byte) (*pb.SharedEntry, error) {
	if data == nil {
		return nil, fmt.Errorf("missing shared entry: %w", ErrNotFound)
	}
	e := &pb.SharedEntry{}
	return e, proto.Unmarshal(data, e)
}

func epochKeyKey(origin string, epoch uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(origin), 0), epoch)
}

// SharedHistory returns every version of a shared record this agency
// received, oldest first (ErrNotFound if none).
func (s *Store) SharedHistory(ctx context.Context, id string) ([]*pb.SharedEntry, error) {
	var out []*pb.SharedEntry
	prefix := append([]byte(id), 0)
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketShared).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			e, err := decodeShared(val(tx, bucketShared, k, v))
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		if len(out) == 0 {
			return fmt.Errorf("shared %s: %w", id, ErrNotFound)
		}
		return nil
	})
	return out, err
}
