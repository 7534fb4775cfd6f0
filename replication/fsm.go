// Package replication is the hashicorp/raft glue of a node: the replicated
// state machine over bbolt, membership, forwarding and status. It orders and
// stores sealed publications and the member registry; it knows nothing of
// what an entry holds beyond its clear header.
package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/fileversion"
)

// VerifyFunc checks a publication's signature and structure against the
// signing key of its claimed origin. It must be deterministic: every FSM
// runs it on the same bytes and must reach the same verdict.
type VerifyFunc func(pub *peerpb.Publication, signingKey []byte) (*peerpb.PublicationBody, error)

var (
	bucketMeta    = []byte("meta")
	bucketLog     = []byte("log")     // index → Command, for every accepted publication and governance act
	bucketMembers = []byte("members") // agency → Member
	bucketEntries = []byte("entries") // entry id 0x00 version → index of its publication
	bucketGrants  = []byte("grants")  // origin 0x00 recipient 0x00 be64(epoch) → index of the epoch grant
	// entry id 0x00 be64(version) 0x00 recipient → index of the key grant
	// that let recipient read that version after it was published.
	bucketKeyGrants = []byte("key_grants")
	keyApplied      = []byte("applied")
)

// ErrRejected wraps the reason a command was not applied (bad signature,
// unknown origin, ...). Every FSM rejects the same commands.
var ErrRejected = errors.New("rejected")

// FSM is the replicated state: accepted publications in log order and the
// member registry, in its own bbolt file, written without fsync (fsmfile.go
// says why that is safe). Apply is idempotent: a log index at or below the
// last applied one is skipped, so a restart replays nothing twice.
type FSM struct {
	path   string
	log    *slog.Logger // nil: not logged
	verify VerifyFunc
	// supported are the protocol versions this binary applies entries by
	// (protocol.go); halt is set once an entry could not be applied, and
	// onHalt is told.
	supported []uint32
	halt      *Halt
	onHalt    func(*Halt)
	// stall is set while the disk under the file is full (fsmdiskfull.go);
	// onStall is told when it starts (err) and ends (nil).
	stall   *stall
	onStall func(index uint64, err error)
	closing chan struct{} // closed by Close: ends the stall's retries
	// Checkpoints (checkpoint.go): the compares of the transaction being
	// applied, what is known of them, where a diverged state is rebuilt
	// from, and whether it is being rebuilt.
	checks    []checkResult
	ckpt      CheckpointState
	rebuild   *rebuildSource
	repairing bool

	// mu guards db (and applied, changed) across Restore, which closes the
	// file and opens another: every read of db holds it.
	mu      sync.RWMutex
	db      *bolt.DB
	applied uint64
	changed chan struct{} // closed and replaced on every apply: wakes Watch streams
	// noteApplied tells the raft log store what is applied (see logstore).
	noteApplied func(index uint64)
	rebuilt     string
	bodies      bodyCache
	frames      frames // of the transaction being applied (fsmlog.go)
	// registry is Members' result until the next member change: the
	// publisher and the TLS handshakes read it for every publication.
	registry atomic.Pointer[[]*pb.Member]
	// registryGen counts registry changes (and restores), so that the
	// leader reconciles raft's configuration only when the registry moved.
	registryGen atomic.Uint64

	// damagedBy is the damage a read met (fsmsum.go), nil if none: the
	// next apply rebuilds the state first.
	damagedBy atomic.Pointer[error]
	// rebuilding is set while the state is set aside and rebuilt in place
	// (read without the lock, which the rebuild holds).
	rebuilding atomic.Bool
	// activity is the index of the last entry applied that is not a
	// checkpoint, takeAt the preceding index of the last take applied: the
	// leader takes a checkpoint only after activity (checkpointer.go).
	activity, takeAt atomic.Uint64
	// hashCost is how long this FSM's last take hashed its state, in
	// nanoseconds: the leader spaces takes by it (checkpointer.go).
	hashCost atomic.Int64

	snapMu sync.Mutex
	snaps  map[*fsmSnapshot]bool // taken and not yet released
}

// ApplyResult is what Apply returns for each log: the index and, if the
// command was rejected, why.
type ApplyResult struct {
	Index uint64
	Err   error
}

// OpenFSM opens (or creates) the FSM's bbolt file. A file that may have lost
// writes or is damaged (see fsmfile.go) is set aside and the FSM starts
// empty; Rebuilt says why, and the caller replays snapshot and log into it.
// The file, or a raft snapshot beside it, of a format version this binary
// does not read is refused (fsmFormat).
func OpenFSM(path string, verify VerifyFunc) (*FSM, error) {
	return openFSM(path, verify, SupportedProtocols())
}

func openFSM(path string, verify VerifyFunc, supported []uint32) (*FSM, error) {
	f := &FSM{path: path, verify: verify, supported: supported, changed: make(chan struct{}), closing: make(chan struct{})}
	if err := checkSnapshots(filepath.Dir(path)); err != nil {
		return nil, err
	}
	boot := bootID()
	if why := untrusted(path, boot); why != "" {
		if err := setAside(path); err != nil {
			return nil, fmt.Errorf("set aside the untrusted fsm %s: %w", path, err)
		}
		f.rebuilt = why
	}
	if err := markOpen(path, boot); err != nil {
		return nil, fmt.Errorf("open fsm %s: %w", path, err)
	}
	if err := f.open(); err != nil {
		return nil, err
	}
	return f, nil
}

// Rebuilt says why the FSM's file was set aside at open ("" if it was not).
func (f *FSM) Rebuilt() string { return f.rebuilt }

// fsmMmapSize is how much of fsm.db bbolt maps at open.
const fsmMmapSize = 256 << 20

func (f *FSM) open() error {
	_, statErr := os.Stat(f.path)
	fresh := errors.Is(statErr, os.ErrNotExist)
	upgraded, unnest := false, false
	// Mapped large from the start (address space, not memory), as node.db
	// is: the file grows by every publication's bytes (a bulk import's, a
	// MB each), and each time it outgrew the map bbolt remapped it inside
	// the apply, copying what the transaction touched out of the old map
	// (4 % of an import's CPU).
	db, err := bolt.Open(f.path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: true, NoFreelistSync: true, InitialMmapSize: fsmMmapSize})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return fmt.Errorf("open fsm %s: in use by another process", f.path)
		}
		return fmt.Errorf("open fsm %s: %w", f.path, err)
	}
	err = update(db, func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketLog, bucketMembers, bucketEntries, bucketGrants, bucketKeyGrants} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		v, err := fsmFormat.CheckBolt(tx.Bucket(bucketMeta), keyFormat, f.path, fresh)
		if err != nil {
			return err
		}
		if v < formatSums && !fresh {
			if err := upgradeSums(tx); err != nil {
				return err
			}
			upgraded = true
		}
		// The layout follows the applied state, not the binary: a state at
		// ProtocolNestedLog is stamped 3 (stampNested does it when the
		// activation is applied; this catches a file from elsewhere).
		active, _ := protocolOf(tx)
		if v < formatNested && active >= ProtocolNestedLog {
			if err := stampNested(tx); err != nil {
				return err
			}
			upgraded = true
		}
		// A file at 3 before protocol 6 (stamped 3 at open by a binary of
		// before this rule) goes back to 2 below, after this transaction.
		unnest = v >= formatNested && active < ProtocolNestedLog
		f.applied = u64(get(tx, bucketMeta, keyApplied))
		f.checkOpenProtocol(tx)
		return nil
	})
	f.registryChanged()
	if errors.Is(err, fileversion.ErrUnreadable) {
		db.Close()
		return err // names the file already
	}
	if err == nil && unnest {
		err = unnestLog(db, unnestBatchBytes)
		upgraded = true
	}
	if err == nil && upgraded {
		err = db.Sync() // the file is written without fsync; its upgrade is made durable here
	}
	if err != nil {
		db.Close()
		return fmt.Errorf("init fsm %s: %w", f.path, err)
	}
	f.db = db
	return nil
}

// Close syncs and closes the bbolt file, and marks it closed cleanly.
func (f *FSM) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.closing:
	default:
		close(f.closing)
	}
	if err := f.db.Sync(); err != nil {
		f.db.Close()
		return fmt.Errorf("sync fsm %s: %w", f.path, err)
	}
	if err := f.db.Close(); err != nil {
		return err
	}
	return markClosed(f.path)
}

// Apply implements raft.FSM for a single log.
func (f *FSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch implements raft.BatchingFSM: the whole batch in one
// transaction. Once halted (protocol.go), it applies nothing and the applied
// mark stays before the entry it halted at. On a full disk it applies
// nothing either, keeps the entries and retries them (fsmdiskfull.go).
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	wasHalted := f.halt
	batch := logs
	if f.stall != nil {
		batch = slices.Concat(f.stall.pending, logs)
	}
	if d := f.damagedBy.Swap(nil); d != nil && f.halt == nil {
		f.repairDamageLocked(*d)
	}
	out, err := f.applyLocked(batch)
	if isDamage(err) && f.halt == nil {
		f.repairDamageLocked(err)
		out, err = f.applyLocked(batch)
	}
	if err != nil && f.halt == nil && isDamage(err) {
		f.halt = &Halt{Index: f.applied + 1, Reason: fmt.Sprintf("%v, again after a rebuild; restart the node", err)}
	}
	if err != nil && f.halt != nil && wasHalted == nil {
		out, err = f.applyLocked(batch) // refused as halted, changing nothing
	}
	if err != nil {
		f.stallLocked(batch, err)
		return f.stall.refusals(logs)
	}
	f.resumedLocked()
	f.appliedLocked(wasHalted)
	return out[len(out)-len(logs):]
}

// applyLocked applies logs in one transaction. If the transaction fails
// nothing of it stays, in the file or in memory.
func (f *FSM) applyLocked(logs []*raft.Log) ([]any, error) {
	out := make([]any, len(logs))
	appliedBefore, haltBefore := f.applied, f.halt
	f.checks = nil
	f.frames.reset()
	defer f.frames.reset()
	err := update(f.db, func(tx *bolt.Tx) error {
		applied := f.applied
		for i, l := range logs {
			res := ApplyResult{Index: l.Index}
			if l.Index <= applied {
				out[i] = res // replayed after a restart: already in the state
				continue
			}
			if f.halt != nil {
				res.Err = fmt.Errorf("entry %d not applied: %w", l.Index, f.halt)
				out[i] = res
				continue
			}
			if l.Type == raft.LogCommand {
				res.Err = f.applyCommand(tx, l)
				if h := (*Halt)(nil); errors.As(res.Err, &h) {
					f.halt = h
					out[i] = res
					continue
				}
			}
			applied = l.Index
			out[i] = res
		}
		if applied == f.applied {
			return nil
		}
		if err := put(tx.Bucket(bucketMeta), keyApplied, be64(applied)); err != nil {
			return err
		}
		f.applied = applied
		return nil
	})
	if err != nil {
		f.applied, f.halt, f.checks = appliedBefore, haltBefore, nil
		f.registry.Store(nil)
		return nil, err
	}
	f.afterChecksLocked()
	return out, nil
}

// appliedLocked tells the log store, the halt's watcher and Watch streams
// what was applied.
func (f *FSM) appliedLocked(wasHalted *Halt) {
	if f.noteApplied != nil {
		f.noteApplied(f.applied)
	}
	if f.halt != nil && wasHalted == nil && f.onHalt != nil {
		f.onHalt(f.halt)
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *FSM) applyCommand(tx *bolt.Tx, l *raft.Log) error {
	cmd, err := decodeCommand(l.Data)
	if err != nil {
		return fmt.Errorf("%w: undecodable command: %v", ErrRejected, err)
	}
	if cmd.GetCheckpoint() == nil {
		f.activity.Store(l.Index)
	} else if cmd.GetCheckpoint().GetIndex() == 0 {
		f.takeAt.Store(l.Index - 1)
	}
	switch c := cmd.Command.(type) {
	case *peerpb.Command_Publication:
		return f.applyPublication(tx, l.Index, l.Data, c.Publication)
	case *peerpb.Command_MemberChange:
		if c.MemberChange.Change == nil && hasUnknown(c.MemberChange) {
			return f.unknownCommand(l.Index, "member change")
		}
		f.registryChanged()
		return f.memberChange(tx, l.Index, c.MemberChange)
	case *peerpb.Command_Barrier:
		return nil // orders reads; changes nothing
	case *peerpb.Command_ProtocolAnnouncement:
		return f.applyAnnouncement(tx, c.ProtocolAnnouncement)
	case *peerpb.Command_ProtocolActivation:
		return f.applyActivation(tx, l.Index, c.ProtocolActivation)
	case *peerpb.Command_Governance:
		return f.applyGovernance(tx, l.Index, l.Data, l.AppendedAt, c.Governance)
	case *peerpb.Command_Checkpoint:
		return f.applyCheckpoint(tx, l.Index, c.Checkpoint)
	case *peerpb.Command_AuditAnchor:
		return f.applyAnchor(tx, l.Index, c.AuditAnchor)
	}
	if hasUnknown(cmd) {
		return f.unknownCommand(l.Index, "command")
	}
	return fmt.Errorf("%w: empty command", ErrRejected)
}

func (f *FSM) applyPublication(tx *bolt.Tx, index uint64, raw []byte, pub *peerpb.Publication) error {
	m, err := getMember(tx, pub.GetOrigin())
	if err != nil || !m.Joined {
		return fmt.Errorf("%w: origin %q is not a joined member", ErrRejected, pub.GetOrigin())
	}
	body, err := f.verify(pub, m.SigningKey)
	if err != nil {
		return fmt.Errorf("%w: publication of %s: %v", ErrRejected, pub.GetOrigin(), err)
	}
	if v, _ := protocolOf(tx); v >= 2 {
		if err := checkClearParts(pub, body); err != nil {
			return fmt.Errorf("%w: publication of %s (protocol %d): %v", ErrRejected, pub.GetOrigin(), v, err)
		}
	}
	entries, grants := tx.Bucket(bucketEntries), tx.Bucket(bucketGrants)
	fresh := len(body.KeyGrants)
	for _, env := range body.GetEnvelopes() {
		key := entryKey(env.GetHeader().GetEntryId(), env.GetHeader().GetVersion())
		if r := env.GetHeader().GetReseal(); r > 0 {
			// Further bodies of a published version: indexed apart, so
			// Envelope still finds the first and key grants refer to it.
			key = binary.BigEndian.AppendUint32(append(key, 0), r)
		}
		if get(tx, bucketEntries, key) != nil {
			continue // published again after a retry: the first copy stands
		}
		if err := put(entries, key, be64(index)); err != nil {
			return err
		}
		fresh++
	}
	keyGrants := tx.Bucket(bucketKeyGrants)
	for _, g := range body.GetKeyGrants() {
		key := append(entryKey(g.GetEntryId(), g.GetVersion()), 0)
		key = append(key, g.GetKey().GetRecipient()...)
		if get(tx, bucketKeyGrants, key) == nil {
			if err := put(keyGrants, key, be64(index)); err != nil {
				return err
			}
		}
	}
	for _, g := range body.GetEpochGrants() {
		key := grantKey(g.Origin, g.Recipient, g.Epoch)
		if get(tx, bucketGrants, key) != nil {
			continue
		}
		if err := put(grants, key, be64(index)); err != nil {
			return err
		}
		fresh++
	}
	if fresh == 0 {
		return nil // a pure duplicate adds nothing to the log
	}
	if err := f.putLog(tx, index, raw); err != nil {
		return err
	}
	f.bodies.put(index, body, len(raw))
	return nil
}

func applyMemberChange(tx *bolt.Tx, index uint64, mc *peerpb.MemberChange) error {
	members := tx.Bucket(bucketMembers)
	switch c := mc.Change.(type) {
	case *peerpb.MemberChange_Invite:
		m := c.Invite
		if m.GetAgency() == "" || m.GetAddress() == "" || len(m.GetCaCert()) == 0 {
			return fmt.Errorf("%w: invite needs agency, address and ca_cert", ErrRejected)
		}
		if old, err := getMember(tx, m.Agency); err == nil && old.Joined {
			return fmt.Errorf("%w: %s is already a member", ErrRejected, m.Agency)
		}
		m.Joined = false
		return putMember(members, m)
	case *peerpb.MemberChange_Join:
		m := c.Join
		old, err := getMember(tx, m.GetAgency())
		if err != nil {
			return fmt.Errorf("%w: %s was not invited", ErrRejected, m.GetAgency())
		}
		if len(m.GetSigningKey()) == 0 || len(m.GetSealingKey()) == 0 {
			return fmt.Errorf("%w: join of %s lacks keys", ErrRejected, m.GetAgency())
		}
		// The CA and address are the invitation's; the newcomer brings its keys.
		old.SigningKey, old.SealingKey, old.Joined, old.JoinedIndex = m.SigningKey, m.SealingKey, true, index
		if m.GetAddress() != "" {
			old.Address = m.Address
		}
		return putMember(members, old)
	case *peerpb.MemberChange_Remove:
		if get(tx, bucketMembers, []byte(c.Remove)) == nil {
			return fmt.Errorf("%w: %s is not a member", ErrRejected, c.Remove)
		}
		return members.Delete([]byte(c.Remove))
	}
	return fmt.Errorf("%w: empty member change", ErrRejected)
}

func getMember(tx *bolt.Tx, agency string) (*pb.Member, error) {
	v := get(tx, bucketMembers, []byte(agency))
	if v == nil {
		return nil, fmt.Errorf("no member %q", agency)
	}
	m := &pb.Member{}
	return m, proto.Unmarshal(v, m)
}

func putMember(b *bolt.Bucket, m *pb.Member) error {
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return err
	}
	return put(b, []byte(m.Agency), v)
}

// registryChanged drops the cached registry and counts the change.
func (f *FSM) registryChanged() {
	f.registry.Store(nil)
	f.registryGen.Add(1)
}

// RegistryGeneration changes whenever the member registry may have changed.
func (f *FSM) RegistryGeneration() uint64 { return f.registryGen.Load() }

// Members returns the registry, ordered by agency. The members are shared
// with other callers: read them, do not change them.
func (f *FSM) Members() ([]*pb.Member, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if ms := f.registry.Load(); ms != nil {
		return slices.Clone(*ms), nil
	}
	var out []*pb.Member
	err := f.view(func(tx *bolt.Tx) error {
		return forEach(tx, bucketMembers, func(_, v []byte) error {
			m := &pb.Member{}
			if err := proto.Unmarshal(v, m); err != nil {
				return err
			}
			out = append(out, m)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	f.registry.Store(&out)
	return slices.Clone(out), nil
}

// Member returns one member of the registry (shared: read it only).
func (f *FSM) Member(agency string) (*pb.Member, error) {
	ms, err := f.Members()
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.Agency == agency {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no member %q", agency)
}

// Applied is the last applied log index.
func (f *FSM) Applied() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// Changed returns a channel closed at the next apply.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.changed
}

// Entry is an accepted publication at its log index, its body decoded (it
// was verified when applied).
type Entry struct {
	Index uint64
	Body  *peerpb.PublicationBody // empty for a governance act
	// Governance is an accepted governance act (protocol 3), nil for a publication.
	Governance *peerpb.Governance
}

// Entries returns up to limit accepted publications and governance acts
// with index > after, in log order.
func (f *FSM) Entries(after uint64, limit int) ([]Entry, error) {
	return f.entries(after, limit, nil)
}

func entryKey(id string, version uint64) []byte {
	return append(append([]byte(id), 0), be64(version)...)
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
