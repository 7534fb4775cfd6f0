package replication

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// TestDamagedRaftSnapshot: a raft snapshot whose image has a flipped byte
// is found at start, named and set aside. When the log starts after it,
// the replicated state (intact, up to date) is made the snapshot in its
// place; when the state does not reach it either, the node refuses to
// start, naming the snapshot. A snapshot whose meta.json is damaged (raft
// only skips it) is named and set aside as well; with no meta to say where
// it ends, only the log can cover it.
func TestDamagedRaftSnapshot(t *testing.T) {
	l := newProtoLog(t)
	l.add(barrierCmd())
	for _, tc := range []struct {
		name     string
		meta     bool   // damage meta.json rather than the image
		applied  int    // entries the FSM applied (of l's)
		logFrom  uint64 // the log's first index
		wantErr  string
		wantSnap uint64 // the index of the snapshot left, if no error
	}{
		{name: "log covers", applied: len(l.logs), logFrom: 1, wantSnap: 0},
		{name: "state covers", applied: len(l.logs), logFrom: 4, wantSnap: uint64(len(l.logs))},
		{name: "nothing covers", applied: 2, logFrom: 4, wantErr: "neither an older snapshot nor the log"},
		{name: "meta, log covers", meta: true, applied: len(l.logs), logFrom: 1, wantSnap: 0},
		{name: "meta, log does not cover", meta: true, applied: len(l.logs), logFrom: 4, wantErr: "cannot say up to which entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := openTestFSM(t, filepath.Join(dir, "fsm.db"), nil)
			defer f.Close()
			applyAll(f, l.logs[:3])
			snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			_, trans := raft.NewInmemTransport("")
			conf := raft.Configuration{Servers: []raft.Server{{ID: "AA", Address: "AA:1"}}}
			sink, err := snaps.Create(raft.SnapshotVersionMax, 3, 1, conf, 1, trans)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := f.Snapshot()
			if err := s.Persist(sink); err != nil {
				t.Fatal(err)
			}
			if tc.applied >= 3 {
				applyAll(f, l.logs[3:tc.applied])
			} else { // a state behind the snapshot
				f.Close()
				f = newTestFSM(t, nil)
				applyAll(f, l.logs[:tc.applied])
			}
			metas, _ := snaps.List()
			img := filepath.Join(dir, "snapshots", metas[0].ID, "state.bin")
			if tc.meta {
				img = filepath.Join(dir, "snapshots", metas[0].ID, "meta.json")
			}
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x40
			if tc.meta {
				b[0] = '!' // not JSON, wherever the flip fell
			}
			if err := os.WriteFile(img, b, 0o600); err != nil {
				t.Fatal(err)
			}

			damaged, err := setAsideDamagedSnapshots(nil, dir, snaps)
			if err != nil || len(damaged) != 1 || !strings.Contains(damaged[0].err.Error(), img) {
				t.Fatalf("damaged snapshots: %v %v", damaged, err)
			}
			if left, _ := snaps.List(); len(left) != 0 {
				t.Fatalf("the damaged snapshot is still listed: %v", left)
			}
			logs := raft.NewInmemStore()
			for _, e := range l.logs[tc.logFrom-1:] {
				if err := logs.StoreLog(e); err != nil {
					t.Fatal(err)
				}
			}
			err = coverDamagedSnapshots(nil, damaged, f, logs, snaps, trans)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), img) {
					t.Fatalf("cover: %v, want %q naming %s", err, tc.wantErr, img)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			left, _ := snaps.List()
			if tc.wantSnap == 0 {
				if len(left) != 0 {
					t.Fatalf("a snapshot was made though the log covers: %v", left)
				}
				return
			}
			if len(left) != 1 || left[0].Index != tc.wantSnap || len(left[0].Configuration.Servers) != 1 {
				t.Fatalf("snapshots after cover: %+v, want one at %d with the configuration", left, tc.wantSnap)
			}
			_, rc, err := snaps.Open(left[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			g := newTestFSM(t, nil)
			if err := g.Restore(rc); err != nil {
				t.Fatal(err)
			}
			_, want, _ := f.StateHash()
			if _, got, _ := g.StateHash(); !bytes.Equal(got, want) {
				t.Fatal("the new snapshot does not hold the replicated state")
			}
		})
	}
}
