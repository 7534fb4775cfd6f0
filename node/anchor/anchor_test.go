package anchor

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/watchfed/watchfed/node/store"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/testnet/tamper"
)

// chain is an audit chain head that tests move; rewritten changes every
// hash from event from on.
type chain struct{ seq, from uint64 }

func (c *chain) hash(seq uint64) []byte {
	if seq == 0 || seq > c.seq {
		return nil
	}
	s := fmt.Sprint("event ", seq)
	if c.from > 0 && seq >= c.from {
		s += " rewritten"
	}
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func (c *chain) AuditHead() (uint64, []byte, error) { return c.seq, c.hash(c.seq), nil }
func (c *chain) AuditHashAt(_ context.Context, seq uint64) ([]byte, error) {
	return c.hash(seq), nil
}

// fedLog is a federation log in which anchors go once inLog is set; it
// keeps what is committed as an FSM would (signature checked).
type fedLog struct {
	inLog bool
	key   ed25519.PublicKey
	held  []replication.Anchor
}

func (l *fedLog) AnchorsInLog() bool { return l.inLog }
func (l *fedLog) CommitAnchor(_ context.Context, a *peerpb.AuditAnchor) (uint64, error) {
	if err := replication.CheckAnchor(a, l.key); err != nil {
		return 0, err
	}
	l.held = append(l.held, replication.Anchor{Index: uint64(100 + len(l.held)), Agency: a.Agency, Sequence: a.Sequence, HeadHash: a.HeadHash})
	return uint64(99 + len(l.held)), nil
}
func (l *fedLog) OwnAnchors() ([]replication.Anchor, error) { return l.held, nil }

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newAnchorer(t *testing.T, ch *chain, log *fedLog, c *clock) (*Anchorer, ed25519.PublicKey) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if log != nil {
		log.key = pub
	}
	cfg := Config{Agency: "DE-BAFA", DataDir: t.TempDir(), Every: 5, Interval: time.Minute, Chain: ch, Key: key, Now: c.now}
	if log != nil {
		cfg.Log = log
	}
	return New(cfg), pub
}

// TestAnchorFile: outside a federation the head goes to the node's anchor
// file once the chain grew by Every events, or grew and Interval passed, and
// at Final; the file's anchors are signed and ordered, and Verify's note
// says that this protects less.
func TestAnchorFile(t *testing.T) {
	ctx := context.Background()
	ch, c := &chain{}, &clock{time.Unix(1_800_000_000, 0)}
	a, pub := newAnchorer(t, ch, nil, c)
	steps := []struct {
		seq     uint64
		advance time.Duration
		final   bool
		want    []uint64 // sequences in the file after
	}{
		{0, 0, false, nil},
		{3, 0, false, nil},                      // too few events, too soon
		{5, 0, false, []uint64{5}},              // Every reached
		{6, 0, false, []uint64{5}},              // one more: not yet
		{6, time.Minute, false, []uint64{5, 6}}, // the interval passed
		{6, time.Hour, false, []uint64{5, 6}},   // nothing new: nothing anchored
		{7, 0, true, []uint64{5, 6, 7}},         // shutdown
	}
	for i, s := range steps {
		ch.seq = s.seq
		c.t = c.t.Add(s.advance)
		if err := a.anchor(ctx, s.final); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		got, err := ReadFile(a.file, pub)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		var seqs []uint64
		for _, x := range got {
			seqs = append(seqs, x.Sequence)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(s.want) {
			t.Fatalf("step %d: file holds %v, want %v", i, seqs, s.want)
		}
	}
	own, err := a.Anchors()
	if err != nil || len(own) != 3 || own[2].Seq != 7 || !strings.HasPrefix(own[2].Where, "anchor file ") {
		t.Fatalf("own anchors %+v, %v", own, err)
	}
	if n := Note(own); !strings.Contains(n, "protects less") {
		t.Fatalf("note %q", n)
	}
	// A node started again reads where it stood.
	b := New(Config{Agency: "DE-BAFA", DataDir: filepath.Dir(a.file), Every: 5, Chain: ch, Key: a.cfg.Key, Now: c.now})
	if b.lastSeq != 7 {
		t.Fatalf("restarted anchorer at %d, want 7", b.lastSeq)
	}
	// An edited line is refused, naming the file and line.
	data, _ := os.ReadFile(a.file)
	lines := bytes.Split(data, []byte("\n"))
	lines[2] = append([]byte("A"), lines[2][1:]...)
	if err := os.WriteFile(a.file, bytes.Join(lines, []byte("\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(a.file, pub); err == nil || !strings.Contains(err.Error(), a.file+":3:") {
		t.Fatalf("edited file: %v; want an error naming %s:3", err, a.file)
	}
	// Another key's file is refused too.
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	os.WriteFile(a.file, data, 0o600)
	if _, err := ReadFile(a.file, other); err == nil || !strings.Contains(err.Error(), "signature does not verify") {
		t.Fatalf("file checked with another key: %v", err)
	}
}

// TestAnchorLog: once the federation applies protocol 5, anchors go to the
// log, signed by the agency, and the note is empty.
func TestAnchorLog(t *testing.T) {
	ctx := context.Background()
	ch, c, log := &chain{}, &clock{time.Unix(1_800_000_000, 0)}, &fedLog{}
	a, _ := newAnchorer(t, ch, log, c)
	ch.seq = 5
	if err := a.anchor(ctx, false); err != nil {
		t.Fatal(err)
	}
	log.inLog = true
	ch.seq = 10
	if err := a.anchor(ctx, false); err != nil {
		t.Fatal(err)
	}
	ch.seq = 11
	if err := a.Final(ctx); err != nil {
		t.Fatal(err)
	}
	if len(log.held) != 2 || log.held[0].Sequence != 10 || log.held[1].Sequence != 11 {
		t.Fatalf("log holds %+v", log.held)
	}
	own, err := a.Anchors()
	if err != nil || len(own) != 3 || own[1].Seq != 11 || own[1].Where != "federation log entry 101" || own[2].Seq != 5 {
		t.Fatalf("own anchors %+v, %v", own, err)
	}
	if n := Note(own); n != "" {
		t.Fatalf("note %q with an anchor in the log", n)
	}
}

// TestNoAnchorOverARewrite: a chain that no longer reaches its last anchor
// (shortened and grown again, or edited and re-chained) is not anchored
// again, so a newer anchor never buries the rewrite.
func TestNoAnchorOverARewrite(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rewrite func(c *chain)
	}{
		{"shortened, then grown past the anchor", func(c *chain) { c.from = 4; c.seq = 20 }},
		{"an early event edited and the chain recomputed", func(c *chain) { c.from = 2; c.seq = 20 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ch, c, log := &chain{}, &clock{time.Unix(1_800_000_000, 0)}, &fedLog{inLog: true}
			a, _ := newAnchorer(t, ch, log, c)
			ch.seq = 10
			if err := a.anchor(ctx, true); err != nil {
				t.Fatal(err)
			}
			tc.rewrite(ch)
			if err := a.Final(ctx); err != nil {
				t.Fatal(err)
			}
			if len(log.held) != 1 || log.held[0].Sequence != 10 {
				t.Fatalf("log holds %+v; want only the anchor at 10", log.held)
			}
		})
	}
}

// TestVerifyEveryAnchor: an insider who rewrote the chain and anchored the
// rewrite anew (with the node's key) passes the furthest anchor, not the
// earlier ones partners hold: verify checks each.
func TestVerifyEveryAnchor(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "node.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN := func(n int) {
		for i := range n {
			if _, err := st.AppendAudit(ctx, &pb.AuditEvent{Action: fmt.Sprint("act", i), Outcome: "ok"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(10)
	h5, err := st.AuditHashAt(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	early := store.Anchor{Seq: 5, Hash: h5, Where: "federation log entry 7"}
	st.Close()
	if err := tamper.RewriteAudit(path, func(evs []*pb.AuditEvent) []*pb.AuditEvent {
		evs[1].Actor = "someone-else"
		return evs
	}); err != nil {
		t.Fatal(err)
	}
	if st, err = store.Open(path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	appendN(5)
	seq, head, err := st.AuditHead()
	if err != nil {
		t.Fatal(err)
	}
	late := store.Anchor{Seq: seq, Hash: head, Where: "federation log entry 30"}
	if res, err := Verify(ctx, st, []store.Anchor{late}); err != nil || !res.OK {
		t.Fatalf("against the insider's anchor alone: %+v, %v; want it to pass", res, err)
	}
	res, err := Verify(ctx, st, []store.Anchor{early, late})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || res.FirstBrokenSeq != 5 || res.AnchoredSeq != 15 || !strings.Contains(res.Reason, "event 5 does not have the anchored hash (federation log entry 7)") {
		t.Fatalf("got %+v; want broken at the early anchor", res)
	}
}
