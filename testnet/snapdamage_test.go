package testnet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDamagedRaftSnapshotOfAStoppedFollower damages a stopped follower's
// newest raft snapshot (raft/snapshots/<id>/), in a federation configured
// to take snapshots every few entries, and restarts it: bytes flipped in
// the image (state.bin) with fsm.db removed, so that the node must rebuild
// its state without it; and meta.json made unreadable (raft itself only
// skips such a snapshot). Each is detected, the log naming the file, set
// aside, and the node comes back at its partners' exact state hash.
func TestDamagedRaftSnapshotOfAStoppedFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a federation of three processes")
	}
	cur := watchfedAt(t, "")
	nt, conns := startNet(t, Options{NodeConfig: "raft_snapshot_threshold: 16\nraft_snapshot_interval: 200ms\n"}, cur, cur, cur)
	ctx := context.Background()
	st, err := statusOf(ctx, conns[0], false)
	if err != nil {
		t.Fatal(err)
	}
	lead := slices.IndexFunc(nt.Members, func(m *Member) bool { return m.Agency == st.Leader })
	f := (lead + 1) % len(nt.Members)
	m := nt.Members[f]

	for _, tc := range []struct {
		name, file string
		damage     func(t *testing.T, path, marker string)
		removeFSM  bool
	}{
		{"image", "state.bin", func(t *testing.T, path, marker string) { flipAt(t, path, []byte(marker), 32) }, true},
		{"meta", "meta.json", func(t *testing.T, path, _ string) {
			if err := os.WriteFile(path, []byte("{\"Version\":1,\"ID\":"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Enough entries for a snapshot on the follower that holds them.
			// Entries are sealed: their ids are what the image shows in clear.
			var ids []string
			for i := range 20 {
				ids = append(ids, createRecord(t, conns[lead], fmt.Sprintf("Snapshot Target %s %d", tc.name, i)))
			}
			waitSameState(t, conns, lead, f)
			var snap string
			waitUntil(t, time.Minute, m.Agency+" takes a raft snapshot holding the records", func() (bool, string) {
				snap = newestSnapshot(t, m)
				if snap == "" {
					return false, "no snapshot"
				}
				img, err := os.ReadFile(filepath.Join(snap, "state.bin"))
				return err == nil && bytes.Contains(img, []byte(ids[0])), snap
			})
			if err := nt.Stop(m, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			snap = newestSnapshot(t, m) // the newest as it stopped
			path := filepath.Join(snap, tc.file)
			tc.damage(t, path, ids[0])
			if tc.removeFSM {
				if err := os.Remove(filepath.Join(m.Dir, "raft", "fsm.db")); err != nil {
					t.Fatal(err)
				}
			}
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := nt.Restart(rctx, m); err != nil {
				// A refusal must name the damaged file.
				if last := lastLine(err.Error()); !strings.Contains(last, path) {
					t.Fatalf("restart after damaging %s: %v", path, err)
				}
				t.Logf("refused: %s", lastLine(err.Error()))
				return
			}
			waitLogged(t, m, path, "damaged")
			if _, err := os.Stat(filepath.Join(m.Dir, "raft", "snapshots-damaged", filepath.Base(snap))); err != nil {
				t.Fatalf("the damaged snapshot is not set aside: %v", err)
			}
			createRecord(t, conns[lead], "Snapshot Target After "+tc.name)
			waitSameState(t, conns, lead, f)
		})
	}
}

// newestSnapshot is the directory of m's newest whole raft snapshot; "" if none.
func newestSnapshot(t *testing.T, m *Member) string {
	t.Helper()
	metas, err := filepath.Glob(filepath.Join(m.Dir, "raft", "snapshots", "*", "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) == 0 {
		return ""
	}
	newest, at := "", time.Time{}
	for _, p := range metas {
		if fi, err := os.Stat(p); err == nil && fi.ModTime().After(at) {
			newest, at = filepath.Dir(p), fi.ModTime()
		}
	}
	return newest
}
