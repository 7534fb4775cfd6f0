package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/watchfed/watchfed/node"
	"github.com/watchfed/watchfed/node/anchor"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/testnet/tamper"
)

// verifyJSON is `audit verify -o json` as the tests read it.
type verifyJSON struct {
	OK             bool   `json:"ok"`
	Checked        uint64 `json:"checked"`
	FirstBrokenSeq uint64 `json:"first_broken_seq"`
	Reason         string `json:"reason"`
	AnchoredSeq    uint64 `json:"anchored_seq"`
	AnchoredAt     string `json:"anchored_at"`
	AnchorNote     string `json:"anchor_note"`
}

// TestAuditAnchorStandalone: a node in no federation anchors its audit
// chain in a file of its own (at shutdown here), and `audit verify` says
// that this protects less. After the last events are removed from node.db,
// or one is edited, each time with the chain recomputed as an insider
// would, the chain alone verifies, but `audit verify` reports it broken,
// naming the last anchored event, and exits 1 (offline and through the
// restarted node).
func TestAuditAnchorStandalone(t *testing.T) {
	dir := t.TempDir()
	n := startDevNode(t, dir, freeAddr(t))
	for _, name := range []string{"Alpha Trading", "Beta Shipping", "Gamma Metals"} {
		n.ok("designations", "add", "--schema", "organization", "--name", name, "--program", "X", "--marking", "GREEN")
	}
	if out := n.ok("audit", "verify"); !strings.Contains(out, "note: the chain has not been anchored yet") {
		t.Fatalf("verify before any anchor: %s", out)
	}
	n.stop() // anchors the head in the file
	if _, err := os.Stat(filepath.Join(dir, anchor.FileName)); err != nil {
		t.Fatalf("no anchor file after a clean shutdown: %v", err)
	}
	r := n.cli("", nil, "audit", "verify", "--data-dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "matches its last anchor: event ") || !strings.Contains(r.stdout, "protects less") {
		t.Fatalf("offline verify of the untouched chain: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	v := decode[verifyJSON](t, n.ok("audit", "verify", "--data-dir", dir, "-o", "json"))
	anchored := v.AnchoredSeq
	if !v.OK || anchored < 4 || anchored != v.Checked || !strings.HasPrefix(v.AnchoredAt, "anchor file ") {
		t.Fatalf("untouched chain: %+v; want ok, anchored at its last event", v)
	}

	for _, tc := range []struct {
		name   string
		edit   func([]*pb.AuditEvent) []*pb.AuditEvent
		reason string
	}{
		{"last events removed", func(evs []*pb.AuditEvent) []*pb.AuditEvent { return evs[:len(evs)-2] },
			"the chain is shorter than anchored"},
		{"an event edited, the chain recomputed", func(evs []*pb.AuditEvent) []*pb.AuditEvent {
			evs[1].Actor = "someone-else"
			return evs
		}, "the chain differs from what was anchored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := t.TempDir()
			for _, f := range []string{node.StoreFile, node.KeysFile, anchor.FileName} {
				data, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(cp, f), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := tamper.RewriteAudit(filepath.Join(cp, node.StoreFile), tc.edit); err != nil {
				t.Fatal(err)
			}
			r := n.cli("", nil, "audit", "verify", "--data-dir", cp, "-o", "json")
			v := decode[verifyJSON](t, r.stdout)
			if r.code != exitError || v.OK || v.AnchoredSeq != anchored || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("after the rewrite: exit %d, %+v; want exit 1, %q, anchored at %d", r.code, v, tc.reason, anchored)
			}
			if want := "event " + strconv.FormatUint(anchored, 10) + " was anchored"; tc.reason == "the chain is shorter than anchored" && !strings.Contains(v.Reason, want) {
				t.Fatalf("reason %q does not say %q", v.Reason, want)
			}
			if !strings.Contains(r.stderr, "audit log broken at event") || !strings.Contains(r.stderr, strconv.FormatUint(anchored, 10)) {
				t.Fatalf("stderr: %s", r.stderr)
			}
		})
	}

	// Through the node itself, restarted on the shortened chain.
	if err := tamper.RewriteAudit(filepath.Join(dir, node.StoreFile), func(evs []*pb.AuditEvent) []*pb.AuditEvent { return evs[:len(evs)-2] }); err != nil {
		t.Fatal(err)
	}
	n2 := startDevNode(t, dir, freeAddr(t))
	r = n2.cli("", nil, "audit", "verify", "-o", "json")
	v = decode[verifyJSON](t, r.stdout)
	if r.code != exitError || v.OK || v.AnchoredSeq != anchored {
		t.Fatalf("verify through the restarted node: exit %d, %+v", r.code, v)
	}
	// The node does not anchor the rewritten chain over the old anchor.
	n2.stop()
	r = n.cli("", nil, "audit", "verify", "--data-dir", dir, "-o", "json")
	if v = decode[verifyJSON](t, r.stdout); r.code != exitError || v.AnchoredSeq != anchored {
		t.Fatalf("after the node ran on the rewritten chain: exit %d, %+v", r.code, v)
	}
}
