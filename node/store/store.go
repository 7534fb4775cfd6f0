// Package store keeps an agency's records and its audit log in one bbolt
// file. Every change is a new version and nothing is erased, so the store
// can answer what a record, or the whole list, was at any past time. Every
// write is fsynced before it is acknowledged.
package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/boltcheck"
	"github.com/watchfed/watchfed/replication/checksum"
	"github.com/watchfed/watchfed/replication/fileversion"
)

var (
	// ErrNotFound: no such record (or version, or none at that time).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the record's current version is not the one the write followed.
	ErrConflict = errors.New("version conflict")
	// ErrLocked: another process has the store open.
	ErrLocked = errors.New("in use by another process (is a node already running on this data directory?)")
)

var (
	bucketMeta     = []byte("meta")
	bucketVersions = []byte("versions")   // id 0x00 be64(version) → Record
	bucketCurrent  = []byte("current")    // id → be64(current version)
	bucketAudit    = []byte("audit")      // be64(seq) → AuditEvent
	bucketOutbox   = []byte("outbox")     // id 0x00 be64(version) of versions not yet published
	bucketShared   = []byte("shared")     // id 0x00 be64(version) → SharedEntry received from a partner
	bucketSharedAt = []byte("shared_at")  // be64(log index) be32(n) → id 0x00 be64(version)
	bucketSharedID = []byte("shared_cur") // id → be64(latest version received)
	bucketEpochs   = []byte("epoch_keys") // origin 0x00 be64(epoch) → epoch key received
	keyFormat      = []byte("format")
	keyAuditHead   = []byte("audit_head")     // hash of the last event
	keyAuditCount  = []byte("audit_count")    // be64(number of events)
	keyReceived    = []byte("received_index") // be64(last log index whose entries were taken in)
)

// format is the layout of node.db (its buckets and their encodings), under
// meta/format. Version 2: every value carries a checksum (sums.go); a
// version 1 file is upgraded at open.
var format = fileversion.Format{Name: "node.db", Current: 2, Reads: []int{1, 2}}

// Options configures a store.
type Options struct {
	Logger *slog.Logger
}

// Store is one agency's record store and audit log.
type Store struct {
	db  *bolt.DB
	log *slog.Logger
	gc  groupCommit
	// received is the received index noted in memory (see TakeIn).
	received atomic.Uint64

	path string
	full atomic.Pointer[error] // the last commit's full-disk error (diskfull.go)
	// damaged is the first damaged value a read met (sums.go), nil if none.
	damaged atomic.Pointer[error]
	// queued is the lowest outbox key written since the publisher's last
	// read (OutboxPos).
	queued outboxLow
}

// Open opens or creates the store file. A second process opening the same
// file gets ErrLocked within a second instead of waiting forever.
func Open(path string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// A file whose pages are damaged is refused before anything is served
	// from it. A damaged value is not: the reads that meet it are refused,
	// naming it, and Damaged says so (the node is not ready).
	var damage error
	if err := boltcheck.VerifyWith(path, verifySums(path, &damage)); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if damage != nil {
		opts.Logger.Error("node.db holds a damaged value: reads of it are refused; restore the file from a backup (watchfed snapshot restore)", "err", damage)
	}
	_, statErr := os.Stat(path)
	fresh := errors.Is(statErr, os.ErrNotExist)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: time.Second,
		// The freelist is rebuilt on open instead of written on every commit.
		NoFreelistSync: true,
		// Mapped large from the start (address space, not memory): bbolt
		// remaps as the file grows, doubling, and each remap copies every
		// key and value the write under way touched out of the map. A
		// newcomer's node.db grows from nothing while it takes in the
		// federation's history in large writes: 0.55 GB of such copies in
		// a 100,000-record catch-up, a sixth of all it allocated.
		InitialMmapSize: initialMmapSize,
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketVersions, bucketCurrent, bucketAudit, bucketOutbox, bucketShared, bucketSharedAt, bucketSharedID, bucketEpochs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		v, err := format.CheckBolt(tx.Bucket(bucketMeta), keyFormat, path, fresh)
		if err != nil || v >= formatSums || fresh {
			return err
		}
		return upgradeSums(tx) // committed with an fsync, as every write here
	})
	if errors.Is(err, fileversion.ErrUnreadable) {
		db.Close()
		return nil, err // names the file already
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db, log: opts.Logger, path: path}
	_ = db.View(func(tx *bolt.Tx) error { s.gc.settled = uint64(tx.ID()); return nil }) // fsynced at open
	if damage != nil {
		s.damaged.Store(&damage)
	}
	return s, nil
}

// Close writes the received index noted in memory and closes the file.
func (s *Store) Close() error {
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		defer checksum.Catch(&err)
		return writeReceived(tx, s.received.Load())
	})
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// Put stores rec as a new version and appends ev to the audit log, in one
// fsynced transaction. rec.Version must be the current version plus one (1
// for a new id) and rec.UpdatedAt must not precede the previous version's.
func (s *Store) Put(ctx context.Context, rec *pb.Record, ev *pb.AuditEvent) (*pb.AuditEvent, error) {
	evs, err := s.PutBatch(ctx, []*pb.Record{rec}, []*pb.AuditEvent{ev})
	if err != nil {
		return nil, err
	}
	return evs[0], nil
}

// update is one write transaction of its own.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	return s.noteCommit(s.updateSettled(func(tx *bolt.Tx) (err error) {
		defer s.catch(&err)
		return fn(tx)
	}))
}

// PutBatch stores records and audit events all or nothing, in one transaction.
func (s *Store) PutBatch(ctx context.Context, recs []*pb.Record, evs []*pb.AuditEvent) ([]*pb.AuditEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var stored []*pb.AuditEvent
	update := s.batch
	if len(recs) > 1 {
		update = s.update // a bulk write is its own batch
	}
	// Noted once the commit returned, failed or not (a failed commit's
	// versions may still be read: the outbox's reader looks from them).
	defer s.noteQueued(recs)
	err := update(func(tx *bolt.Tx) error {
		// Batch may run this function again: build results afresh each time.
		stored = stored[:0]
		for _, rec := range recs {
			if err := putVersion(tx, rec); err != nil {
				return err
			}
		}
		for _, ev := range evs {
			out, err := appendAudit(tx, ev)
			if err != nil {
				return err
			}
			stored = append(stored, out)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return stored, nil
}

func putVersion(tx *bolt.Tx, rec *pb.Record) error {
	if rec.GetId() == "" || rec.GetVersion() == 0 || rec.GetUpdatedAt() == nil {
		return fmt.Errorf("put %q: id, version and updated_at are required", rec.GetId())
	}
	cur := tx.Bucket(bucketCurrent)
	id := []byte(rec.Id)
	have := u64(get(tx, bucketCurrent, id))
	if rec.Version != have+1 {
		return fmt.Errorf("put %s version %d: current version is %d: %w", rec.Id, rec.Version, have, ErrConflict)
	}
	versions := tx.Bucket(bucketVersions)
	if have > 0 {
		prev, err := decodeRecord(get(tx, bucketVersions, versionKey(rec.Id, have)))
		if err != nil {
			return err
		}
		if rec.UpdatedAt.AsTime().Before(prev.UpdatedAt.AsTime()) {
			return fmt.Errorf("put %s version %d: updated_at %s precedes version %d's %s", rec.Id, rec.Version,
				rec.UpdatedAt.AsTime().Format(time.RFC3339Nano), have, prev.UpdatedAt.AsTime().Format(time.RFC3339Nano))
		}
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	if err != nil {
		return err
	}
	if err := put(versions, versionKey(rec.Id, rec.Version), data); err != nil {
		return err
	}
	if !rec.Local {
		// Queued for publication in the same transaction: a crash after the
		// write cannot lose the share.
		if err := put(tx.Bucket(bucketOutbox), versionKey(rec.Id, rec.Version), nil); err != nil {
			return err
		}
	}
	return put(cur, id, be64(rec.Version))
}

// Current returns the latest version of a record.
func (s *Store) Current(ctx context.Context, id string) (*pb.Record, error) {
	var rec *pb.Record
	err := s.view(func(tx *bolt.Tx) (err error) {
		v := u64(get(tx, bucketCurrent, []byte(id)))
		if v == 0 {
			return fmt.Errorf("%s: %w", id, ErrNotFound)
		}
		rec, err = decodeRecord(get(tx, bucketVersions, versionKey(id, v)))
		return err
	})
	return rec, err
}

// Version returns one version of a record.
func (s *Store) Version(ctx context.Context, id string, version uint64) (*pb.Record, error) {
	var rec *pb.Record
	err := s.view(func(tx *bolt.Tx) (err error) {
		data := get(tx, bucketVersions, versionKey(id, version))
		if data == nil {
			return fmt.Errorf("%s version %d: %w", id, version, ErrNotFound)
		}
		rec, err = decodeRecord(data)
		return err
	})
	return rec, err
}

// initialMmapSize is how much of node.db bbolt maps at open.
const initialMmapSize = 256 << 20

// VersionRef names one version of a record.
type VersionRef struct {
	ID      string
	Version uint64
}

// Versions returns the named versions of records, in the order named, read
// in one transaction: a catch-up reads its whole history this way, and a
// transaction per record cost it more than the reads.
func (s *Store) Versions(ctx context.Context, refs []VersionRef) ([]*pb.Record, error) {
	out := make([]*pb.Record, 0, len(refs))
	err := s.view(func(tx *bolt.Tx) error {
		for _, r := range refs {
			data := get(tx, bucketVersions, versionKey(r.ID, r.Version))
			if data == nil {
				return fmt.Errorf("%s version %d: %w", r.ID, r.Version, ErrNotFound)
			}
			rec, err := decodeRecord(data)
			if err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// At returns the version that was current at asOf: the last one written at
// or before it. ErrNotFound if the record did not exist yet.
func (s *Store) At(ctx context.Context, id string, asOf time.Time) (*pb.Record, error) {
	var rec *pb.Record
	err := s.view(func(tx *bolt.Tx) (err error) {
		rec, err = versionAt(tx, id, asOf)
		if err == nil && rec == nil {
			err = fmt.Errorf("%s at %s: %w", id, asOf.UTC().Format(time.RFC3339), ErrNotFound)
		}
		return err
	})
	return rec, err
}

// versionAt walks an id's versions from the newest back; nil if none yet.
func versionAt(tx *bolt.Tx, id string, asOf time.Time) (*pb.Record, error) {
	cur := u64(get(tx, bucketCurrent, []byte(id)))
	if cur == 0 {
		return nil, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	for v := cur; v >= 1; v-- {
		rec, err := decodeRecord(get(tx, bucketVersions, versionKey(id, v)))
		if err != nil {
			return nil, err
		}
		if !rec.UpdatedAt.AsTime().After(asOf) {
			return rec, nil
		}
	}
	return nil, nil
}

// History returns every version of a record, oldest first.
func (s *Store) History(ctx context.Context, id string) ([]*pb.Record, error) {
	var out []*pb.Record
	err := s.view(func(tx *bolt.Tx) error {
		prefix := append([]byte(id), 0)
		c := tx.Bucket(bucketVersions).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			rec, err := decodeRecord(val(tx, bucketVersions, k, v))
			if err != nil {
				return err
			}
			out = append(out, rec)
		}
		if len(out) == 0 {
			return fmt.Errorf("%s: %w", id, ErrNotFound)
		}
		return nil
	})
	return out, err
}

// ListOptions selects records for List.
type ListOptions struct {
	Kind            pb.Kind   // KIND_UNSPECIFIED: both
	AsOf            time.Time // zero: now
	IncludeInactive bool      // delisted designations, revoked or annulled denials
	SourcePrefix    string    // only records whose source_ref starts with this
	After           string    // page token: the last id of the previous page
	Limit           int       // 0: no limit
}

// List returns records ordered by id; next is the last id returned when more remain.
func (s *Store) List(ctx context.Context, o ListOptions) (recs []*pb.Record, next string, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCurrent).Cursor()
		k, v := c.First()
		if o.After != "" {
			k, v = c.Seek([]byte(o.After))
			if k != nil && string(k) == o.After {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var rec *pb.Record
			var err error
			if o.AsOf.IsZero() {
				rec, err = decodeRecord(get(tx, bucketVersions, versionKey(string(k), u64(val(tx, bucketCurrent, k, v)))))
			} else {
				rec, err = versionAt(tx, string(k), o.AsOf)
			}
			if err != nil {
				return err
			}
			if rec == nil || !o.matches(rec) {
				continue
			}
			if o.Limit > 0 && len(recs) == o.Limit {
				next = recs[len(recs)-1].Id
				return nil
			}
			recs = append(recs, rec)
		}
		return nil
	})
	return recs, next, err
}

func (o ListOptions) matches(r *pb.Record) bool {
	if o.Kind != pb.Kind_KIND_UNSPECIFIED && r.Kind != o.Kind {
		return false
	}
	if o.SourcePrefix != "" && !bytes.HasPrefix([]byte(r.SourceRef), []byte(o.SourcePrefix)) {
		return false
	}
	return o.IncludeInactive || Active(r)
}

// Active reports whether a record is in force: not a delisted designation,
// not a revoked or annulled denial.
func Active(r *pb.Record) bool {
	if d := r.GetDesignation(); d != nil {
		return d.Status != pb.DesignationStatus_DESIGNATION_STATUS_DELISTED
	}
	if d := r.GetDenial(); d != nil {
		return d.Status != pb.DenialStatus_DENIAL_STATUS_REVOKED && d.Status != pb.DenialStatus_DENIAL_STATUS_ANNULLED
	}
	return true
}

func decodeRecord(data []byte) (*pb.Record, error) {
	if data == nil {
		return nil, fmt.Errorf("missing version: %w", ErrNotFound)
	}
	rec := &pb.Record{}
	if err := proto.Unmarshal(data, rec); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	return rec, nil
}

func versionKey(id string, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(id), 0), v)
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Backup writes a consistent copy of the whole store file to w, once every
// value in it checked out: a backup never carries damage away.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.view(func(tx *bolt.Tx) (err error) {
		if err := checksum.Verify(tx); err != nil {
			s.noteDamage(err)
			return fmt.Errorf("backup: %w", err)
		}
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
