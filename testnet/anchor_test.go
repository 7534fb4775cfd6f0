package testnet

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/watchfed/watchfed/node"
	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/testnet/tamper"
)

func heldAnchors(t *testing.T, ln *LocalNode, agency string) []*pb.AuditAnchorInfo {
	t.Helper()
	resp, err := pb.NewAuditServiceClient(conn(t, ln)).ListAuditAnchors(context.Background(), &pb.ListAuditAnchorsRequest{Agency: agency})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Anchors
}

// TestAuditAnchorsHeldByPartners: once protocol 5 is active, a follower
// stopped cleanly anchors its audit chain's head in the federation log, and
// both partners hold that anchor (sequence and hash, no content). The
// follower's node.db then loses its last events, the chain recomputed as
// an insider would: `audit verify` (offline, then through the restarted
// node) reports the chain shorter than anchored, naming the sequence the
// partners hold.
func TestAuditAnchorsHeldByPartners(t *testing.T) {
	if !replication.Contiguous(replication.SupportedProtocols(), 1, replication.ProtocolAnchors) {
		t.Skipf("protocol %d (audit anchors) is activated only once this binary supports every version below it; it supports %v",
			replication.ProtocolAnchors, replication.SupportedProtocols())
	}
	l := startLocal(t, 3)
	waitProtocol(t, l, replication.ProtocolAnchors)
	var b *LocalNode
	var partners []*LocalNode
	for _, ln := range l.Nodes {
		if b == nil && ckStatus(t, ln).Role != "leader" {
			b = ln
		} else {
			partners = append(partners, ln)
		}
	}
	for i := range 3 {
		add(t, b, fmt.Sprintf("Anchor Target %d", i))
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	v, err := node.VerifyAuditOffline(ctx, b.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Ok || v.AnchoredSeq < 4 || !strings.HasPrefix(v.AnchoredAt, "federation log entry ") || v.AnchorNote != "" {
		t.Fatalf("the stopped member's own chain: %+v; want intact and anchored in the log", v)
	}
	var head []byte
	db, err := store.Open(filepath.Join(b.Dir, node.StoreFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	head, err = db.AuditHashAt(ctx, v.AnchoredSeq)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range partners {
		waitFor(t, p.Agency+" holds "+b.Agency+"'s anchor", func() bool {
			as := heldAnchors(t, p, b.Agency)
			return len(as) > 0 && as[len(as)-1].Sequence == v.AnchoredSeq
		})
		as := heldAnchors(t, p, b.Agency)
		if last := as[len(as)-1]; !bytes.Equal(last.HeadHash, head) || last.Agency != b.Agency || last.LogIndex == 0 {
			t.Fatalf("%s holds %+v; want %s's head %x", p.Agency, last, b.Agency, head)
		}
	}

	if err := tamper.RewriteAudit(filepath.Join(b.Dir, node.StoreFile), func(evs []*pb.AuditEvent) []*pb.AuditEvent { return evs[:len(evs)-2] }); err != nil {
		t.Fatal(err)
	}
	v2, err := node.VerifyAuditOffline(ctx, b.Dir)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("but event %d was anchored (federation log entry", v.AnchoredSeq)
	if v2.Ok || v2.AnchoredSeq != v.AnchoredSeq || !strings.Contains(v2.Reason, want) {
		t.Fatalf("after the last events were removed: %+v; want broken saying %q", v2, want)
	}
	if err := l.Restart(ctx, b); err != nil {
		t.Fatal(err)
	}
	res, err := pb.NewAuditServiceClient(conn(t, b)).VerifyAuditLog(ctx, &pb.VerifyAuditLogRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ok || res.AnchoredSeq != v.AnchoredSeq {
		t.Fatalf("verify through the restarted member: %+v", res)
	}
}

// TestAuditAnchorsBeforeProtocol5: while the federation does not apply
// protocol 5, a member anchors in its own file, the log holds no anchor,
// and verify says that this protects less.
func TestAuditAnchorsBeforeProtocol5(t *testing.T) {
	if replication.Contiguous(replication.SupportedProtocols(), 1, replication.ProtocolAnchors) {
		t.Skip("this binary activates protocol 5: TestAuditAnchorsHeldByPartners covers anchors")
	}
	l := startLocal(t, 3)
	b := l.Nodes[1]
	add(t, b, "Anchor Target")
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	v, err := node.VerifyAuditOffline(ctx, b.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Ok || v.AnchoredSeq == 0 || !strings.HasPrefix(v.AnchoredAt, "anchor file ") || !strings.Contains(v.AnchorNote, "protects less") {
		t.Fatalf("%+v; want anchored in the node's file, with the note", v)
	}
	if as := heldAnchors(t, l.Nodes[0], ""); len(as) != 0 {
		t.Fatalf("the log holds anchors before protocol 5: %+v", as)
	}
}
