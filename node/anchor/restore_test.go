package anchor

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAcceptRestore: a chain anchored at event 10 in the federation log is
// restored from a backup taken at event 6 and goes on with events of its
// own. Its anchor at 10 is then out of reach: the node anchors nothing
// more. With no restore marked, nothing is accepted; once the restore left
// its mark (the set-aside anchor file), AcceptRestore supersedes the
// anchor at 10, anchoring resumes at the restored chain's head, and the
// same restore is not accepted twice.
func TestAcceptRestore(t *testing.T) {
	ctx := context.Background()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)}
	log := &fedLog{inLog: true, key: pub}
	newA := func(ch *chain) *Anchorer {
		return New(Config{Agency: "DE-BAFA", DataDir: dir, Every: 1, Interval: time.Minute, Chain: ch, Log: log, Key: key, Now: c.now})
	}
	if err := newA(&chain{seq: 10}).Final(ctx); err != nil {
		t.Fatal(err)
	}
	restored := &chain{seq: 8, from: 7} // events 1..6 as before, 7 and 8 new
	a := newA(restored)
	if err := a.Final(ctx); err != nil || len(log.held) != 1 {
		t.Fatalf("anchored over a chain that does not reach its anchor: %v, %d anchors", err, len(log.held))
	}
	if _, err := a.AcceptRestore(ctx); !errors.Is(err, ErrNothingToAccept) {
		t.Fatalf("accepted with no restore marked: %v", err)
	}
	mark := filepath.Join(dir, BeforeRestorePrefix+"20261202T120000Z")
	if err := os.WriteFile(mark, []byte(EmptyFile), 0o600); err != nil {
		t.Fatal(err)
	}
	acc, err := a.AcceptRestore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if acc.HeadSeq != 8 || len(acc.Superseded) != 1 || acc.Superseded[0].Seq != 10 || len(acc.BeforeRestore) != 1 || acc.BeforeRestore[0] != filepath.Base(mark) {
		t.Fatalf("accepted %+v; want head 8, the anchor at 10 superseded, the marked restore", acc)
	}
	if own, err := a.Anchors(); err != nil || len(own) != 0 {
		t.Fatalf("anchors after the acceptance: %v %v; want the superseded one left out", own, err)
	}
	if err := a.Final(ctx); err != nil || len(log.held) != 2 || log.held[1].Sequence != 8 {
		t.Fatalf("anchoring after the acceptance: %v, %+v", err, log.held)
	}
	// A restarted node reads the acceptance too, and the restore is done.
	b := newA(restored)
	if own, err := b.Anchors(); err != nil || len(own) != 1 || own[0].Seq != 8 {
		t.Fatalf("anchors after a restart: %+v %v", own, err)
	}
	if _, err := b.AcceptRestore(ctx); !errors.Is(err, ErrNothingToAccept) {
		t.Fatalf("the same restore accepted twice: %v", err)
	}
}
