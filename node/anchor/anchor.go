package anchor

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/store"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	"github.com/watchfed/watchfed/replication"
)

// Chain is the node's audit chain, as far as anchoring needs it.
type Chain interface {
	// AuditHead is the last event's sequence number and hash (0, nil: none).
	AuditHead() (uint64, []byte, error)
	// AuditHashAt is event seq's hash (nil if there is none).
	AuditHashAt(ctx context.Context, seq uint64) ([]byte, error)
}

// Log is the federation log, as far as anchoring needs it.
type Log interface {
	// AnchorsInLog reports whether anchors go to the log: the agency is a
	// joined member and the federation applies protocol 5.
	AnchorsInLog() bool
	// CommitAnchor commits a signed anchor of this agency and waits until
	// this node applied it (an error with an index: committed, not applied).
	CommitAnchor(ctx context.Context, a *peerpb.AuditAnchor) (uint64, error)
	// OwnAnchors are this agency's anchors in the replicated state, oldest first.
	OwnAnchors() ([]replication.Anchor, error)
}

// Config sets an Anchorer up.
type Config struct {
	Agency string
	// DataDir holds the anchor file (FileName).
	DataDir string
	// Every: anchor once the chain grew by this many events (default 100);
	// Interval: or once it grew at all and this long passed since the last
	// anchor (default 1 minute).
	Every    uint64
	Interval time.Duration
	Chain    Chain
	Log      Log
	// Key signs anchors (the agency's signing key).
	Key    ed25519.PrivateKey
	Logger *slog.Logger
	Now    func() time.Time
}

// Anchorer anchors the node's audit chain.
type Anchorer struct {
	cfg  Config
	file string

	mu       sync.Mutex // one anchor at a time
	lastSeq  uint64     // the last anchor, wherever it is kept
	lastHash []byte
	lastAt   time.Time
	// broken is set once the chain no longer reaches the last anchor: it
	// is not anchored again, so the evidence stays (audit verify reports it).
	broken bool
}

// New makes an Anchorer; it reads where the chain was last anchored.
func New(cfg Config) *Anchorer {
	if cfg.Every == 0 {
		cfg.Every = 100
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Anchorer{cfg: cfg, file: filepath.Join(cfg.DataDir, FileName), lastAt: cfg.Now()}
	if as, err := a.Anchors(); err == nil {
		for _, x := range as {
			if x.Seq > a.lastSeq {
				a.lastSeq, a.lastHash = x.Seq, x.Hash
			}
		}
	}
	return a
}

// Run anchors the head whenever it is due, until ctx ends.
func (a *Anchorer) Run(ctx context.Context) {
	poll := min(a.cfg.Interval, time.Second)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := a.anchor(ctx, false); err != nil {
			a.cfg.Logger.Warn("audit anchor failed; retrying later", "error", err)
		}
	}
}

// Final anchors the head if it moved since the last anchor (at shutdown).
func (a *Anchorer) Final(ctx context.Context) error { return a.anchor(ctx, true) }

// anchor anchors the chain's head if it is due (or, if always, moved).
func (a *Anchorer) anchor(ctx context.Context, always bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.broken {
		return nil
	}
	seq, hash, err := a.cfg.Chain.AuditHead()
	if err != nil || seq <= a.lastSeq {
		return err
	}
	now := a.cfg.Now()
	if !always && seq-a.lastSeq < a.cfg.Every && now.Sub(a.lastAt) < a.cfg.Interval {
		return nil
	}
	// Anchor only a chain that still reaches the last anchor: anchoring a
	// rewritten chain would bury the rewrite under a newer anchor.
	if a.lastSeq > 0 {
		at, err := a.cfg.Chain.AuditHashAt(ctx, a.lastSeq)
		if err != nil {
			return err
		}
		if !bytes.Equal(at, a.lastHash) {
			a.broken = true
			a.cfg.Logger.Error("the audit chain no longer reaches its last anchor: it is not anchored again; run `watchfed audit verify`", "anchored_seq", a.lastSeq)
			return nil
		}
	}
	an := &peerpb.AuditAnchor{Agency: a.cfg.Agency, Sequence: seq, HeadHash: hash, SignedAt: timestamppb.New(now)}
	an.Signature = ed25519.Sign(a.cfg.Key, replication.AnchorMessage(an))
	// Whatever the outcome, wait for the next interval or Every events
	// before trying again: a refused anchor is not retried in a loop.
	a.lastAt = now
	if a.cfg.Log != nil && a.cfg.Log.AnchorsInLog() {
		idx, err := a.cfg.Log.CommitAnchor(ctx, an)
		if err != nil && idx > 0 {
			// Committed, not yet applied here: the log holds it.
			a.lastSeq, a.lastHash = seq, hash
		}
		if err != nil {
			err = fmt.Errorf("anchor the audit chain at %d in the federation log: %w", seq, err)
			if !always {
				return err
			}
			// At shutdown, the file rather than nothing.
			if ferr := appendFile(a.file, a.cfg.Key.Public().(ed25519.PublicKey), an); ferr != nil {
				return errors.Join(err, ferr)
			}
			a.lastSeq, a.lastHash = seq, hash
			return fmt.Errorf("%w; anchored in %s instead", err, a.file)
		}
		a.lastSeq, a.lastHash = seq, hash
		a.cfg.Logger.Debug("audit chain anchored in the federation log", "seq", seq, "index", idx)
		return nil
	}
	if err := appendFile(a.file, a.cfg.Key.Public().(ed25519.PublicKey), an); err != nil {
		return fmt.Errorf("anchor the audit chain at %d in %s: %w", seq, a.file, err)
	}
	a.lastSeq, a.lastHash = seq, hash
	a.cfg.Logger.Debug("audit chain anchored in the node's anchor file", "seq", seq, "file", a.file)
	return nil
}

// Anchors are the anchors to check the chain against: the agency's last
// ones in the federation log and in the anchor file.
func (a *Anchorer) Anchors() ([]store.Anchor, error) { return a.anchorsLocked() }

// anchorsLocked is Anchors; it takes no lock (the name says a.mu may be held).
func (a *Anchorer) anchorsLocked() ([]store.Anchor, error) {
	var logAnchors []replication.Anchor
	if a.cfg.Log != nil {
		var err error
		if logAnchors, err = a.cfg.Log.OwnAnchors(); err != nil {
			return nil, err
		}
	}
	return Kept(logAnchors, a.file, a.cfg.Key.Public().(ed25519.PublicKey))
}

// Kept lists an agency's anchors in the federation log (as given) and
// those in the anchor file at path (checked against key), less those an
// accepted restore superseded (AcceptedFile beside path).
func Kept(logAnchors []replication.Anchor, path string, key ed25519.PublicKey) ([]store.Anchor, error) {
	var out []store.Anchor
	for _, l := range logAnchors {
		out = append(out, store.Anchor{Seq: l.Sequence, Hash: l.HeadHash, Where: fmt.Sprintf("%s %d", logWhere, l.Index), At: l.SignedAt})
	}
	fa, err := ReadFile(path, key)
	if err != nil {
		return nil, err
	}
	for _, a := range fa {
		out = append(out, store.Anchor{Seq: a.Sequence, Hash: a.HeadHash, Where: "anchor file " + path, At: a.SignedAt.AsTime()})
	}
	return dropSuperseded(filepath.Dir(path), out)
}

// Last is the furthest of anchors (the zero Anchor if none): in the
// federation log rather than the file where both hold the same head.
func Last(anchors []store.Anchor) store.Anchor {
	var out store.Anchor
	for _, a := range anchors {
		if a.Seq > out.Seq || (a.Seq == out.Seq && strings.HasPrefix(a.Where, logWhere)) {
			out = a
		}
	}
	return out
}

// logWhere begins the Where of an anchor in the federation log.
const logWhere = "federation log entry"

// Note says how much the anchors checked protect ("" when one of them is
// in the federation log).
func Note(anchors []store.Anchor) string {
	for _, a := range anchors {
		if strings.HasPrefix(a.Where, logWhere) {
			return ""
		}
	}
	if len(anchors) == 0 {
		return "the chain has not been anchored yet: a shortened or re-chained log cannot be detected until it is"
	}
	return "anchored only in this node's own anchor file (not in a federation, or the federation does not apply protocol 5 yet): this protects less, since an insider who can write the data directory can rewrite both the chain and the file; anchors in the federation log are held by partners"
}

// Verifier is the audit chain's verification.
type Verifier interface {
	VerifyAudit(ctx context.Context) (store.VerifyResult, error)
	CheckAnchor(ctx context.Context, res store.VerifyResult, a store.Anchor) (store.VerifyResult, error)
}

// Verify walks the chain and checks it against the furthest anchor, then
// against each earlier one: an insider holding the node and its key could
// rewrite the chain and anchor the rewrite anew, but the earlier anchors
// the partners hold still tell. The result names the furthest anchor.
func Verify(ctx context.Context, v Verifier, anchors []store.Anchor) (store.VerifyResult, error) {
	res, err := v.VerifyAudit(ctx)
	if err != nil || len(anchors) == 0 {
		return res, err
	}
	anchors = slices.Clone(anchors)
	slices.SortStableFunc(anchors, func(a, b store.Anchor) int { return cmp.Compare(b.Seq, a.Seq) })
	if res, err = v.CheckAnchor(ctx, res, anchors[0]); err != nil || !res.OK {
		return res, err
	}
	for _, a := range anchors[1:] {
		r := res
		r.AnchoredSeq = 0
		if r, err = v.CheckAnchor(ctx, r, a); err != nil {
			return res, err
		}
		if !r.OK {
			r.AnchoredSeq, r.AnchoredAt = res.AnchoredSeq, res.AnchoredAt
			return r, nil
		}
	}
	return res, nil
}
