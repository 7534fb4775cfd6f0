package replication

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
)

// TestFSMRebuiltFromSnapshotAndLog: the FSM's file is written without fsync,
// so after a machine crash it is not trusted; nor is a damaged or missing
// one. Each is rebuilt from the raft snapshot and log before raft starts, so
// the member holds the same state at once (its TLS trust comes from it), and
// afterwards it agrees byte for byte with the others.
func TestFSMRebuiltFromSnapshotAndLog(t *testing.T) {
	damage := []struct {
		name    string
		harm    func(t *testing.T, path string)
		rebuilt bool // the file is set aside (a missing one is simply new)
	}{
		{"machine restarted while open", func(t *testing.T, path string) {
			// What a power loss leaves: the marker of a boot that is gone.
			if err := os.WriteFile(openMarker(path), []byte("an-earlier-boot\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"damaged file", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, 2*os.Getpagesize()), 0); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"missing file", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			small := func() *raft.Config {
				c := testRaftConfig()
				c.SnapshotThreshold = 1 << 20 // only the explicit snapshot below
				c.TrailingLogs = 10
				return c
			}
			pki, nodes := federation(t, 3, small)
			ctx := ctxT(t)
			l := leaderOf(t, nodes)
			publish := func(from, to int) uint64 {
				var last uint64
				for i := from; i < to; i++ {
					idx, err := l.rep.Apply(ctx, l.publication(fmt.Sprintf("%s/r%d", l.id, i), 1))
					if err != nil {
						t.Fatal(err)
					}
					last = idx
				}
				return last
			}
			last := publish(0, 60)
			f := followerOf(nodes, l)
			waitApplied(t, nodes, last)
			// A snapshot on the member, then more log after it: the rebuild
			// needs both.
			if err := f.rep.raft.Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
			last = publish(60, 90)
			waitApplied(t, nodes, last)
			f.stop()
			path := filepath.Join(f.dir, "fsm.db")
			d.harm(t, path)

			back := startTestNode(t, pki, f.id, f.addr, f.dir, small())
			if got := back.rep.fsm.Rebuilt() != ""; got != d.rebuilt {
				t.Fatalf("rebuilt = %v (%q), want %v", got, back.rep.fsm.Rebuilt(), d.rebuilt)
			}
			if d.rebuilt {
				if _, err := os.Stat(path + ".untrusted"); err != nil {
					t.Fatalf("the untrusted file was not kept aside: %v", err)
				}
			}
			// Replayed before raft ran: no leader was needed.
			if got := back.rep.fsm.Applied(); got < f.stoppedApplied {
				t.Fatalf("applied %d right after start, want at least %d", got, f.stoppedApplied)
			}
			members, err := back.rep.fsm.Members()
			if err != nil || len(members) != 3 {
				t.Fatalf("registry after the rebuild: %d members, %v", len(members), err)
			}

			all := append([]*testNode{back}, running(nodes)...)
			last = publish(90, 91)
			waitApplied(t, all, last)
			sameEntries(t, all, 91)
			sameStateHash(t, all)
		})
	}
}

// sameStateHash waits until every node's state hash is taken at the same
// index, and checks they are equal.
func sameStateHash(t *testing.T, nodes []*testNode) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var idx []uint64
		var sums [][]byte
		for _, n := range nodes {
			i, s, err := n.rep.fsm.StateHash()
			if err != nil {
				t.Fatal(err)
			}
			idx, sums = append(idx, i), append(sums, s)
		}
		same := true
		for i := range idx {
			same = same && idx[i] == idx[0]
		}
		if same {
			for i := range sums {
				if !bytes.Equal(sums[i], sums[0]) {
					t.Fatalf("%s and %s differ at index %d", nodes[i].id, nodes[0].id, idx[0])
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state hash indexes never met: %v", idx)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestBodyCacheKeepsTheLatest: the cache holds the bodies put last, within
// its count and its bytes, oldest out first.
func TestBodyCacheKeepsTheLatest(t *testing.T) {
	body := func(i uint64) *peerpb.PublicationBody { return &peerpb.PublicationBody{Origin: fmt.Sprint(i)} }
	for _, tc := range []struct {
		name  string
		n     uint64
		size  int
		first uint64 // the oldest index still held
	}{
		{"by count", bodyCacheSize + 2, 100, 3},
		{"by bytes", 10, bodyCacheBytes / 4, 7},
		{"too large to hold", 3, bodyCacheBytes + 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c bodyCache
			for i := uint64(1); i <= tc.n; i++ {
				c.put(i, body(i), tc.size)
			}
			for i := uint64(1); i <= tc.n; i++ {
				if held := i >= tc.first; (c.get(i) != nil) != held {
					t.Fatalf("index %d held %v, want %v", i, c.get(i) != nil, held)
				}
			}
		})
	}
	var c bodyCache
	c.put(5, body(5), 10)
	c.put(5, &peerpb.PublicationBody{Origin: "again"}, 10)
	if c.get(5).Origin != "5" {
		t.Fatal("a second put replaced the held body")
	}
}
