package replication_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/replication/replicationtest"
)

// These tests run raft groups of three members on replicationtest's
// cluster: real gRPC transport under mutual TLS, real bbolt files.

func testRaftConfig() *raft.Config {
	c := replication.DefaultRaftConfig()
	c.HeartbeatTimeout = replication.RaceSlowdown * 300 * time.Millisecond
	c.ElectionTimeout = replication.RaceSlowdown * 300 * time.Millisecond
	c.LeaderLeaseTimeout = replication.RaceSlowdown * 200 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// cluster starts a formed group of three that stops with the test.
func cluster(t *testing.T, opts replicationtest.Options) *replicationtest.Cluster {
	t.Helper()
	opts.Dir = t.TempDir()
	opts.Timeout = 2 * time.Second
	if opts.Raft == nil {
		opts.Raft = testRaftConfig
	}
	c, err := replicationtest.Start(ctxT(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func leader(t *testing.T, c *replicationtest.Cluster) *replicationtest.Member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	l, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func restart(t *testing.T, c *replicationtest.Cluster, m *replicationtest.Member) {
	t.Helper()
	if err := c.Restart(m); err != nil {
		t.Fatal(err)
	}
}

func waitApplied(t *testing.T, c *replicationtest.Cluster, index uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.WaitApplied(ctx, index); err != nil {
		t.Fatal(err)
	}
}

func entryIDs(t *testing.T, m *replicationtest.Member) []string {
	t.Helper()
	es, err := m.Rep.Entries(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range es {
		for _, env := range e.Body.Envelopes {
			ids = append(ids, fmt.Sprintf("%s@%d", env.Header.EntryId, e.Index))
		}
	}
	return ids
}

// sameEntries checks that every running member holds the same want entries.
func sameEntries(t *testing.T, c *replicationtest.Cluster, want int) {
	t.Helper()
	var ref []string
	for _, m := range c.Running() {
		ids := entryIDs(t, m)
		if len(ids) != want {
			t.Fatalf("%s holds %d entries, want %d", m.ID, len(ids), want)
		}
		if ref == nil {
			ref = ids
			continue
		}
		for i := range ids {
			if ids[i] != ref[i] {
				t.Fatalf("%s diverges at %d: %s vs %s", m.ID, i, ids[i], ref[i])
			}
		}
	}
}

func TestReplicateKillLeaderRestartFollower(t *testing.T) {
	c := cluster(t, replicationtest.Options{})
	ctx := ctxT(t)
	l := leader(t, c)
	var last uint64
	for i := 0; i < 100; i++ {
		idx, err := c.Apply(ctx, l.Publication(fmt.Sprintf("%s/e%d", l.ID, i), 1, 0))
		if err != nil {
			t.Fatal(err)
		}
		last = idx
	}
	waitApplied(t, c, last)
	sameEntries(t, c, 100)
	members, _ := c.Follower(l).Rep.Members()
	if len(members) != 3 {
		t.Fatalf("registry on a follower has %d members", len(members))
	}

	// Kill the leader: a new one is elected and nothing committed is lost.
	l = leader(t, c) // on a loaded machine leadership may have moved meanwhile
	l.Stop()
	l2 := leader(t, c)
	if l2 == l {
		t.Fatal("dead node still leads")
	}
	idx, err := c.Apply(ctx, l.Publication(l.ID+"/after-failover", 1, 0)) // signed by the old leader's agency: still a member
	if err != nil {
		t.Fatal(err)
	}
	waitApplied(t, c, idx)
	sameEntries(t, c, 101)

	// Restart the old leader on its data: it catches up and replays nothing twice.
	restart(t, c, l)
	waitApplied(t, c, idx)
	sameEntries(t, c, 101)
}

func TestSnapshotCatchUpAndForgeryRejected(t *testing.T) {
	small := func() *raft.Config {
		c := testRaftConfig()
		c.SnapshotThreshold = 50
		c.SnapshotInterval = 100 * time.Millisecond
		c.TrailingLogs = 10
		return c
	}
	c := cluster(t, replicationtest.Options{Raft: small})
	ctx := ctxT(t)
	l := leader(t, c)
	lagging := c.Follower(l)
	lagging.Stop()
	// On a loaded machine the leader can lose its lease to the other live
	// member; a write then goes to whichever leads (l's publications still).
	apply := func(cmd *peerpb.Command) (uint64, error) { return c.Apply(ctx, cmd) }
	var last uint64
	for i := 0; i < 300; i++ {
		idx, err := apply(l.Publication(fmt.Sprintf("%s/s%d", l.ID, i), 1, 0))
		if err != nil {
			t.Fatal(err)
		}
		last = idx
	}
	// Compact the log past what the lagging member has.
	cur := leader(t, c)
	if err := replication.Snapshot(cur.Rep); err != nil {
		t.Fatal(err)
	}
	if first, _ := replication.FirstIndex(cur.Rep); first <= lagging.StoppedApplied {
		t.Fatalf("log not compacted: first index %d", first)
	}
	restart(t, c, lagging)
	waitApplied(t, c, last)
	sameEntries(t, c, 300)
	if lagging.Rep.Status().SnapshotIndex == 0 {
		t.Fatal("the lagging member caught up without a snapshot install")
	}

	// A publication claiming l's agency but signed by another key is
	// rejected by every FSM, identically.
	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	body, _ := proto.Marshal(&peerpb.PublicationBody{Origin: l.ID, Envelopes: []*peerpb.Envelope{{Header: &peerpb.EnvelopeHeader{EntryId: l.ID + "/forged", Version: 1, Origin: l.ID}}}})
	forged := &peerpb.Command{Command: &peerpb.Command_Publication{Publication: &peerpb.Publication{Origin: l.ID, Body: body, Signature: ed25519.Sign(forger, body)}}}
	idx, err := apply(forged)
	if !errors.Is(err, replication.ErrRejected) {
		t.Fatalf("forged publication: %v, want rejected", err)
	}
	waitApplied(t, c, idx)
	sameEntries(t, c, 300)
}

// TestFollowerBehindALargeBacklog: a follower that was away while the
// others committed more than one message's worth of entries catches up from
// the log. raft sends it up to MaxAppendEntries entries at once whatever
// their size; the transport sends such a batch in parts.
func TestFollowerBehindALargeBacklog(t *testing.T) {
	rc := func() *raft.Config {
		c := testRaftConfig()
		c.SnapshotThreshold = 1 << 20 // no snapshot: the log must carry it
		return c
	}
	c := cluster(t, replicationtest.Options{Raft: rc, MaxMessage: 256 << 10})
	ctx := ctxT(t)
	l := leader(t, c)
	away := c.Follower(l)
	away.Stop()
	// 40 entries of 32 KiB: 1.25 MiB, five messages' worth.
	var last uint64
	for i := 0; i < 40; i++ {
		idx, err := c.Apply(ctx, l.Publication(fmt.Sprintf("%s/big%d", l.ID, i), 1, 32<<10))
		if err != nil {
			t.Fatal(err)
		}
		last = idx
	}
	restart(t, c, away)
	waitApplied(t, c, last)
	sameEntries(t, c, 40)
}

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
			if err := os.WriteFile(replication.OpenMarker(path), []byte("an-earlier-boot\n"), 0o600); err != nil {
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
			c := cluster(t, replicationtest.Options{Raft: small})
			ctx := ctxT(t)
			l := leader(t, c)
			publish := func(from, to int) uint64 {
				var last uint64
				for i := from; i < to; i++ {
					idx, err := c.Apply(ctx, l.Publication(fmt.Sprintf("%s/r%d", l.ID, i), 1, 0))
					if err != nil {
						t.Fatal(err)
					}
					last = idx
				}
				return last
			}
			last := publish(0, 60)
			f := c.Follower(l)
			waitApplied(t, c, last)
			// A snapshot on the member, then more log after it: the rebuild
			// needs both.
			if err := replication.Snapshot(f.Rep); err != nil {
				t.Fatal(err)
			}
			last = publish(60, 90)
			waitApplied(t, c, last)
			f.Stop()
			path := filepath.Join(f.Dir, "fsm.db")
			d.harm(t, path)

			restart(t, c, f)
			if got := replication.Rebuilt(f.Rep) != ""; got != d.rebuilt {
				t.Fatalf("rebuilt = %v (%q), want %v", got, replication.Rebuilt(f.Rep), d.rebuilt)
			}
			if d.rebuilt {
				if _, err := os.Stat(path + ".untrusted"); err != nil {
					t.Fatalf("the untrusted file was not kept aside: %v", err)
				}
			}
			// Replayed before raft ran: no leader was needed.
			if got := f.Rep.Applied(); got < f.StoppedApplied {
				t.Fatalf("applied %d right after start, want at least %d", got, f.StoppedApplied)
			}
			members, err := f.Rep.Members()
			if err != nil || len(members) != 3 {
				t.Fatalf("registry after the rebuild: %d members, %v", len(members), err)
			}

			last = publish(90, 91)
			waitApplied(t, c, last)
			sameEntries(t, c, 91)
			sameStateHash(t, c)
		})
	}
}

// sameStateHash waits until every running member's state hash is taken at
// the same index, and checks they are equal.
func sameStateHash(t *testing.T, c *replicationtest.Cluster) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms := c.Running()
		var idx []uint64
		var sums [][]byte
		for _, m := range ms {
			i, s, err := m.Rep.StateHash()
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
					t.Fatalf("%s and %s differ at index %d", ms[i].ID, ms[0].ID, idx[0])
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
