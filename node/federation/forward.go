package federation

import (
	"crypto/ed25519"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
)

// What a member's node may put in the log through another member. A node
// speaks only for its own agency: it forwards, and a leader accepts from it,
// only commands that agency signed. A publication carries its origin's
// signature, checked here against the registry before it reaches the log (so
// a forgery is refused and audited where it arrived, not merely rejected by
// every FSM); a barrier changes nothing. A membership change carries no
// agency's signature, so no member's node may forward one: a hostile partner
// could otherwise remove, re-invite or replace any agency through the leader.

// notForwardable says why this node must not forward cmd, its own agency
// being agency; nil if it may.
func notForwardable(cmd *peerpb.Command, agency string) error {
	switch c := cmd.Command.(type) {
	case *peerpb.Command_Publication:
		if o := c.Publication.GetOrigin(); o != agency {
			return fmt.Errorf("a publication of %s is not %s's to forward", o, agency)
		}
		return nil
	case *peerpb.Command_Barrier:
		return nil
	case *peerpb.Command_MemberChange:
		return fmt.Errorf("a membership change (%s) carries no agency's signature, and a node forwards only what its agency signed", describeChange(c.MemberChange))
	case *peerpb.Command_ProtocolAnnouncement:
		// Signed by its agency; every FSM checks the signature.
		if a := c.ProtocolAnnouncement.GetAgency(); a != agency {
			return fmt.Errorf("a protocol announcement of %s is not %s's to forward", a, agency)
		}
		return nil
	case *peerpb.Command_ProtocolActivation:
		return fmt.Errorf("a protocol activation is committed by the leader alone, once every member announced the version")
	case *peerpb.Command_Governance:
		// Signed by its agency; checkForwarded and every FSM check the signature.
		if a := c.Governance.GetAgency(); a != agency {
			return fmt.Errorf("a governance act of %s is not %s's to forward", a, agency)
		}
		return nil
	case *peerpb.Command_AuditAnchor:
		// Signed by its agency; checkForwarded and every FSM check the signature.
		if a := c.AuditAnchor.GetAgency(); a != agency {
			return fmt.Errorf("an audit anchor of %s is not %s's to forward", a, agency)
		}
		return nil
	case *peerpb.Command_Checkpoint:
		// A report is signed by its agency (every FSM checks it); a take is
		// the leader's alone.
		if c.Checkpoint.GetIndex() == 0 {
			return fmt.Errorf("a checkpoint take is committed by the leader alone")
		}
		if a := c.Checkpoint.GetAgency(); a != agency {
			return fmt.Errorf("a checkpoint report of %s is not %s's to forward", a, agency)
		}
		return nil
	}
	return fmt.Errorf("an empty or unknown command")
}

// checkForwarded says why the leader refuses cmd forwarded by caller's node:
// notForwardable for the caller's agency, and for a publication, a signature
// that is not its origin's as registered.
func (f *Federation) checkForwarded(cmd *peerpb.Command, caller string) error {
	if err := notForwardable(cmd, caller); err != nil {
		return err
	}
	if g := cmd.GetGovernance(); g != nil {
		m, err := f.rep.Member(caller)
		if err != nil || !m.Joined || len(m.SigningKey) != ed25519.PublicKeySize ||
			!ed25519.Verify(m.SigningKey, replication.GovernanceMessage(g.Agency, g.Act), g.Signature) {
			return fmt.Errorf("governance act of %s: not signed with its registered signing key", caller)
		}
		return nil
	}
	if a := cmd.GetAuditAnchor(); a != nil {
		m, err := f.rep.Member(caller)
		if err != nil || !m.Joined {
			return fmt.Errorf("%s is not a joined member and cannot anchor", caller)
		}
		if err := replication.CheckAnchor(a, m.SigningKey); err != nil {
			return fmt.Errorf("audit anchor of %s: %v", caller, err)
		}
		return nil
	}
	pub := cmd.GetPublication()
	if pub == nil {
		return nil
	}
	m, err := f.rep.Member(caller)
	if err != nil || !m.Joined {
		return fmt.Errorf("%s is not a joined member and cannot publish", caller)
	}
	body, err := seal.Verify(pub, m.SigningKey)
	if err != nil {
		return fmt.Errorf("publication of %s: %v", caller, err)
	}
	// The FSM here checks the same bytes when it applies them.
	f.verified.remember(pub, m.SigningKey, body)
	return nil
}

// forwardTarget names what a forwarded command would have done, for the
// audit event of its refusal.
func forwardTarget(cmd *peerpb.Command) string {
	switch c := cmd.Command.(type) {
	case *peerpb.Command_Publication:
		return "publication of " + c.Publication.GetOrigin()
	case *peerpb.Command_Governance:
		return "governance act of " + c.Governance.GetAgency()
	case *peerpb.Command_MemberChange:
		return describeChange(c.MemberChange)
	case *peerpb.Command_Barrier:
		return "barrier"
	case *peerpb.Command_ProtocolAnnouncement:
		return "protocol announcement of " + c.ProtocolAnnouncement.GetAgency()
	case *peerpb.Command_ProtocolActivation:
		return fmt.Sprintf("activation of protocol %d", c.ProtocolActivation.GetVersion())
	case *peerpb.Command_Checkpoint:
		if c.Checkpoint.GetIndex() == 0 {
			return "checkpoint take"
		}
		return fmt.Sprintf("checkpoint report of %s at %d", c.Checkpoint.GetAgency(), c.Checkpoint.GetIndex())
	case *peerpb.Command_AuditAnchor:
		return fmt.Sprintf("audit anchor of %s at %d", c.AuditAnchor.GetAgency(), c.AuditAnchor.GetSequence())
	}
	return "empty command"
}

func describeChange(mc *peerpb.MemberChange) string {
	switch c := mc.Change.(type) {
	case *peerpb.MemberChange_Invite:
		return "invite " + c.Invite.GetAgency()
	case *peerpb.MemberChange_Join:
		return "join " + c.Join.GetAgency()
	case *peerpb.MemberChange_Remove:
		return "remove " + c.Remove
	}
	return "empty member change"
}

// refusals logs and audits what partners' nodes asked of this node and were
// refused (a forwarded command, a join), at most refusalBurst events a
// minute in all, so that a hostile member flooding requests floods neither
// the log nor the audit chain; the events held back are counted and
// reported with the next one.
type refusals struct {
	mu         sync.Mutex
	window     time.Time
	n          int
	suppressed int
}

const refusalBurst = 60

// refused logs and audits a refused peer call by id: action is the call
// ("peer.forward", "peer.join"), target what it would have done.
func (f *Federation) refused(id pki.Identity, action, target string, why error) {
	now := f.now()
	r := &f.refusals
	r.mu.Lock()
	if now.Sub(r.window) >= time.Minute {
		r.window, r.n = now, 0
	}
	if r.n >= refusalBurst {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	r.n++
	suppressed := r.suppressed
	r.suppressed = 0
	r.mu.Unlock()
	detail := why.Error()
	if suppressed > 0 {
		detail += fmt.Sprintf(" (and %d more refused since the last event)", suppressed)
	}
	f.log.Warn("partner request refused", "action", action, "agency", id.Agency, "certificate", id.String(), "target", target, "why", detail)
	if f.appendAudit == nil {
		return
	}
	roles := make([]string, len(id.Roles))
	for i, role := range id.Roles {
		roles[i] = string(role)
	}
	f.appendAudit(&pb.AuditEvent{Time: timestamppb.New(now), Agency: id.Agency, Actor: id.Name, Roles: roles,
		Action: action, Target: target, Outcome: "denied", Detail: detail})
}
