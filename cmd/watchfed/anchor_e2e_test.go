package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
	if st := decode[statusAnchorJSON](t, n2.ok("status", "-o", "json")); st.AuditAnchoredSeq != anchored ||
		st.AuditAnchorWhere != "anchor file "+filepath.Join(dir, anchor.FileName) || st.AuditAnchoredAt == "" {
		t.Fatalf("status of the anchors: %+v; want event %d in the anchor file", st, anchored)
	}
	if out := n2.ok("status"); !strings.Contains(out, "audit_anchor_where") || !strings.Contains(out, "anchor file") {
		t.Fatalf("status table lacks the anchors:\n%s", out)
	}
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

// statusAnchorJSON is what `status -o json` says of the audit anchors.
type statusAnchorJSON struct {
	AuditAnchoredSeq uint64 `json:"audit_anchored_seq"`
	AuditAnchoredAt  string `json:"audit_anchored_at"`
	AuditAnchorWhere string `json:"audit_anchor_where"`
}

// anchorJSON is an entry of `audit anchors -o json`.
type anchorJSON struct {
	Agency   string `json:"agency"`
	Sequence uint64 `json:"sequence"`
	HeadHash string `json:"head_hash"`
	LogIndex uint64 `json:"log_index"`
}

// TestAuditAnchorsOnTestnet: on a real three-process testnet (protocol 5
// active), NL-CDIU set to anchor every 3 events anchors its chain in the
// federation log as its analysts work, and DE-BAFA's `audit anchors` shows
// NL-CDIU's anchor (sequence and hash; no content); NL-CDIU's `audit
// verify` says its chain matches it. Stopped, its last events removed from
// node.db and the chain recomputed, NL-CDIU's chain is reported shorter
// than the anchor the partner holds, naming its sequence.
func TestAuditAnchorsOnTestnet(t *testing.T) {
	dir := t.TempDir()
	n := &devNode{t: t}
	if r := n.cli("", nil, "testnet", "up", "--nodes", "3", "--dir", dir, "--detach"); r.code != 0 {
		t.Fatalf("testnet up: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Cleanup(func() { n.cli("", nil, "testnet", "down", "--dir", dir) })
	const nl = "NL-CDIU"
	cfgPath := filepath.Join(dir, nl, "node.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, append(cfg, []byte("\naudit_anchor_events: 3\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := n.cli("", nil, "testnet", "restart", "--dir", dir, nl); r.code != 0 {
		t.Fatalf("testnet restart: exit %d: %s", r.code, r.stderr)
	}
	eventually(t, "protocol 5 active on "+nl, 60*time.Second, func() (bool, string) {
		r := as(t, dir, nl, "status", "-o", "json")
		if r.code != 0 {
			return false, r.stderr
		}
		return decode[struct {
			Protocol uint32 `json:"protocol"`
		}](t, r.stdout).Protocol >= 5, r.stdout
	})
	for i := range 4 {
		if r := as(t, dir, nl, "designations", "add", "--schema", "organization", "--name", "Anchor Co "+strconv.Itoa(i),
			"--program", "X", "--marking", "GREEN"); r.code != 0 {
			t.Fatalf("add: exit %d: %s", r.code, r.stderr)
		}
	}
	var held anchorJSON
	eventually(t, "DE-BAFA holds an anchor of "+nl, 60*time.Second, func() (bool, string) {
		r := as(t, dir, "DE-BAFA", "audit", "anchors", "--agency", nl, "-o", "json")
		if r.code != 0 {
			return false, r.stderr
		}
		as := decode[[]anchorJSON](t, r.stdout)
		if len(as) == 0 {
			return false, r.stdout
		}
		held = as[len(as)-1]
		return held.Agency == nl && held.Sequence >= 3 && held.LogIndex > 0 && held.HeadHash != "", r.stdout
	})
	if r := as(t, dir, "DE-BAFA", "audit", "anchors"); r.code != 0 || !strings.Contains(r.stdout, "AGENCY") || !strings.Contains(r.stdout, nl) {
		t.Fatalf("audit anchors as a table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := as(t, dir, nl, "status", "-o", "json"); r.code != 0 {
		t.Fatalf("status: exit %d: %s", r.code, r.stderr)
	} else if st := decode[statusAnchorJSON](t, r.stdout); st.AuditAnchoredSeq < held.Sequence || !strings.HasPrefix(st.AuditAnchorWhere, "federation log entry ") {
		t.Fatalf("%s's status of its anchors: %+v; want at least event %d in the federation log", nl, st, held.Sequence)
	}
	if out := as(t, dir, nl, "audit", "verify"); out.code != 0 || !strings.Contains(out.stdout, "matches its last anchor: event ") || strings.Contains(out.stdout, "protects less") {
		t.Fatalf("%s's verify: exit %d\n%s%s", nl, out.code, out.stdout, out.stderr)
	}

	pid := pidOf(t, dir, nl)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, nl+" stopped", 60*time.Second, func() (bool, string) { return !alive(pid), "" })
	r := n.cli("", nil, "audit", "verify", "--data-dir", filepath.Join(dir, nl), "-o", "json")
	final := decode[verifyJSON](t, r.stdout)
	if r.code != 0 || !final.OK || final.AnchoredSeq < held.Sequence || !strings.HasPrefix(final.AnchoredAt, "federation log entry ") {
		t.Fatalf("%s stopped, untouched: exit %d, %+v", nl, r.code, final)
	}
	if err := tamper.RewriteAudit(filepath.Join(dir, nl, node.StoreFile), func(evs []*pb.AuditEvent) []*pb.AuditEvent { return evs[:len(evs)-3] }); err != nil {
		t.Fatal(err)
	}
	r = n.cli("", nil, "audit", "verify", "--data-dir", filepath.Join(dir, nl), "-o", "json")
	v := decode[verifyJSON](t, r.stdout)
	want := "event " + strconv.FormatUint(final.AnchoredSeq, 10) + " was anchored (federation log entry"
	if r.code != exitError || v.OK || v.AnchoredSeq != final.AnchoredSeq || !strings.Contains(v.Reason, want) {
		t.Fatalf("after the last events were removed: exit %d, %+v; want broken saying %q", r.code, v, want)
	}
	// The partner holds that very anchor.
	eventually(t, "DE-BAFA holds "+nl+"'s last anchor", 60*time.Second, func() (bool, string) {
		r := as(t, dir, "DE-BAFA", "audit", "anchors", "--agency", nl, "-o", "json")
		as := decode[[]anchorJSON](t, r.stdout)
		return len(as) > 0 && as[len(as)-1].Sequence == final.AnchoredSeq, r.stdout
	})
}
