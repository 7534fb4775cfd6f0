package replication

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	"github.com/watchfed/watchfed/replication/checksum"
)

// Audit anchors (protocol 5): each node commits the head of its agency's
// audit chain (sequence number and hash, signed by the agency) to the log,
// so that partners hold what the chain was and a chain later shortened or
// rewritten no longer matches. Every FSM checks an anchor against the
// registry: only the agency's own signing key makes one, so no member's
// node and no leader can anchor for another agency. An agency's anchors
// never move backwards: a sequence at or below its last accepted anchor's
// is refused (a replay, or a rewritten chain anchored again). Each FSM keeps
// an agency's last MaxAnchorsKept anchors.

// ProtocolAnchors is the protocol version from which audit anchors apply.
const ProtocolAnchors = 5

// MaxAnchorsKept is how many of an agency's anchors every FSM keeps.
const MaxAnchorsKept = 16

// agency 0x00 be64(sequence) → be64(log index) || AuditAnchor. Created by
// the first anchor, so a state without one hashes as before.
var bucketAnchors = []byte("anchors")

// AnchorMessage is what an agency signs to anchor its audit chain.
func AnchorMessage(a *peerpb.AuditAnchor) []byte {
	b := []byte("watchfed audit anchor v1\x00")
	b = append(append(b, a.GetAgency()...), 0)
	b = binary.BigEndian.AppendUint64(b, a.GetSequence())
	b = append(b, a.GetHeadHash()...)
	var at int64
	if a.GetSignedAt() != nil {
		at = a.GetSignedAt().AsTime().UnixNano()
	}
	return binary.BigEndian.AppendUint64(b, uint64(at))
}

// CheckAnchor checks what an anchor says of itself and its signature by
// signingKey: a sequence above 0, a SHA-256 head hash, a valid signing time.
func CheckAnchor(a *peerpb.AuditAnchor, signingKey []byte) error {
	if a.GetSequence() == 0 {
		return fmt.Errorf("sequence 0 (the first event is 1)")
	}
	if len(a.GetHeadHash()) != sha256.Size {
		return fmt.Errorf("head_hash of %d bytes, want %d", len(a.GetHeadHash()), sha256.Size)
	}
	if err := a.GetSignedAt().CheckValid(); err != nil {
		return fmt.Errorf("signed_at: %v", err)
	}
	if len(signingKey) != ed25519.PublicKeySize || !ed25519.Verify(signingKey, AnchorMessage(a), a.GetSignature()) {
		return fmt.Errorf("signature does not verify with the signing key of %s", a.GetAgency())
	}
	return nil
}

// Anchor is an accepted audit anchor and the log index it was committed at.
type Anchor struct {
	Index    uint64
	Agency   string
	Sequence uint64
	HeadHash []byte
	SignedAt time.Time
}

func (f *FSM) applyAnchor(tx *bolt.Tx, index uint64, a *peerpb.AuditAnchor) error {
	if active, _ := protocolOf(tx); active < ProtocolAnchors {
		return fmt.Errorf("%w: an audit anchor needs protocol %d; protocol %d is active", ErrRejected, ProtocolAnchors, active)
	}
	m, err := getMember(tx, a.GetAgency())
	if err != nil || !m.Joined {
		return fmt.Errorf("%w: audit anchor: %q is not a joined member", ErrRejected, a.GetAgency())
	}
	if err := CheckAnchor(a, m.SigningKey); err != nil {
		return fmt.Errorf("%w: audit anchor of %s: %v", ErrRejected, a.Agency, err)
	}
	if last, ok := lastAnchor(tx, a.Agency); ok && a.Sequence <= last.Sequence {
		how := "moves backwards"
		if a.Sequence == last.Sequence {
			how = "repeats it"
		}
		return fmt.Errorf("%w: audit anchor of %s at sequence %d %s: the last accepted anchor is at sequence %d (entry %d)",
			ErrRejected, a.Agency, a.Sequence, how, last.Sequence, last.Index)
	}
	b, err := tx.CreateBucketIfNotExists(bucketAnchors)
	if err != nil {
		return err
	}
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(a)
	if err != nil {
		return err
	}
	prefix := append([]byte(a.Agency), 0)
	if err := put(b, binary.BigEndian.AppendUint64(bytes.Clone(prefix), a.Sequence), append(be64(index), v...)); err != nil {
		return err
	}
	// Keep the last MaxAnchorsKept: count this agency's, drop the oldest.
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for len(keys) > MaxAnchorsKept {
		if err := b.Delete(keys[0]); err != nil {
			return err
		}
		keys = keys[1:]
	}
	return nil
}

// anchorsOf reads agency's kept anchors, oldest first ("" for every agency,
// by agency then sequence).
func anchorsOf(tx *bolt.Tx, agency string) ([]Anchor, error) {
	b := tx.Bucket(bucketAnchors)
	if b == nil {
		return nil, nil
	}
	var prefix []byte
	if agency != "" {
		prefix = append([]byte(agency), 0)
	}
	var out []Anchor
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		v = val(tx, bucketAnchors, k, v)
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(k) != i+9 || len(v) < 8 {
			return nil, fmt.Errorf("anchors: malformed key %q", k)
		}
		a := &peerpb.AuditAnchor{}
		if err := proto.Unmarshal(v[8:], a); err != nil {
			return nil, fmt.Errorf("anchors: anchor of %s at %d: %w", k[:i], u64(k[i+1:]), err)
		}
		out = append(out, Anchor{Index: u64(v[:8]), Agency: a.Agency, Sequence: a.Sequence, HeadHash: a.HeadHash, SignedAt: a.GetSignedAt().AsTime()})
	}
	return out, nil
}

func lastAnchor(tx *bolt.Tx, agency string) (Anchor, bool) {
	as, err := anchorsOf(tx, agency)
	if err != nil || len(as) == 0 {
		return Anchor{}, false
	}
	return as[len(as)-1], true
}

// Anchors are the audit anchors this FSM keeps for agency ("" for every
// agency), oldest first.
func (f *FSM) Anchors(agency string) ([]Anchor, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []Anchor
	err := f.view(func(tx *bolt.Tx) (err error) {
		out, err = anchorsOf(tx, agency)
		return err
	})
	return out, err
}

// Anchors are the audit anchors the replicated state keeps for agency (""
// for every agency), oldest first.
func (r *Replicator) Anchors(agency string) ([]Anchor, error) { return r.fsm.Anchors(agency) }

// ReadAnchors reads from the FSM file at path, without opening the FSM (its
// node stopped), the anchors of the member registered with signingKey, for
// an offline audit verify: the node knows its key, not the registry's name.
func ReadAnchors(path string, signingKey []byte) ([]Anchor, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	var out []Anchor
	err = db.View(func(tx *bolt.Tx) (err error) {
		defer checksum.Catch(&err)
		members := tx.Bucket(bucketMembers)
		if members == nil {
			return nil
		}
		if imageFormat(tx) < formatSums {
			return fmt.Errorf("%s is of format version 1: start the node once (it upgrades the file), then verify", path)
		}
		return members.ForEach(func(k, _ []byte) error {
			m, err := getMember(tx, string(k))
			if err != nil || !bytes.Equal(m.SigningKey, signingKey) {
				return err
			}
			as, err := anchorsOf(tx, m.Agency)
			out = append(out, as...)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
