package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/checksum"
)

// The audit log is a hash chain: event n stores hash_n =
// SHA-256(hash_{n-1} || canonical(event_n)), with hash_0 empty. The head hash
// and the count are kept beside the chain and updated in the same
// transaction, so an edited, reordered, removed or truncated event breaks
// verification. (Whoever can rewrite the whole file can rewrite the whole
// chain: operators who need more record the head hash that `audit verify`
// prints somewhere else.)
//
// canonical(e) is, in this order: seq as 8 bytes big-endian, time as
// Unix nanoseconds in 8 bytes big-endian, then agency, actor, each role,
// action, target, outcome, detail and prev_hash, each as a 4-byte big-endian
// length followed by the bytes; the roles are preceded by their count (4 bytes).
func canonical(e *pb.AuditEvent) []byte {
	b := binary.BigEndian.AppendUint64(nil, e.GetSeq())
	b = binary.BigEndian.AppendUint64(b, uint64(e.GetTime().AsTime().UnixNano()))
	field := func(s []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	field([]byte(e.GetAgency()))
	field([]byte(e.GetActor()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.GetRoles())))
	for _, r := range e.GetRoles() {
		field([]byte(r))
	}
	field([]byte(e.GetAction()))
	field([]byte(e.GetTarget()))
	field([]byte(e.GetOutcome()))
	field([]byte(e.GetDetail()))
	field(e.GetPrevHash())
	return b
}

func chainHash(prev []byte, e *pb.AuditEvent) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(canonical(e))
	return h.Sum(nil)
}

func appendAudit(tx *bolt.Tx, ev *pb.AuditEvent) (*pb.AuditEvent, error) {
	meta := tx.Bucket(bucketMeta)
	out := proto.Clone(ev).(*pb.AuditEvent)
	out.Seq = u64(get(tx, bucketMeta, keyAuditCount)) + 1
	out.PrevHash = bytes.Clone(get(tx, bucketMeta, keyAuditHead))
	out.Hash = nil
	out.Hash = chainHash(out.PrevHash, out)
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(out)
	if err != nil {
		return nil, err
	}
	if err := put(tx.Bucket(bucketAudit), be64(out.Seq), data); err != nil {
		return nil, err
	}
	if err := put(meta, keyAuditHead, out.Hash); err != nil {
		return nil, err
	}
	return out, put(meta, keyAuditCount, be64(out.Seq))
}

// AppendAudit appends one event (seq, prev_hash and hash are set here).
// Concurrent appends share a transaction and an fsync.
func (s *Store) AppendAudit(ctx context.Context, ev *pb.AuditEvent) (*pb.AuditEvent, error) {
	var out *pb.AuditEvent
	err := s.batch(func(tx *bolt.Tx) (err error) {
		out, err = appendAudit(tx, ev)
		return err
	})
	return out, err
}

// ListAudit returns up to limit events with seq > afterSeq, in order.
func (s *Store) ListAudit(ctx context.Context, afterSeq uint64, limit int) ([]*pb.AuditEvent, error) {
	var out []*pb.AuditEvent
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Seek(be64(afterSeq + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			ev := &pb.AuditEvent{}
			if err := proto.Unmarshal(val(tx, bucketAudit, k, v), ev); err != nil {
				return fmt.Errorf("audit event %d: %w", u64(k), err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// VerifyResult is the outcome of walking the audit chain.
type VerifyResult struct {
	OK             bool
	Checked        uint64
	FirstBrokenSeq uint64
	Reason         string
	HeadHash       []byte
	// Set by CheckAnchor: the last anchored sequence number and where the
	// anchor is kept.
	AnchoredSeq uint64
	AnchoredAt  string
}

// VerifyAudit walks the whole chain and names the first broken link.
func (s *Store) VerifyAudit(ctx context.Context) (VerifyResult, error) {
	var res VerifyResult
	err := s.view(func(tx *bolt.Tx) error {
		var prev []byte
		var seq uint64
		broken := func(at uint64, format string, args ...any) error {
			res.FirstBrokenSeq, res.Reason = at, fmt.Sprintf(format, args...)
			return nil
		}
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			seq++
			if got := u64(k); got != seq {
				return broken(seq, "event %d is missing (next stored event is %d)", seq, got)
			}
			raw, err := checksum.Open(s.path, bucketAudit, k, v)
			if err != nil {
				return broken(seq, "event %d is damaged: %v", seq, err)
			}
			ev := &pb.AuditEvent{}
			if err := proto.Unmarshal(raw, ev); err != nil {
				return broken(seq, "event %d does not decode: %v", seq, err)
			}
			if ev.Seq != seq {
				return broken(seq, "event stored at %d claims seq %d", seq, ev.Seq)
			}
			if !bytes.Equal(ev.PrevHash, prev) {
				return broken(seq, "event %d does not link to event %d (prev_hash differs)", seq, seq-1)
			}
			want := chainHash(prev, ev)
			if !bytes.Equal(ev.Hash, want) {
				return broken(seq, "event %d was altered (hash mismatch)", seq)
			}
			prev = ev.Hash
			res.Checked = seq
		}
		if n := u64(get(tx, bucketMeta, keyAuditCount)); n != seq {
			return broken(seq+1, "the log holds %d events but %d were written: events after %d were removed", seq, n, seq)
		}
		if !bytes.Equal(get(tx, bucketMeta, keyAuditHead), prev) {
			return broken(seq, "head hash differs from the last event's hash")
		}
		res.OK, res.HeadHash = true, prev
		return nil
	})
	return res, err
}
