package replication

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/logstore"
)

// Config sets up a node's raft member.
type Config struct {
	// ID is the agency id: one node per agency, so it names the raft server too.
	ID string
	// Addr is the node's gRPC address, its raft server address.
	Addr string
	// Dir holds wal/ (log and stable store, see logstore), fsm.db and snapshots/.
	Dir string
	// LogDir holds wal/ instead of Dir when set: the raft log on a disk of
	// its own.
	LogDir string
	// LogSegmentBytes sizes the raft log's segment files (0: logstore's default).
	LogSegmentBytes int
	Transport       raft.Transport
	Verify          VerifyFunc
	Logger          *slog.Logger
	// Raft overrides raft's tuning (tests use short timeouts); nil takes Defaults.
	Raft *raft.Config
	// Recover rewrites the raft configuration to this node alone before
	// starting: the way out of a lost quorum (see the README). Partners then
	// join again by invitation.
	Recover bool
	// MaxVoters caps the members that vote (DefaultMaxVoters if 0).
	MaxVoters int
	// PeerApplied asks a member's node, at its address, how far it has
	// applied the log: the leader promotes a non-voter once it caught up.
	// Nil promotes at once.
	PeerApplied func(ctx context.Context, addr string) (uint64, error)
	// BeforeRecover, with Recover, is given the member registry before the
	// configuration is rewritten; an error (a live quorum answers) stops
	// the start with nothing changed.
	BeforeRecover func(members []*pb.Member) error
	// LeaderLast asks the leader's node, at its address, for the last index
	// of its log: a node restored from a backup votes again once it holds
	// and applied that much.
	LeaderLast func(ctx context.Context, addr string) (uint64, error)
	// Checkpoint spacing (checkpointer.go); 0 takes the defaults.
	CheckpointEvery    uint64
	CheckpointInterval time.Duration
}

// DefaultRaftConfig is raft's default revisited for a federation on WAN links
// with bulk publications: bigger batches, larger snapshot spacing.
func DefaultRaftConfig() *raft.Config {
	c := raft.DefaultConfig()
	c.MaxAppendEntries = 512
	c.BatchApplyCh = true
	c.SnapshotThreshold = 16384
	c.TrailingLogs = 10240
	c.NoSnapshotRestoreOnStart = true // the FSM is persistent: replay only what it lacks
	return c
}

// Replicator is a node's member of the federation's raft group. It keeps
// raft and the FSM to itself: callers order commands, change the
// configuration and read the replicated state through its methods.
type Replicator struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	fsm   *FSM
	logs  *logstore.Store
	snaps *raft.FileSnapshotStore
	// stop ends the reconcile loop, which closes reconciled when it returns.
	stop       chan struct{}
	reconciled chan struct{}
}

// Open starts the raft member. It neither bootstraps nor joins: see Bootstrap
// and the membership calls.
func Open(cfg Config) (*Replicator, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	logDir := cmp.Or(cfg.LogDir, cfg.Dir)
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, err
	}
	logs, err := logstore.Open(logDir, logstore.Options{Logger: cfg.Logger, SegmentSize: cfg.LogSegmentBytes})
	if err != nil {
		return nil, err
	}
	// Recent entries from memory: a leader sends what it just stored, a
	// follower applies what it just stored.
	cached, err := raft.NewLogCache(logCache, logs)
	if err != nil {
		logs.Close()
		return nil, err
	}
	fsm, err := OpenFSM(filepath.Join(cfg.Dir, "fsm.db"), cfg.Verify)
	if err != nil {
		logs.Close()
		return nil, err
	}
	fsm.noteApplied = logs.NoteApplied
	fsm.log = cfg.Logger
	fsm.rebuild = &rebuildSource{logs: logs, told: tellCheckpoint(cfg.Logger)}
	watchDiskFull(cfg.Logger, fsm, logs)
	fsm.onHalt = func(h *Halt) {
		if cfg.Logger != nil {
			cfg.Logger.Error("stopped applying the federation log", "index", h.Index, "reason", h.Reason)
		}
	}
	if h := fsm.Protocol().Halted; h != nil {
		fsm.onHalt(h) // the state is already of a protocol this binary lacks
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{cfg.Logger}})
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hl)
	if err != nil {
		fsm.Close()
		logs.Close()
		return nil, err
	}
	fsm.rebuild.snaps = snaps
	damagedSnaps, err := setAsideDamagedSnapshots(cfg.Logger, cfg.Dir, snaps)
	if err != nil {
		fsm.Close()
		logs.Close()
		return nil, err
	}
	if why := fsm.Rebuilt(); why != "" && cfg.Logger != nil {
		cfg.Logger.Warn("rebuilding the replicated state from the raft snapshot and log", "file", filepath.Join(cfg.Dir, "fsm.db"), "why", why)
	}
	if err := replay(fsm, logs, snaps); err != nil {
		fsm.Close()
		logs.Close()
		return nil, fmt.Errorf("replay the raft log into the replicated state: %w", err)
	}
	if err := coverDamagedSnapshots(cfg.Logger, damagedSnaps, fsm, logs, snaps, cfg.Transport); err != nil {
		fsm.Close()
		logs.Close()
		return nil, err
	}
	rc := cfg.Raft
	if rc == nil {
		rc = DefaultRaftConfig()
	}
	copied := *rc // raft keeps the pointer; do not share the caller's
	rc = &copied
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hl
	restored, isRestored, err := restoredAt(cfg.Dir)
	if err == nil && cfg.Recover {
		err = recoverAlone(cfg, rc, fsm, cached, logs, snaps)
		isRestored = false
	}
	if err != nil {
		fsm.Close()
		logs.Close()
		return nil, err
	}
	trans := cfg.Transport
	var gate *voteGate
	if isRestored {
		gate = newVoteGate(trans)
		trans = gate
	}
	rfsm, rtrans := deferSnapshotsWhileSending(fsm, trans)
	r, err := raft.NewRaft(rc, rfsm, cached, logs, snaps, rtrans)
	if err != nil {
		if gate != nil {
			close(gate.stop)
		}
		fsm.Close()
		logs.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	rep := &Replicator{cfg: cfg, log: cfg.Logger, raft: r, fsm: fsm, logs: logs, snaps: snaps, stop: make(chan struct{}), reconciled: make(chan struct{})}
	go rep.reconcileLoop()
	if gate != nil {
		go rep.catchUpLoop(gate, restored)
	}
	every, interval := cfg.CheckpointEvery, cfg.CheckpointInterval
	if every == 0 {
		every = DefaultCheckpointEvery
	}
	if interval == 0 {
		interval = DefaultCheckpointInterval
	}
	go rep.checkpointLoop(every, interval)
	return rep, nil
}

// logCache is how many recent entries raft reads from memory: as many as
// one AppendEntries carries (DefaultRaftConfig's MaxAppendEntries).
const logCache = 512

// replay brings the FSM up to what this node knows is committed before raft
// starts: from the latest snapshot if the FSM is behind it (it was rebuilt),
// then the log up to the applied mark. raft would replay the log too, but
// only once a leader tells it the commit index, and hearing from the leader
// takes the member registry (TLS trust) that the FSM holds.
func replay(fsm *FSM, logs *logstore.Store, snaps raft.SnapshotStore) error {
	metas, err := snaps.List()
	if err != nil {
		return err
	}
	if len(metas) > 0 && fsm.Applied() < metas[0].Index {
		_, rc, err := snaps.Open(metas[0].ID)
		if err != nil {
			return fmt.Errorf("open snapshot %s: %w", metas[0].ID, err)
		}
		if err := fsm.Restore(rc); err != nil {
			return fmt.Errorf("snapshot %s: %w", metas[0].ID, err)
		}
	}
	upTo, err := logs.Applied()
	if err != nil {
		return err
	}
	const chunk = 512
	batch := make([]*raft.Log, 0, chunk)
	if fsm.log != nil {
		fsm.log.Info("replaying the raft log into the replicated state", "applied", fsm.Applied(), "up_to", upTo)
	}
	for idx := fsm.Applied() + 1; idx <= upTo; idx++ {
		l := new(raft.Log)
		if err := logs.GetLog(idx, l); errors.Is(err, raft.ErrLogNotFound) {
			break // raft brings the rest
		} else if err != nil {
			return fmt.Errorf("log %d: %w", idx, err)
		}
		if batch = append(batch, l); len(batch) == chunk {
			fsm.ApplyBatch(batch)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		fsm.ApplyBatch(batch)
	}
	return nil
}

// slogWriter sends raft's hclog lines to the node's slog logger.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	if w.l != nil {
		w.l.Warn(string(trimNL(p)), "component", "raft")
	}
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

// Bootstrapped reports whether this member has raft state (it was bootstrapped or joined).
func (r *Replicator) Bootstrapped() (bool, error) {
	return raft.HasExistingState(r.logs, r.logs, r.snaps)
}

// Bootstrap makes this node the first member of a new federation and
// registers it (with its CA and keys) as the first entry of the registry.
// joinSignature is the agency's signature over JoinMessage(self): the
// leader may activate protocol 3 between the founding invitation and the
// join, and from then on a join without it is refused.
func (r *Replicator) Bootstrap(ctx context.Context, self *pb.Member, joinSignature []byte) error {
	if ok, err := r.Bootstrapped(); err != nil {
		return err
	} else if ok {
		return errors.New("this node already belongs to a federation")
	}
	f := r.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(r.cfg.ID), Address: raft.ServerAddress(r.cfg.Addr), Suffrage: raft.Voter}}})
	if err := f.Error(); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := r.WaitLeader(ctx); err != nil {
		return err
	}
	self = proto.Clone(self).(*pb.Member)
	self.Voter = true
	if _, err := r.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: self}}}}); err != nil {
		return err
	}
	_, err := r.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: self}, JoinSignature: joinSignature}}})
	return err
}

// WaitLeader waits until some member leads (or ctx ends).
func (r *Replicator) WaitLeader(ctx context.Context) error {
	for {
		if addr, _ := r.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ErrNotLeader is returned by leader-only calls on a follower; the node
// forwards the call to Leader().
var ErrNotLeader = errors.New("not the leader")

// Apply commits a command through the log and returns its index once this
// node has applied it. Leader only.
func (r *Replicator) Apply(ctx context.Context, cmd *peerpb.Command) (uint64, error) {
	data, err := proto.Marshal(cmd)
	if err != nil {
		return 0, err
	}
	return r.ApplyRaw(ctx, data)
}

// ApplyRaw is Apply for an already encoded command (forwarded by a follower).
func (r *Replicator) ApplyRaw(ctx context.Context, data []byte) (uint64, error) {
	wait, err := r.Submit(data, timeoutOf(ctx))
	if err != nil {
		return 0, err
	}
	return wait()
}

// Submit hands an encoded command to raft without waiting for it to commit,
// so that the next can be sealed meanwhile and raft stores and replicates
// them together. Commands submitted one after another by one goroutine enter
// the log in that order. wait blocks until the command is applied on this
// node and returns its index. Leader only; timeout bounds the enqueueing.
func (r *Replicator) Submit(data []byte, timeout time.Duration) (wait func() (uint64, error), err error) {
	if r.raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	if d := r.fsm.DiskFull(); d != nil {
		return nil, d.Err // refused before it enters the log
	}
	f := r.raft.Apply(data, timeout)
	return func() (uint64, error) {
		if err := f.Error(); err != nil {
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
				return 0, fmt.Errorf("%w: %v", ErrNotLeader, err)
			}
			return 0, fmt.Errorf("apply: %w", err)
		}
		res, _ := f.Response().(ApplyResult)
		if res.Err != nil {
			return f.Index(), res.Err
		}
		return f.Index(), nil
	}, nil
}

// Leader returns the current leader's id and address, empty if none is known.
func (r *Replicator) Leader() (id, addr string) {
	a, i := r.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader reports whether this member leads the federation's raft group.
func (r *Replicator) IsLeader() bool { return r.raft.State() == raft.Leader }

// TransferLeadership hands leadership to the member with id and address, or,
// with id empty, to the most up-to-date voter. Leader only.
func (r *Replicator) TransferLeadership(id, addr string) error {
	if !r.IsLeader() {
		return ErrNotLeader
	}
	var f raft.Future
	if id == "" {
		f = r.raft.LeadershipTransfer()
	} else {
		f = r.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(addr))
	}
	return f.Error()
}

// timeoutOf is what is left of ctx's deadline, 30 s without one: raft's
// calls take a timeout, not a context.
func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return 30 * time.Second
}

// Status is this member's view of raft.
type Status struct {
	ID, Role, Leader                      string
	Term, LastIndex, CommitIndex, Applied uint64
	SnapshotIndex                         uint64
	LastContact                           time.Time
}

// Status reads raft's counters.
func (r *Replicator) Status() Status {
	st := Status{
		ID:          r.cfg.ID,
		Role:        stateName(r.raft.State()),
		Term:        r.raft.CurrentTerm(),
		LastIndex:   r.raft.LastIndex(),
		CommitIndex: r.raft.CommitIndex(),
		Applied:     r.raft.AppliedIndex(),
		LastContact: r.raft.LastContact(),
	}
	st.Leader, _ = r.Leader()
	if h := r.fsm.Protocol().Halted; h != nil {
		st.Applied = h.Index - 1 // raft moved on; the state did not
	}
	if d := r.fsm.DiskFull(); d != nil && d.Index-1 < st.Applied {
		st.Applied = d.Index - 1
	}
	if metas, err := r.snaps.List(); err == nil && len(metas) > 0 {
		st.SnapshotIndex = metas[0].Index
	}
	return st
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	}
	return "shutdown"
}

// Voters returns raft's configuration: each server's id, and whether it
// votes (true) or only receives (false).
func (r *Replicator) Voters() (map[string]bool, error) {
	f := r.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, s := range f.Configuration().Servers {
		out[string(s.ID)] = s.Suffrage == raft.Voter
	}
	return out, nil
}

// Close stops raft and closes the stores.
func (r *Replicator) Close() error {
	r.logs.Stopping() // a stable write waiting for space gives up
	close(r.stop)
	err := r.raft.Shutdown().Error()
	<-r.reconciled
	if cerr := r.fsm.Close(); err == nil {
		err = cerr
	}
	if cerr := r.logs.Close(); err == nil {
		err = cerr
	}
	return err
}
