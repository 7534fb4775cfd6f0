package testnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestAcceptRestoreOnTestnet: FR-SBDU, anchoring its audit chain in the
// federation log after every event, is lost and restored from a backup
// taken before its last events. The federation log still holds the anchors
// of the lost chain: `audit verify` reports the restored chain shorter than
// anchored (exit 1), and the node anchors no more. `audit anchors
// accept-restore` accepts the loss, naming the superseded anchors and the
// restore's set-aside anchor file; it is an audit event; `audit verify`
// passes again, FR anchors its new events, and the same restore is not
// accepted twice (exit 6).
func TestAcceptRestoreOnTestnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a federation of three processes")
	}
	bin := watchfedAt(t, "")
	nt, conns := startNet(t, Options{NodeConfig: "audit_anchor_events: 1\naudit_anchor_interval: 1s\n"}, bin, bin, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fr := nt.Members[1]
	anchored := func(min uint64) *pb.GetStatusResponse {
		t.Helper()
		var st *pb.GetStatusResponse
		waitUntil(t, time.Minute, fmt.Sprintf("FR anchored event %d or later in the federation log", min), func() (bool, string) {
			var err error
			if st, err = statusOf(ctx, conns[1], false); err != nil {
				return false, err.Error()
			}
			return st.AuditAnchoredSeq >= min && strings.HasPrefix(st.AuditAnchorWhere, "federation log entry "), fmt.Sprint(st.Protocol, " ", st.AuditAnchoredSeq, " ", st.AuditAnchorWhere)
		})
		return st
	}
	head := func() uint64 {
		t.Helper()
		code, out := cli(t, ctx, bin, fr, "audit", "verify", "-o", "json")
		if code != 0 {
			t.Fatalf("audit verify: exit %d: %s", code, out)
		}
		var n uint64
		if i := strings.Index(out, `"checked":`); i >= 0 {
			fmt.Sscan(strings.Trim(out[i+len(`"checked":`):], ` "`), &n)
		}
		return n
	}
	createRecord(t, conns[1], "Restore Target Before Backup")
	anchored(head())
	backup := filepath.Join(t.TempDir(), "fr.backup")
	if code, out := cli(t, ctx, bin, fr, "snapshot", "save", backup); code != 0 {
		t.Fatalf("snapshot save: exit %d: %s", code, out)
	}
	for i := range 3 {
		createRecord(t, conns[1], fmt.Sprintf("Restore Target Lost %d", i))
	}
	lost := anchored(head()).AuditAnchoredSeq

	if err := nt.Kill(fr); err != nil {
		t.Fatal(err)
	}
	wipe(t, fr)
	if code, out := cli(t, ctx, bin, fr, "snapshot", "restore", backup, "--data-dir", fr.Dir, "--agency", fr.Agency); code != 0 {
		t.Fatalf("snapshot restore: exit %d: %s", code, out)
	}
	if err := nt.Restart(ctx, fr); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 2*time.Minute, "FR caught up with the federation log", func() (bool, string) {
		_, err := os.Stat(filepath.Join(fr.Dir, "raft", "restored"))
		return os.IsNotExist(err), fmt.Sprint(err)
	})
	waitUntil(t, time.Minute, "FR's verify finds the chain shorter than the lost chain's anchor", func() (bool, string) {
		code, out := cli(t, ctx, bin, fr, "audit", "verify")
		return code == 1 && strings.Contains(out, "shorter than anchored") && strings.Contains(out, fmt.Sprint(lost)), out
	})

	code, out := cli(t, ctx, bin, fr, "audit", "anchors", "accept-restore")
	if code != 0 || !strings.Contains(out, "restore accepted (audit-anchors.before-restore-") || !strings.Contains(out, fmt.Sprintf("the anchor of event %d", lost)) {
		t.Fatalf("accept-restore: exit %d:\n%s", code, out)
	}
	t.Logf("accept-restore:\n%s", out)
	if code, out := cli(t, ctx, bin, fr, "audit", "list", "-o", "json"); code != 0 || !strings.Contains(out, "AcceptRestore") || !strings.Contains(out, "restore accepted at event") {
		t.Fatalf("the acceptance is not in the audit log: exit %d:\n%s", code, out)
	}
	if code, out := cli(t, ctx, bin, fr, "audit", "verify"); code != 0 {
		t.Fatalf("verify after the acceptance: exit %d:\n%s", code, out)
	}
	createRecord(t, conns[1], "Restore Target After Acceptance")
	anchored(head())
	if code, out := cli(t, ctx, bin, fr, "audit", "anchors", "accept-restore"); code != 6 {
		t.Fatalf("the same restore accepted twice: exit %d:\n%s", code, out)
	}
}
