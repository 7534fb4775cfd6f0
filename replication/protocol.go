package replication

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
)

// The federation protocol version: how every FSM applies entries. Members
// announce the versions their binary supports (ProtocolAnnouncement, signed
// by the agency); a version becomes the federation's by a ProtocolActivation
// that every FSM accepts only if every joined member announced it, so a
// change of how entries are applied takes effect at one log index on every
// node. A node that meets an entry it cannot apply (an activation of a
// version its binary does not know, or a command kind it does not know)
// stops applying there rather than diverge: it applies nothing more, takes
// no snapshot (raft keeps the entries it has not applied), and applies again
// from that entry once restarted with a binary that knows it.
//
// A command kind added by a later protocol must be refused (rejected, as by
// every FSM) while an earlier protocol is active: then a binary that does
// not know the kind only meets it after an activation it halted at.

// SupportedProtocols are the protocol versions this binary applies entries
// by: 1, 2 (protocol2.go: a publication's clear ids checked), 3
// (governance.go: membership by signed proposals and approvals), 4
// (checkpoint.go: checkpoints of the replicated state's hash) and 5
// (anchor.go: audit anchors) and 6 (fsmlog.go: fsm.db and its snapshots
// may keep a large command nested, format 3).
func SupportedProtocols() []uint32 {
	return []uint32{1, 2, ProtocolGovernance, ProtocolCheckpoints, ProtocolAnchors, ProtocolNestedLog}
}

// ErrHalted is wrapped by the result of every entry a halted FSM did not apply.
var ErrHalted = errors.New("halted")

// Halt is where and why an FSM stopped applying.
type Halt struct {
	Index  uint64 // the first entry not applied
	Reason string
}

func (h *Halt) Error() string { return h.Reason }
func (h *Halt) Unwrap() error { return ErrHalted }

var (
	// agency → its last accepted ProtocolAnnouncement. Created by the first
	// announcement, so that a state without one hashes as before versions.
	bucketProtocols = []byte("protocols")
	keyProtocol     = []byte("protocol")       // the active version; absent: 1
	keyProtocolIdx  = []byte("protocol_since") // index of its activation
)

// maxAnnouncedVersions bounds an announcement (it is kept in the registry).
const maxAnnouncedVersions = 64

// AnnouncementMessage is what an agency signs to announce its versions.
func AnnouncementMessage(a *peerpb.ProtocolAnnouncement) []byte {
	b := []byte("watchfed protocol announcement\x00")
	b = append(append(b, a.GetAgency()...), 0)
	b = binary.BigEndian.AppendUint64(b, a.GetJoinedIndex())
	b = binary.BigEndian.AppendUint64(b, a.GetSequence())
	for _, v := range a.GetVersions() {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

func protocolOf(tx *bolt.Tx) (version uint32, since uint64) {
	if v := u64(get(tx, bucketMeta, keyProtocol)); v > 0 {
		return uint32(v), u64(get(tx, bucketMeta, keyProtocolIdx))
	}
	return 1, 0
}

func announcementOf(tx *bolt.Tx, agency string) *peerpb.ProtocolAnnouncement {
	v := get(tx, bucketProtocols, []byte(agency))
	if v == nil {
		return nil
	}
	a := &peerpb.ProtocolAnnouncement{}
	if proto.Unmarshal(v, a) != nil {
		return nil
	}
	return a
}

func (f *FSM) applyAnnouncement(tx *bolt.Tx, a *peerpb.ProtocolAnnouncement) error {
	m, err := getMember(tx, a.GetAgency())
	if err != nil || !m.Joined {
		return fmt.Errorf("%w: protocol announcement: %q is not a joined member", ErrRejected, a.GetAgency())
	}
	if a.GetJoinedIndex() != m.JoinedIndex {
		return fmt.Errorf("%w: protocol announcement of %s: joined_index %d, the member joined at %d", ErrRejected, a.Agency, a.GetJoinedIndex(), m.JoinedIndex)
	}
	if len(m.SigningKey) != ed25519.PublicKeySize || !ed25519.Verify(m.SigningKey, AnnouncementMessage(a), a.GetSignature()) {
		return fmt.Errorf("%w: protocol announcement of %s: signature does not verify with its signing key", ErrRejected, a.Agency)
	}
	vs := a.GetVersions()
	if len(vs) == 0 || len(vs) > maxAnnouncedVersions {
		return fmt.Errorf("%w: protocol announcement of %s: %d versions (1 to %d)", ErrRejected, a.Agency, len(vs), maxAnnouncedVersions)
	}
	for i, v := range vs {
		if v == 0 || (i > 0 && v <= vs[i-1]) {
			return fmt.Errorf("%w: protocol announcement of %s: versions must be ascending and above 0", ErrRejected, a.Agency)
		}
	}
	if prev := announcementOf(tx, a.Agency); prev != nil && prev.JoinedIndex == a.JoinedIndex && a.GetSequence() <= prev.Sequence {
		return fmt.Errorf("%w: protocol announcement of %s: sequence %d, not above %d", ErrRejected, a.Agency, a.GetSequence(), prev.Sequence)
	}
	b, err := tx.CreateBucketIfNotExists(bucketProtocols)
	if err != nil {
		return err
	}
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(a)
	if err != nil {
		return err
	}
	return put(b, []byte(a.Agency), v)
}

// announcedBy reports whether a joined member's current announcement (made
// since it joined) lists version v.
func announcedBy(tx *bolt.Tx, agency string, joinedIndex uint64, v uint32) bool {
	a := announcementOf(tx, agency)
	return a != nil && a.JoinedIndex == joinedIndex && slices.Contains(a.Versions, v)
}

// notAnnounced lists the joined members that have not announced v.
func notAnnounced(tx *bolt.Tx, v uint32) ([]string, error) {
	var out []string
	err := forEachMember(tx, func(agency string, joined bool, joinedIndex uint64) {
		if joined && !announcedBy(tx, agency, joinedIndex, v) {
			out = append(out, agency)
		}
	})
	return out, err
}

func forEachMember(tx *bolt.Tx, fn func(agency string, joined bool, joinedIndex uint64)) error {
	return tx.Bucket(bucketMembers).ForEach(func(k, _ []byte) error {
		m, err := getMember(tx, string(k))
		if err != nil {
			return err
		}
		fn(m.Agency, m.Joined, m.JoinedIndex)
		return nil
	})
}

func (f *FSM) applyActivation(tx *bolt.Tx, index uint64, a *peerpb.ProtocolActivation) error {
	v := a.GetVersion()
	active, _ := protocolOf(tx)
	if v <= active {
		return fmt.Errorf("%w: activation of protocol %d: protocol %d is active", ErrRejected, v, active)
	}
	missing, err := notAnnounced(tx, v)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: activation of protocol %d: not announced by %s", ErrRejected, v, strings.Join(missing, ", "))
	}
	// Every FSM accepts it: one that cannot apply by v stops here.
	if !slices.Contains(f.supported, v) {
		return &Halt{Index: index, Reason: fmt.Sprintf("entry %d needs protocol %d; this binary supports %s; upgrade the binary", index, v, versionList(f.supported))}
	}
	meta := tx.Bucket(bucketMeta)
	if err := put(meta, keyProtocol, be64(uint64(v))); err != nil {
		return err
	}
	if err := put(meta, keyProtocolIdx, be64(index)); err != nil {
		return err
	}
	// Every joined member announced v, so every member's binary reads
	// format 3: from here this file (and its snapshots) may use it.
	if v >= ProtocolNestedLog && imageFormat(tx) < formatNested {
		return stampNested(tx)
	}
	return nil
}

// unknownCommand is the halt at a command whose kind this binary does not
// know (decoded as an empty oneof beside unknown fields).
func (f *FSM) unknownCommand(index uint64, what string) *Halt {
	return &Halt{Index: index, Reason: fmt.Sprintf("entry %d is a %s this binary does not know (of a newer protocol); this binary supports %s; upgrade the binary", index, what, versionList(f.supported))}
}

// hasUnknown reports whether m was decoded with fields this binary does not know.
func hasUnknown(m proto.Message) bool { return len(m.ProtoReflect().GetUnknown()) > 0 }

func versionList(vs []uint32) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ", ")
}

// checkOpenProtocol halts an FSM whose state is at a protocol this binary
// does not apply entries by (a binary older than the state's).
func (f *FSM) checkOpenProtocol(tx *bolt.Tx) {
	f.halt = nil
	if v, since := protocolOf(tx); !slices.Contains(f.supported, v) {
		f.halt = &Halt{Index: f.applied + 1, Reason: fmt.Sprintf("the replicated state is at protocol %d (since entry %d); this binary supports %s; upgrade the binary", v, since, versionList(f.supported))}
	}
}

// checkImageProtocol refuses a snapshot image of a protocol this binary
// does not apply entries by.
func (f *FSM) checkImageProtocol(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return nil
		}
		raw, err := imageGet(tx, bucketMeta, keyProtocol)
		if err != nil {
			return err
		}
		v := uint32(1)
		if p := u64(raw); p > 0 {
			v = uint32(p)
		}
		if !slices.Contains(f.supported, v) {
			return fmt.Errorf("the snapshot is at protocol %d; this binary supports %s; upgrade the binary", v, versionList(f.supported))
		}
		return nil
	})
}

// ProtocolState is the FSM's protocol: the active version and since when,
// what this binary supports, and where it halted (Halted nil if it did not).
type ProtocolState struct {
	Active    uint32
	Since     uint64
	Supported []uint32
	Halted    *Halt
}

// Protocol reads the FSM's protocol state.
func (f *FSM) Protocol() ProtocolState {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := ProtocolState{Supported: slices.Clone(f.supported), Halted: f.halt}
	_ = f.view(func(tx *bolt.Tx) error {
		st.Active, st.Since = protocolOf(tx)
		return nil
	})
	return st
}

// NextAnnouncement is the announcement agency should make of this binary's
// versions (unsigned), or nil if the registry already records them or the
// agency has not joined.
func (f *FSM) NextAnnouncement(agency string) *peerpb.ProtocolAnnouncement {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out *peerpb.ProtocolAnnouncement
	_ = f.view(func(tx *bolt.Tx) error {
		m, err := getMember(tx, agency)
		if err != nil || !m.Joined {
			return nil
		}
		next := &peerpb.ProtocolAnnouncement{Agency: agency, JoinedIndex: m.JoinedIndex, Sequence: 1, Versions: slices.Clone(f.supported)}
		if prev := announcementOf(tx, agency); prev != nil && prev.JoinedIndex == m.JoinedIndex {
			if slices.Equal(prev.Versions, f.supported) {
				return nil
			}
			next.Sequence = prev.Sequence + 1
		}
		out = next
		return nil
	})
	return out
}

// ProtocolToActivate is the highest version above the active one that this
// binary supports, with every version between, and every joined member
// announced (ok false if none). Each version's rules hold from it on
// (protocol >= v), so a binary that lacks 3 does not activate 4.
func (f *FSM) ProtocolToActivate() (version uint32, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_ = f.view(func(tx *bolt.Tx) error {
		active, _ := protocolOf(tx)
		for _, v := range slices.Backward(f.supported) {
			if v <= active {
				return nil
			}
			if !Contiguous(f.supported, active, v) {
				continue // versions are cumulative: none may be skipped
			}
			if missing, err := notAnnounced(tx, v); err == nil && len(missing) == 0 {
				version, ok = v, true
				return nil
			}
		}
		return nil
	})
	return version, ok
}

// Protocol is the replicated state's protocol, this binary's versions, and
// where this node stopped applying (if it did).
func (r *Replicator) Protocol() ProtocolState { return r.fsm.Protocol() }

// NextAnnouncement is the announcement (unsigned) agency should make of this
// binary's protocol versions, nil if the registry records them already.
func (r *Replicator) NextAnnouncement(agency string) *peerpb.ProtocolAnnouncement {
	return r.fsm.NextAnnouncement(agency)
}

// ProtocolToActivate is the version the leader should activate, if any.
func (r *Replicator) ProtocolToActivate() (uint32, bool) { return r.fsm.ProtocolToActivate() }

// Contiguous reports whether supported holds every version from active+1 to v.
func Contiguous(supported []uint32, active, v uint32) bool {
	for w := active + 1; w <= v; w++ {
		if !slices.Contains(supported, w) {
			return false
		}
	}
	return true
}
