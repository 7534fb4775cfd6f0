package node

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/policy"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// sharing holds the policy in force. With no policy file configured the
// node shares nothing (the policy's default is deny); a file that fails to
// load is refused whole and the last good policy stays in force.
type sharing struct {
	mu      sync.RWMutex
	cur     *policy.Policy
	lastTry string // the file's bytes and the members at the last attempt
	// lastStat is the file's size and time and the members at the last read,
	// at readAt: the publish loop checks before every publication it seals,
	// and a stat is far cheaper than a read. A full read at least every second catches a
	// rewrite within the file system's timestamp granularity.
	lastStat string
	readAt   time.Time
	lastErr  string
	gen      uint64 // bumped on every change in force
}

// policy returns the policy in force (never nil).
func (n *Node) policy() *policy.Policy {
	n.sharing.mu.RLock()
	defer n.sharing.mu.RUnlock()
	if n.sharing.cur == nil {
		return &policy.Policy{Agency: n.cfg.Agency, Partners: map[string]*policy.Partner{}, Receive: policy.Receive{Trust: true}}
	}
	return n.sharing.cur
}

// policyState is the error of the last refused file and the generation of
// the policy in force.
func (n *Node) policyState() (string, uint64) {
	n.sharing.mu.RLock()
	defer n.sharing.mu.RUnlock()
	return n.sharing.lastErr, n.sharing.gen
}

// policyOptions check partner ids against the registry once the node is in
// a federation. Before that (a node's first start) any well-formed id is
// accepted; the check runs again at the next change of the file.
func (n *Node) policyOptions() policy.Options {
	o := policy.Options{ValidID: record.ValidateAgencyID}
	if n.fed == nil {
		return o
	}
	if ms, err := n.fed.Members(); err == nil && len(ms) > 0 {
		for _, m := range ms {
			o.Members = append(o.Members, m.Agency)
		}
		o.Former = n.fed.FormerMember
	}
	return o
}

// reloadPolicy reads the policy file if it changed since the last attempt.
// A good file replaces the policy in force, audited with a diff; a bad one
// is logged, audited and shown in status, and changes nothing else.
func (n *Node) reloadPolicy(ctx context.Context) {
	path := n.cfg.Policy
	if path == "" {
		return
	}
	opts := n.policyOptions()
	members := strings.Join(opts.Members, ",")
	var stat string
	if fi, err := os.Stat(path); err == nil {
		stat = fmt.Sprintf("%d %d %s", fi.Size(), fi.ModTime().UnixNano(), members)
	}
	n.sharing.mu.RLock()
	unchanged := stat != "" && stat == n.sharing.lastStat && time.Since(n.sharing.readAt) < time.Second
	n.sharing.mu.RUnlock()
	if unchanged {
		return
	}
	data, err := policy.ReadFile(path) // bounded: a larger file is refused by Parse
	n.sharing.mu.Lock()
	n.sharing.lastStat, n.sharing.readAt = stat, time.Now()
	n.sharing.mu.Unlock()
	// A file refused for naming a partner not yet in the registry is tried
	// again when the registry changes, not only when the file does.
	try := string(data) + "\x00" + members
	if err != nil {
		try = "error: " + err.Error()
	}
	n.sharing.mu.RLock()
	same := try == n.sharing.lastTry
	n.sharing.mu.RUnlock()
	if same {
		return
	}
	var pol *policy.Policy
	if err == nil {
		pol, err = policy.Parse(path, data, opts)
	}
	if err == nil && pol.Agency != n.cfg.Agency {
		err = fmt.Errorf("%s: agency %s is not this node's agency %s", path, pol.Agency, n.cfg.Agency)
	}
	n.sharing.mu.Lock()
	old := n.sharing.cur
	n.sharing.lastTry = try
	if err != nil {
		n.sharing.lastErr = err.Error()
		n.sharing.mu.Unlock()
		n.log.Error("policy file refused; the last good policy stays in force", "path", path, "err", err)
		n.auditPolicy(ctx, "invalid", err.Error())
		return
	}
	oldSrc := ""
	if old != nil {
		oldSrc = old.Source
	}
	if oldSrc == pol.Source {
		// Only the registry changed: the same policy stays in force.
		n.sharing.lastErr = ""
		n.sharing.mu.Unlock()
		return
	}
	n.sharing.cur, n.sharing.lastErr = pol, ""
	n.sharing.gen++
	n.sharing.mu.Unlock()
	diff := policy.Diff(oldSrc, pol.Source)
	n.log.Info("policy in force", "path", path, "partners", strings.Join(pol.PartnerIDs(), ","))
	if gone := notMembers(pol.PartnerIDs(), opts.Members); len(gone) > 0 {
		n.log.Warn("the policy names agencies that are no longer members: nothing is shared with them", "agencies", strings.Join(gone, ","))
	}
	n.auditPolicy(ctx, "ok", diff)
	n.fed.WakeUp()
}

// notMembers are the ids not among members (none when members is nil: not
// checked).
func notMembers(ids, members []string) []string {
	var out []string
	for _, id := range ids {
		if members != nil && !slices.Contains(members, id) {
			out = append(out, id)
		}
	}
	return out
}

// policySource is the policy in force as the federation side sees it.
type policySource struct{ n *Node }

func (p policySource) Current() *policy.Policy { return p.n.policy() }

// Reload runs in the publish loop, before it seals a round's first
// publication or runs a catch-up, and on its tick: a record is sealed
// under the policy file as it stands when the record is published, so a
// partner taken out of the file gets nothing published after the edit.
// Writes never wait for it (they only queue to the outbox), and the read
// and parse are bounded (1 MiB, linear).
func (p policySource) Reload(ctx context.Context) { p.n.reloadPolicy(ctx) }
func (p policySource) Generation() uint64 {
	_, gen := p.n.policyState()
	return gen
}
func (p policySource) Error() string {
	msg, _ := p.n.policyState()
	return msg
}

func (n *Node) auditPolicy(ctx context.Context, outcome, detail string) {
	n.audit(ctx, &pb.AuditEvent{Action: "policy.change", Target: n.cfg.Policy, Outcome: outcome, Detail: detail})
}

// auditEvent records something the node did on its own under the policy.
func (n *Node) auditEvent(ctx context.Context, action, target, detail string) {
	n.audit(ctx, &pb.AuditEvent{Action: action, Target: target, Outcome: "ok", Detail: detail})
}

func (n *Node) audit(ctx context.Context, ev *pb.AuditEvent) {
	ev.Time, ev.Agency, ev.Actor = timestamppb.New(n.now()), n.cfg.Agency, "node (sharing policy "+n.cfg.Policy+")"
	if _, err := n.store.AppendAudit(ctx, ev); err != nil {
		n.log.Error("audit", "action", ev.Action, "err", err)
	}
}
