package testnet

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/watchfed/watchfed/node"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
)

// TestRejoinWithNewKeys: a removed member reads nothing published while it
// is out (no byte of it in its data directory); invited again, its node
// starts afresh with new keys, bound to its id by a rebind its partners'
// operators propose and approve with the watchfed binary (peers rebind,
// proposals approve), and reads everything its partners' policies entitle
// it to, from before its removal, while it was out, and after.
func TestRejoinWithNewKeys(t *testing.T) {
	l := startLocal(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	de, fr, nl := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	// The re-join below is a rebind, a proposal of protocol 3.
	waitProtocol(t, l, replication.ProtocolGovernance)
	before := add(t, de, "Entitled Before Removal")
	waitFor(t, "NL takes in DE's entry", func() bool { _, ok := shared(t, nl)[before.Record.Id]; return ok })

	lead := leaderOtherThan(ctx, t, l, nl, de)
	if err := l.RemoveApproved(ctx, lead, nl.Agency); err != nil {
		t.Fatal(err)
	}
	away := add(t, de, "Published While Away")
	waitFor(t, "FR takes in the entry published while NL is out", func() bool { _, ok := shared(t, fr)[away.Record.Id]; return ok })
	if err := nl.Stop(); err != nil {
		t.Fatal(err)
	}
	if hit := grep(t, nl.Dir, "Published While Away"); hit != "" {
		t.Fatalf("the removed member's data holds an entry published after its removal, in %s", hit)
	}
	oldKeys, err := os.ReadFile(filepath.Join(nl.Dir, node.KeysFile))
	if err != nil {
		t.Fatal(err)
	}

	// NL comes back afresh: new keys, empty stores, a new invitation.
	for _, name := range []string{node.StoreFile, node.KeysFile, "raft", node.InvitationFile} {
		if err := os.RemoveAll(filepath.Join(nl.Dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := os.ReadFile(nl.Env.CACert)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := l.InviteApproved(ctx, lead, &pb.InvitePeerRequest{Agency: nl.Agency, Address: nl.Addr, CaCert: ca, Voter: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.WriteInvitation(nl.Dir, inv); err != nil {
		t.Fatal(err)
	}
	if err := l.run(nl); err != nil {
		t.Fatal(err)
	}
	// Under protocol 3 NL's id stays bound to the keys it first joined
	// with: its new keys are a rebind, proposed and approved by the others,
	// as their operators would type it. NL's operator hands over its keys.
	bin := watchfedAt(t, "")
	if err := nl.waitHealthy(ctx, nil); err != nil {
		t.Fatal(err)
	}
	keysFile := filepath.Join(t.TempDir(), "nl-keys.json")
	if code, out := cli(t, ctx, bin, nl.Member, "federation", "keys", "--out", keysFile); code != 0 {
		t.Fatalf("federation keys on NL: exit %d: %s", code, out)
	}
	proposer, approver := fr, de // any member proposes: not necessarily the leader
	code, out := cli(t, ctx, bin, proposer.Member, "peers", "rebind", nl.Agency, "--keys", keysFile, "-o", "json")
	var p struct{ ID, State string }
	if err := json.Unmarshal([]byte(out), &p); code != 0 || err != nil || p.State != "pending" {
		t.Fatalf("peers rebind on %s: exit %d (%v): %s", proposer.Agency, code, err, out)
	}
	if code, out := cli(t, ctx, bin, approver.Member, "proposals", "approve", p.ID); code != 0 || !strings.Contains(out, "applied") {
		t.Fatalf("proposals approve %s on %s: exit %d: %s", p.ID, approver.Agency, code, out)
	}
	if err := nl.waitJoined(ctx); err != nil {
		t.Fatal(err)
	}
	newKeys, err := os.ReadFile(filepath.Join(nl.Dir, node.KeysFile))
	if err != nil || string(newKeys) == string(oldKeys) {
		t.Fatalf("NL's keys after rejoining: %v; want new keys", err)
	}
	after := add(t, de, "Published After Rejoining")
	for _, id := range []string{before.Record.Id, away.Record.Id, after.Record.Id} {
		waitFor(t, "NL, back with new keys, reads "+id, func() bool { _, ok := shared(t, nl)[id]; return ok })
	}
}
