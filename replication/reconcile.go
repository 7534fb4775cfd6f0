package replication

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// The member registry in the FSM decides who is in the federation; raft's
// configuration follows it. The leader reconciles the configuration to the
// registry whenever the registry changes, when it becomes leader (so after a
// leader change or a restart) and every reconcileEvery, so the two never
// disagree for longer than one reconciliation, and no operator command
// changes raft's configuration itself (a command interrupted between the two
// would leave a change half made, or a voter the registry does not know).
//
// As in Consul's autopilot, a member enters raft as a non-voter and is
// promoted once it has caught up, so a newcomer that is slow or down never
// costs the federation its quorum; at most MaxVoters vote, the earliest
// joined first, the others only receive.

// DefaultMaxVoters is how many members vote at most: enough to survive the
// loss of three, few enough that a commit waits on few links.
const DefaultMaxVoters = 7

// reconcileEvery is how often the leader reconciles without a registry
// change (a caught-up newcomer is promoted, a failed change is retried).
const reconcileEvery = time.Second

// promoteLag is how far behind the leader's commit index a non-voter may be
// when it is promoted.
const promoteLag = 1024

// change is one step of reconciling raft's configuration to the registry.
type change struct {
	op   string // "add" (as a non-voter), "promote", "demote", "remove", "readdress"
	id   string
	addr string
	// voter is the suffrage a readdressed server keeps.
	voter bool
}

// plan lists the changes that bring cfg to what the registry says, removals
// first. Joined members are in raft; the first maxVoters of those invited as
// voters (by join index) vote once healthy says they caught up; a server the
// registry does not hold at all is removed. An invited member that has not
// joined is left as it is (its node is added once it joined). With no joined
// member (a federation being founded) nothing changes, and the leader (self)
// is never demoted: only leaving the registry takes it out.
func plan(members []*pb.Member, cfg raft.Configuration, self string, maxVoters int, healthy func(id string) bool) []change {
	var joined []*pb.Member
	registered := map[string]*pb.Member{}
	for _, m := range members {
		registered[m.Agency] = m
		if m.Joined {
			joined = append(joined, m)
		}
	}
	if len(joined) == 0 {
		return nil
	}
	slices.SortFunc(joined, func(a, b *pb.Member) int {
		return cmp.Or(cmp.Compare(a.JoinedIndex, b.JoinedIndex), cmp.Compare(a.Agency, b.Agency))
	})
	votes := map[string]bool{}
	for _, m := range joined {
		if m.Voter && len(votes) < maxVoters {
			votes[m.Agency] = true
		}
	}
	current := map[string]raft.Server{}
	for _, s := range cfg.Servers {
		current[string(s.ID)] = s
	}
	var out []change
	for _, s := range cfg.Servers {
		if _, ok := registered[string(s.ID)]; !ok {
			out = append(out, change{op: "remove", id: string(s.ID)})
		}
	}
	for _, m := range joined {
		s, in := current[m.Agency]
		switch {
		case !in:
			out = append(out, change{op: "add", id: m.Agency, addr: m.Address})
		case string(s.Address) != m.Address && m.Address != "":
			out = append(out, change{op: "readdress", id: m.Agency, addr: m.Address, voter: s.Suffrage == raft.Voter})
		case s.Suffrage != raft.Voter && votes[m.Agency] && healthy(m.Agency):
			out = append(out, change{op: "promote", id: m.Agency, addr: m.Address})
		case s.Suffrage == raft.Voter && !votes[m.Agency] && m.Agency != self:
			out = append(out, change{op: "demote", id: m.Agency})
		}
	}
	return out
}

// reconcileLoop runs for the replicator's life; only the leader acts.
func (r *Replicator) reconcileLoop() {
	defer close(r.reconciled)
	tick := time.NewTicker(reconcileEvery)
	defer tick.Stop()
	gen := ^uint64(0)
	for {
		changed := r.fsm.Changed()
		select {
		case <-r.stop:
			return
		case <-r.raft.LeaderCh():
			gen = ^uint64(0) // a new leader reconciles at once
		case <-changed:
			if r.fsm.RegistryGeneration() == gen {
				continue // an entry that did not touch the registry
			}
		case <-tick.C:
		}
		if !r.IsLeader() {
			continue
		}
		gen = r.fsm.RegistryGeneration()
		if err := r.reconcile(); err != nil && r.log != nil {
			r.log.Warn("reconcile raft's configuration to the member registry", "err", err)
		}
	}
}

// reconcile makes the changes plan lists, one at a time (raft takes one
// configuration change at a time), and plans again after them (a member
// just added may be promoted at once) until nothing is left to change.
func (r *Replicator) reconcile() error {
	for range 2 * (r.maxVoters() + 2) { // bounded: each round changes something
		members, err := r.fsm.Members()
		if err != nil {
			return err
		}
		f := r.raft.GetConfiguration()
		if err := f.Error(); err != nil {
			return err
		}
		if f.Index() > r.raft.AppliedIndex() {
			// A new leader still applying: the registry may not yet hold
			// members the configuration already does. The tick comes back.
			return nil
		}
		commit := r.raft.CommitIndex()
		changes := plan(members, f.Configuration(), r.cfg.ID, r.maxVoters(), func(id string) bool { return r.caughtUp(id, commit) })
		if len(changes) == 0 {
			return nil
		}
		for _, c := range changes {
			if err := r.change(c); err != nil {
				return fmt.Errorf("%s %s: %w", c.op, c.id, err)
			}
			if r.log != nil {
				r.log.Info("raft configuration reconciled to the member registry", "change", c.op, "agency", c.id)
			}
		}
	}
	return nil
}

// caughtUp reports whether a member's node has applied the log to within
// promoteLag of commit.
func (r *Replicator) caughtUp(id string, commit uint64) bool {
	if r.cfg.PeerApplied == nil {
		return true
	}
	m, err := r.fsm.Member(id)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	applied, err := r.cfg.PeerApplied(ctx, m.Address)
	return err == nil && applied+promoteLag >= commit
}

func (r *Replicator) change(c change) error {
	const timeout = 10 * time.Second
	id, addr := raft.ServerID(c.id), raft.ServerAddress(c.addr)
	var fut raft.IndexFuture
	switch {
	case c.op == "remove":
		fut = r.raft.RemoveServer(id, 0, timeout)
	case c.op == "add", c.op == "readdress" && !c.voter:
		fut = r.raft.AddNonvoter(id, addr, 0, timeout)
	case c.op == "promote", c.op == "readdress":
		fut = r.raft.AddVoter(id, addr, 0, timeout)
	case c.op == "demote":
		fut = r.raft.DemoteVoter(id, 0, timeout)
	default:
		return fmt.Errorf("unknown change %q", c.op)
	}
	return fut.Error()
}

func (r *Replicator) maxVoters() int {
	if r.cfg.MaxVoters > 0 {
		return r.cfg.MaxVoters
	}
	return DefaultMaxVoters
}

// WaitConfiguration waits until raft's configuration, as this member knows
// it (each server's id, and whether it votes), satisfies done, or ctx ends.
func (r *Replicator) WaitConfiguration(ctx context.Context, done func(servers map[string]bool) bool) error {
	for {
		servers, err := r.Voters()
		if err != nil {
			return err
		}
		if done(servers) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.fsm.Changed():
		case <-time.After(50 * time.Millisecond):
		}
	}
}
