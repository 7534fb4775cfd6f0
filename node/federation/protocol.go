package federation

import (
	"context"
	"crypto/ed25519"
	"time"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	"github.com/watchfed/watchfed/replication"
)

// protocolLoop keeps the federation protocol moving (replication/protocol.go
// has the rules): this node announces its binary's versions, signed by the
// agency, whenever the registry records others (at start, after joining,
// after an upgrade); the leader activates the highest version every joined
// member announced; a voter reports its state hash at each checkpoint; a
// node that stopped applying gives up leadership, as it can acknowledge
// nothing. It checks on a ticker, so a new leader picks the
// work up.
func (f *Federation) protocolLoop(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	var retryAt, reportRetryAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if f.rep.Protocol().Halted != nil {
			if f.rep.IsLeader() {
				_ = f.rep.TransferLeadership("", "")
			}
			continue
		}
		// Announce from an up-to-date view of the registry: a node catching
		// up would announce again what it already announced.
		st := f.rep.Status()
		if a := f.rep.NextAnnouncement(f.cfg.Agency); a != nil && st.Applied >= st.CommitIndex && time.Now().After(retryAt) {
			if err := f.announce(ctx, a); err != nil {
				f.log.Warn("protocol announcement failed; retrying", "versions", a.Versions, "error", err)
				retryAt = time.Now().Add(10 * time.Second)
			}
		}
		if v, ok := f.rep.ProtocolToActivate(); ok && f.rep.IsLeader() {
			f.activate(ctx, v)
		}
		if c := f.rep.CheckpointReport(f.cfg.Agency); c != nil && time.Now().After(reportRetryAt) {
			if err := f.reportCheckpoint(ctx, c); err != nil {
				f.log.Warn("checkpoint report failed; retrying", "checkpoint_index", c.Index, "error", err)
				reportRetryAt = time.Now().Add(2 * time.Second)
			}
		}
	}
}

// reportCheckpoint signs this node's state hash at the current checkpoint
// and commits it through the leader (replication/checkpoint.go: the
// majority's hash is the reference).
func (f *Federation) reportCheckpoint(ctx context.Context, c *peerpb.Checkpoint) error {
	c.Signature = ed25519.Sign(f.keys.Signing, replication.CheckpointMessage(c))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := f.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_Checkpoint{Checkpoint: c}})
	return err
}

func (f *Federation) announce(ctx context.Context, a *peerpb.ProtocolAnnouncement) error {
	a.Signature = ed25519.Sign(f.keys.Signing, replication.AnnouncementMessage(a))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	idx, err := f.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_ProtocolAnnouncement{ProtocolAnnouncement: a}})
	if err == nil {
		f.log.Info("announced the protocol versions of this binary", "versions", a.Versions, "index", idx)
	}
	return err
}

func (f *Federation) activate(ctx context.Context, v uint32) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	idx, err := f.rep.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_ProtocolActivation{ProtocolActivation: &peerpb.ProtocolActivation{Version: v}}})
	if err != nil {
		f.log.Warn("protocol activation failed", "version", v, "error", err)
		return
	}
	f.log.Info("activated a federation protocol version: every joined member announced it", "version", v, "index", idx)
}

// Protocol is the federation protocol in force on this node, its binary's
// versions, and where it stopped applying (if it did).
func (f *Federation) Protocol() replication.ProtocolState { return f.rep.Protocol() }
