package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// The chain alone cannot show that its last events were removed, or that
// it was edited and re-chained: whoever can write node.db can rewrite the
// count and head beside it too. An anchor is a head of the chain recorded
// out of the writer's reach (in the federation log, where partners hold it,
// or in a file of the node's own); the chain must still reach it, through
// the same hash.

// Anchor is a head of the audit chain recorded outside node.db.
type Anchor struct {
	Seq  uint64
	Hash []byte
	// Where names it in reports, e.g. "federation log entry 212".
	Where string
	// At is when the anchor was signed.
	At time.Time
}

// AuditHead is the sequence number and hash of the chain's last event as
// recorded beside the chain (0 and nil while the chain is empty).
func (s *Store) AuditHead() (seq uint64, hash []byte, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		seq, hash = u64(get(tx, bucketMeta, keyAuditCount)), bytes.Clone(get(tx, bucketMeta, keyAuditHead))
		return nil
	})
	return seq, hash, err
}

// AuditHashAt is the stored hash of event seq (nil if there is none).
func (s *Store) AuditHashAt(ctx context.Context, seq uint64) ([]byte, error) {
	if seq == 0 {
		return nil, nil
	}
	evs, err := s.ListAudit(ctx, seq-1, 1)
	if err != nil || len(evs) == 0 || evs[0].GetSeq() != seq {
		return nil, err
	}
	return evs[0].GetHash(), nil
}

// CheckAnchor checks a verified chain (res, from VerifyAudit) against an
// anchor: the chain must reach the anchored sequence number, and its event
// there must have the anchored hash. A chain already broken keeps its first
// broken link; the result names the last anchored sequence either way.
func (s *Store) CheckAnchor(ctx context.Context, res VerifyResult, a Anchor) (VerifyResult, error) {
	if a.Seq <= res.AnchoredSeq {
		return res, nil // an anchor at least as far along was checked
	}
	res.AnchoredSeq, res.AnchoredAt = a.Seq, a.Where
	if !res.OK {
		res.Reason += fmt.Sprintf(" (the last anchored event is %d, %s)", a.Seq, a.Where)
		return res, nil
	}
	if res.Checked < a.Seq {
		res.OK, res.FirstBrokenSeq = false, res.Checked+1
		res.Reason = fmt.Sprintf("the chain is shorter than anchored: it ends at event %d, but event %d was anchored (%s): events %d to %d were removed",
			res.Checked, a.Seq, a.Where, res.Checked+1, a.Seq)
		return res, nil
	}
	evs, err := s.ListAudit(ctx, a.Seq-1, 1)
	if err != nil {
		return res, err
	}
	if len(evs) != 1 || evs[0].GetSeq() != a.Seq {
		return res, fmt.Errorf("audit event %d: not found although the chain was verified through %d", a.Seq, res.Checked)
	}
	if !bytes.Equal(evs[0].GetHash(), a.Hash) {
		res.OK, res.FirstBrokenSeq = false, a.Seq
		res.Reason = fmt.Sprintf("the chain differs from what was anchored: event %d does not have the anchored hash (%s): events up to %d were edited and the chain recomputed",
			a.Seq, a.Where, a.Seq)
	}
	return res, nil
}

// ChainHash is the hash event e has in the chain after an event of hash
// prev (e.Hash aside). Exported for tools that rebuild a chain, as the
// tests of tampering do: what an insider who knows the format can compute.
func ChainHash(prev []byte, e *pb.AuditEvent) []byte {
	c := proto.Clone(e).(*pb.AuditEvent)
	c.Hash = nil
	return chainHash(prev, c)
}
