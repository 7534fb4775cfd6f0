package federation

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	"github.com/watchfed/watchfed/replication"
)

// AnchorsInLog reports whether this agency's audit anchors go to the
// federation log: it is a joined member and protocol 5 is in force.
func (f *Federation) AnchorsInLog() bool {
	return f.Joined() && f.rep.Protocol().Active >= replication.ProtocolAnchors
}

// CommitAnchor commits an audit anchor of this agency (signed by it),
// through the leader if this node does not lead, and waits until this
// node applied it too: its own replicated state then holds the anchor that
// `audit verify` checks (even offline, once the node stopped).
func (f *Federation) CommitAnchor(ctx context.Context, a *peerpb.AuditAnchor) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	idx, err := f.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_AuditAnchor{AuditAnchor: a}})
	if err != nil {
		return 0, err
	}
	for {
		changed := f.rep.Changed()
		if f.rep.Applied() >= idx {
			return idx, nil
		}
		select {
		case <-ctx.Done():
			return idx, fmt.Errorf("anchor committed at %d, not yet applied here: %w", idx, ctx.Err())
		case <-changed:
		}
	}
}

// OwnAnchors are this agency's audit anchors in the replicated state.
func (f *Federation) OwnAnchors() ([]replication.Anchor, error) { return f.rep.Anchors(f.cfg.Agency) }

// Anchors are the audit anchors the replicated state holds for agency (""
// for every member), oldest first: what this node holds of its partners'.
func (f *Federation) Anchors(agency string) ([]replication.Anchor, error) {
	return f.rep.Anchors(agency)
}

// SigningKey is the agency's signing key (it signs anchors).
func (f *Federation) SigningKey() ed25519.PrivateKey { return f.keys.Signing }
