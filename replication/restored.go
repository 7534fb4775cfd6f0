package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// A node restored from a backup holds the replicated state (fsm.db) as it
// was when the backup was taken, and no raft log, term or configuration:
// restoredFile marks it. Started as usual it never campaigns (raft knows no
// configuration to campaign in) and waits for the live federation's leader,
// which still counts it a member, to send it what it missed. It must not
// vote before it holds every entry committed before it was lost either: its
// vote (a fresh term, an older log) could elect a member that lacks entries
// this node once helped commit, or be given twice in one term. So until it
// caught up with the leader's log it refuses every vote; the mark then
// goes. Started with Recover instead (the whole federation lost), its state
// becomes a one-member federation's.
const restoredFile = "restored"

// InstallBackup prepares a data directory from a backup of the FSM state
// (fsm.db): it places the file and marks the directory restored (see
// restoredFile). It holds no raft state afterwards.
func InstallBackup(dir string, fsmCopy io.Reader) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range []string{"raft.db", "wal"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("%s already holds raft state; restore into an empty data directory", dir)
		}
	}
	path := filepath.Join(dir, "fsm.db")
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, fsmCopy); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	out.Close()
	fsm, err := OpenFSM(path, nil)
	if err != nil {
		return fmt.Errorf("backup state: %w", err)
	}
	applied := fsm.Applied()
	if err := fsm.Close(); err != nil {
		return err
	}
	return writeSync(filepath.Join(dir, restoredFile), []byte(strconv.FormatUint(applied, 10)+"\n"))
}

// restoredAt reads the mark: the applied index of the backup, ok false if
// the directory was not restored (or caught up since).
func restoredAt(dir string) (uint64, bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, restoredFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	idx, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", filepath.Join(dir, restoredFile), err)
	}
	return idx, true, nil
}

func clearRestored(dir string) error {
	if err := os.Remove(filepath.Join(dir, restoredFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(dir)
}

func writeSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// snapshotForRecover stores the FSM's state as a raft snapshot whose
// configuration is this node alone: RecoverCluster needs raft state, and a
// restored node has none.
func snapshotForRecover(fsm *FSM, snaps raft.SnapshotStore, trans raft.Transport, id, addr string) error {
	applied := fsm.Applied()
	if applied == 0 {
		return errors.New("this node holds no federation state to recover from")
	}
	self := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(id), Address: raft.ServerAddress(addr), Suffrage: raft.Voter}}}
	sink, err := snaps.Create(raft.SnapshotVersionMax, applied, 1, self, applied, trans)
	if err != nil {
		return err
	}
	s, err := fsm.Snapshot()
	if err != nil {
		sink.Cancel()
		return err
	}
	return s.Persist(sink)
}

// errNoVote answers a vote request while the node is restored and behind.
var errNoVote = errors.New("restored from a backup and not yet caught up with the federation: not voting")

// voteGate is the transport raft sees on a restored node: every vote request
// is refused while closed is set (the rest passes as it is).
type voteGate struct {
	raft.Transport
	in     <-chan raft.RPC
	out    chan raft.RPC
	closed atomic.Bool
	stop   chan struct{}
}

func newVoteGate(t raft.Transport) *voteGate {
	g := &voteGate{Transport: t, in: t.Consumer(), out: make(chan raft.RPC), stop: make(chan struct{})}
	g.closed.Store(true)
	go g.run()
	return g
}

func (g *voteGate) run() {
	for {
		select {
		case <-g.stop:
			return
		case rpc := <-g.in:
			if _, ok := rpc.Command.(*raft.RequestVoteRequest); ok && g.closed.Load() {
				rpc.Respond(nil, errNoVote)
				continue
			}
			select {
			case g.out <- rpc:
			case <-g.stop:
				return
			}
		}
	}
}

func (g *voteGate) Consumer() <-chan raft.RPC { return g.out }

// Close stops the gate and closes the transport under it (raft closes a
// transport that can be closed when it shuts down).
func (g *voteGate) Close() error {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	if c, ok := g.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// RequestPreVote passes pre-votes on: they change no term and no vote.
func (g *voteGate) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if p, ok := g.Transport.(raft.WithPreVote); ok {
		return p.RequestPreVote(id, target, args, resp)
	}
	return errors.New("transport without pre-vote")
}

// catchUpLoop opens the gate once this restored node holds, in its raft log
// and its state, every entry the leader's log held when first asked (at
// least the backup's own index): a leader holds every committed entry, so
// that covers every entry committed before the node was lost. Asking once, not every time, lets a node catch up
// under a steady flow of writes. Then the mark goes.
func (r *Replicator) catchUpLoop(g *voteGate, backupIndex uint64) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var target uint64
	// A restored node nobody contacts waits for good: say why, once.
	hint := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
		}
		if target == 0 {
			id, addr := r.Leader()
			if !hint.IsZero() && id == "" && time.Now().After(hint) && r.log != nil {
				r.log.Warn("restored from a backup, and no leader of the federation has contacted this node yet: " +
					"it waits for one (is its address the one the federation has for it?); if the whole federation is lost, start it with --recover")
				hint = time.Time{}
			}
			if id == "" || id == r.cfg.ID || r.cfg.LeaderLast == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			last, err := r.cfg.LeaderLast(ctx, addr)
			cancel()
			if err != nil || last == 0 {
				continue
			}
			target = max(last, backupIndex)
		}
		// raft's own log must reach it too: votes are granted by it.
		if r.raft.LastIndex() < target || r.fsm.Applied() < target {
			continue
		}
		if err := clearRestored(r.cfg.Dir); err != nil {
			if r.log != nil {
				r.log.Error("restored node caught up, but its mark stays", "err", err)
			}
			continue
		}
		g.closed.Store(false)
		if r.log != nil {
			r.log.Info("restored node caught up with the federation: it votes again", "caught_up_to", target, "backup_index", backupIndex)
		}
		return
	}
}

// recoverAlone rewrites raft's configuration to this node alone, once
// BeforeRecover found no live quorum; a restored node's state first becomes
// a raft snapshot, and it is no longer marked restored (it is the federation).
func recoverAlone(cfg Config, rc *raft.Config, fsm *FSM, logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore) error {
	if cfg.BeforeRecover != nil {
		members, err := fsm.Members()
		if err != nil {
			return err
		}
		if err := cfg.BeforeRecover(members); err != nil {
			return err
		}
	}
	has, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return err
	}
	if !has {
		if err := snapshotForRecover(fsm, snaps, cfg.Transport, cfg.ID, cfg.Addr); err != nil {
			return fmt.Errorf("recover: %w", err)
		}
	}
	self := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(cfg.Addr), Suffrage: raft.Voter}}}
	if err := raft.RecoverCluster(rc, fsm, logs, stable, snaps, cfg.Transport, self); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	return clearRestored(cfg.Dir)
}
