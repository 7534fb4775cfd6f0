package testnet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func startLocal(t *testing.T, n int) *Local {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := StartLocal(ctx, t.TempDir(), n, node.Options{PublishWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func conn(t *testing.T, ln *LocalNode) *grpc.ClientConn {
	t.Helper()
	c, err := ln.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func add(t *testing.T, ln *LocalNode, name string) *pb.CreateRecordResponse {
	t.Helper()
	resp, err := pb.NewRecordServiceClient(conn(t, ln)).CreateRecord(context.Background(), &pb.CreateRecordRequest{Record: &pb.Record{
		Marking: pb.Marking_MARKING_GREEN,
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: name},
		Detail:  &pb.Record_Designation{Designation: &pb.Designation{Program: "TEST"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.LogIndex == 0 {
		t.Fatalf("write on %s returned no log index", ln.Agency)
	}
	return resp
}

// shared returns "id@version" of every shared entry the node can read.
func shared(t *testing.T, ln *LocalNode) map[string]string {
	t.Helper()
	resp, err := pb.NewSharedServiceClient(conn(t, ln)).ListShared(context.Background(), &pb.ListSharedRequest{IncludeInactive: true, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range resp.Entries {
		out[e.Record.Id] = fmt.Sprintf("%s v%d", e.Record.Subject.Name, e.Record.Version)
	}
	return out
}

// waitBound bounds waitFor: it only bounds how long a failure takes to
// show, and a CI machine at load 15-30 on 2 cores has taken over 20 s to
// elect, catch up or apply what takes a second when idle.
const waitBound = 90 * time.Second

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitBound)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

func TestFiveAgenciesShareEverything(t *testing.T) {
	l := startLocal(t, 5)
	want := map[string]string{}
	for _, ln := range l.Nodes {
		r := add(t, ln, "Entity of "+ln.Agency)
		want[r.Record.Id] = ln.Agency
	}
	for _, ln := range l.Nodes {
		waitFor(t, ln.Agency+" reads the other four agencies' records", func() bool {
			got := shared(t, ln)
			for id, origin := range want {
				if _, ok := got[id]; (origin != ln.Agency) != ok {
					return false
				}
			}
			return len(got) == 4
		})
	}
}

// TestNewMemberGetsHistoryRemovedMemberGetsNothing: a member that joins later
// receives every earlier entry (by key grants, without a re-send, at their
// latest versions); a removed member receives nothing more.
func TestNewMemberGetsHistoryRemovedMemberGetsNothing(t *testing.T) {
	l := startLocal(t, 2)
	de, fr := l.Nodes[0], l.Nodes[1]
	a := add(t, de, "Alpha Trading")
	add(t, de, "Beta Shipping")
	add(t, fr, "Gamma Metals")
	amended := a.Record
	amended.Subject.Name = "Alpha Trading Ltd"
	if _, err := pb.NewRecordServiceClient(conn(t, de)).AmendRecord(context.Background(), &pb.AmendRecordRequest{Record: amended}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nl, err := l.Add(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the newcomer reads all earlier entries", func() bool {
		got := shared(t, nl)
		return len(got) == 3 && got[a.Record.Id] == "Alpha Trading Ltd v2"
	})

	// Remove NL (on the leader); later entries do not reach it.
	leader := de
	for _, ln := range l.Nodes {
		var st *pb.GetStatusResponse
		_ = ln.call(ctx, func(c pb.FederationServiceClient) (err error) {
			st, err = c.GetStatus(ctx, &pb.GetStatusRequest{})
			return err
		})
		if st.GetRole() == "leader" {
			leader = ln
		}
	}
	if err := l.RemoveApproved(ctx, leader, nl.Agency); err != nil {
		t.Fatal(err)
	}
	secret := add(t, de, "Delta Secret Holdings")
	waitFor(t, "FR reads the entry published after the removal", func() bool { _, ok := shared(t, fr)[secret.Record.Id]; return ok })
	if _, ok := shared(t, nl)[secret.Record.Id]; ok {
		t.Fatal("a removed member received a later entry")
	}
	nl.Stop()
	if hit := grep(t, nl.Dir, "Delta Secret Holdings"); hit != "" {
		t.Fatalf("the removed member's data holds the later entry in %s", hit)
	}
}

// grep returns the first file under dir whose raw bytes contain s.
func grep(t *testing.T, dir, s string) string {
	t.Helper()
	found := ""
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err == nil && bytes.Contains(data, []byte(s)) {
			found = path
		}
		return nil
	})
	return found
}

// TestWatchResumesWithoutGapOrDuplicate: a consumer reads part of the feed,
// disconnects, resumes from the last position, and ends with every entry once.
func TestWatchResumesWithoutGapOrDuplicate(t *testing.T) {
	l := startLocal(t, 2)
	de, fr := l.Nodes[0], l.Nodes[1]
	for i := 0; i < 10; i++ {
		add(t, de, fmt.Sprintf("Watched Entity %d", i))
	}
	watch := pb.NewSharedServiceClient(conn(t, fr))
	var seen []string
	var lastIndex uint64
	var lastPos uint32
	read := func(from uint64, pos uint32, n int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel() // the disconnect
		stream, err := watch.Watch(ctx, &pb.WatchRequest{FromIndex: from, FromPosition: pos})
		if err != nil {
			t.Fatal(err)
		}
		for len(seen) < n {
			resp, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, resp.Entry.Record.Subject.Name)
			lastIndex, lastPos = resp.Entry.LogIndex, resp.Entry.Position
		}
	}
	read(1, 0, 4)
	add(t, de, "Watched Entity 10") // written while the consumer is away
	read(lastIndex, lastPos+1, 11)
	got := map[string]int{}
	for _, s := range seen {
		got[s]++
	}
	for i := 0; i <= 10; i++ {
		if n := got[fmt.Sprintf("Watched Entity %d", i)]; n != 1 {
			t.Fatalf("entity %d seen %d times; feed: %v", i, n, seen)
		}
	}
}

// TestBackupRestoreRecover: an operator saves a backup of a node, loses the
// node's data, restores the backup and starts with --recover: the records,
// the received entries and the audit chain are back, and the node leads a
// one-member federation.
func TestBackupRestoreRecover(t *testing.T) {
	l := startLocal(t, 2)
	de, fr := l.Nodes[0], l.Nodes[1]
	fromDE := add(t, de, "Shared By Germany")
	own := add(t, fr, "Own French Record")
	waitFor(t, "FR received DE's entry", func() bool { _, ok := shared(t, fr)[fromDE.Record.Id]; return ok })

	backup := backupOf(t, fr)
	l.Close() // the whole federation is lost, and this node's disk
	wipe(t, fr.Member)
	if err := node.RestoreBackup(backup, fr.Dir, fr.Agency); err != nil {
		t.Fatal(err)
	}
	l.opts.Recover = true
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := l.Restart(ctx, fr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restored node leads", func() bool {
		var st *pb.GetStatusResponse
		_ = fr.call(ctx, func(c pb.FederationServiceClient) (err error) {
			st, err = c.GetStatus(ctx, &pb.GetStatusRequest{})
			return err
		})
		return st.GetRole() == "leader"
	})
	if _, ok := shared(t, fr)[fromDE.Record.Id]; !ok {
		t.Fatal("received entry lost in the restore")
	}
	got, err := pb.NewRecordServiceClient(conn(t, fr)).GetRecord(ctx, &pb.GetRecordRequest{Id: own.Record.Id})
	if err != nil || got.Record.Subject.Name != "Own French Record" {
		t.Fatalf("own record after restore: %v, %v", got, err)
	}
	v, err := pb.NewAuditServiceClient(conn(t, fr)).VerifyAuditLog(ctx, &pb.VerifyAuditLogRequest{})
	if err != nil || !v.Ok {
		t.Fatalf("audit chain after restore: %v %v", v, err)
	}
	// Writes work again: the one-member federation commits them.
	add(t, fr, "Written After Recovery")
}

// backupOf is a node's backup, as `watchfed snapshot save` writes it.
func backupOf(t *testing.T, ln *LocalNode) *bytes.Buffer {
	t.Helper()
	stream, err := pb.NewFederationServiceClient(conn(t, ln)).SaveSnapshot(context.Background(), &pb.SaveSnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("backup of %s: %v", ln.Agency, err)
		}
		backup.Write(resp.Chunk)
	}
	if backup.Len() == 0 {
		t.Fatalf("empty backup of %s", ln.Agency)
	}
	return &backup
}

// TestReadAtLeastAsFreshAsAWrite: a write on one member returns its log
// index; a read on another member with that min_index sees the write at
// once, without polling. An index the federation has not reached yet ends
// in Unavailable at the caller's deadline, saying how far the node is.
func TestReadAtLeastAsFreshAsAWrite(t *testing.T) {
	l := startLocal(t, 3)
	de, nl := l.Nodes[0], l.Nodes[2]
	c := pb.NewSharedServiceClient(conn(t, nl))
	for i := range 5 {
		w := add(t, de, fmt.Sprintf("Fresh Read %d", i))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		got, err := c.GetShared(ctx, &pb.GetSharedRequest{Id: w.Record.Id, MinIndex: w.LogIndex})
		cancel()
		if err != nil {
			t.Fatalf("read at index %d on NL: %v", w.LogIndex, err)
		}
		if got.Entry.LogIndex != w.LogIndex || got.Entry.Record.Subject.Name != w.Record.Subject.Name {
			t.Fatalf("read at index %d: %v", w.LogIndex, got.Entry)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // the node answers "not yet" a tenth of it before: room for the answer on a loaded machine
	defer cancel()
	_, err := c.ListShared(ctx, &pb.ListSharedRequest{MinIndex: 1 << 40})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "not yet") {
		t.Fatalf("read at an index not reached: %v, want Unavailable saying how far the node is", err)
	}
}

// TestCatchUpOpensEpochKeyInSameBatch: a member that was down while an
// origin published its first entries takes them in as one batch after it
// restarts; the epoch key arriving in the first of them must open the later
// ones too (found by the Jepsen run: entries silently skipped after kill -9).
func TestCatchUpOpensEpochKeyInSameBatch(t *testing.T) {
	l := startLocal(t, 3)
	late := l.Nodes[2]
	if err := late.Stop(); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for i := 0; i < 5; i++ {
		want[add(t, l.Nodes[0], fmt.Sprintf("Batch Catchup %d", i)).Record.Id] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := l.Restart(ctx, late); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restarted member holds all five entries", func() bool {
		got := shared(t, late)
		for id := range want {
			if _, ok := got[id]; !ok {
				return false
			}
		}
		return true
	})
}

// TestCorruptFileRefusedAtStart: a node whose record store or raft log (its
// bbolt meta file here; a damaged entry: replication/logstore) was damaged
// on disk refuses to start, naming the file, rather than serving from it.
// (The replicated state is rebuilt instead: see below.)
func TestCorruptFileRefusedAtStart(t *testing.T) {
	for _, file := range []string{node.StoreFile, filepath.Join("raft", "wal", "wal-meta.db")} {
		t.Run(file, func(t *testing.T) {
			l := startLocal(t, 1)
			ln := l.Nodes[0]
			for i := 0; i < 20; i++ {
				add(t, ln, fmt.Sprintf("Corruption Target %d", i))
			}
			if err := ln.Stop(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(ln.Dir, file)
			damageMetaPages(t, path)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := l.Restart(ctx, ln)
			if err == nil {
				t.Fatalf("node started on a corrupt %s", file)
			}
			if !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not say which file is corrupt: %v", err)
			}
		})
	}
}

// damageMetaPages overwrites both bbolt meta pages of path.
func damageMetaPages(t *testing.T, path string) {
	t.Helper()
	if err := tearMetaPages(path); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedReplicatedStateRebuilt: the replicated state (fsm.db) is
// derived from the raft log, so a damaged one is rebuilt from the snapshot
// and log at start; the member then serves the same state as its partner.
func TestDamagedReplicatedStateRebuilt(t *testing.T) {
	l := startLocal(t, 2)
	a, b := l.Nodes[0], l.Nodes[1]
	for i := 0; i < 20; i++ {
		add(t, a, fmt.Sprintf("Rebuild Target %d", i))
	}
	waitFor(t, "the partner holds the 20 entries", func() bool { return len(shared(t, b)) == 20 })
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	damageMetaPages(t, filepath.Join(b.Dir, "raft", "fsm.db"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := l.Restart(ctx, b); err != nil {
		t.Fatalf("restart on a damaged fsm.db: %v", err)
	}
	add(t, a, "Rebuild Target After")
	waitFor(t, "the partner holds all 21 entries", func() bool { return len(shared(t, b)) == 21 })
	waitFor(t, "both members hold the same state at the same index", func() bool {
		var hs []*pb.GetStatusResponse
		for _, ln := range []*LocalNode{a, b} {
			st, err := pb.NewFederationServiceClient(conn(t, ln)).GetStatus(ctx, &pb.GetStatusRequest{WithStateHash: true})
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, st)
		}
		if hs[0].StateHashIndex != hs[1].StateHashIndex {
			return false
		}
		if !bytes.Equal(hs[0].StateHash, hs[1].StateHash) {
			t.Fatalf("state at index %d differs after the rebuild", hs[0].StateHashIndex)
		}
		return true
	})
}

// leaderOtherThan returns a leader other than avoid, first asking avoid to
// hand the leadership to to if avoid leads (a test whose avoid must act as
// a follower). Under load the leadership may move again after a transfer
// (an election timeout missed), to a third member or back to avoid: what
// the caller needs is a leader that is not avoid, so that is what it waits
// for, asking avoid again whenever it leads.
func leaderOtherThan(ctx context.Context, t *testing.T, l *Local, avoid, to *LocalNode) *LocalNode {
	t.Helper()
	var lead *LocalNode
	waitFor(t, "a leader other than "+avoid.Agency, func() bool {
		lead = nil
		for _, ln := range l.Nodes {
			if role(ctx, ln) == "leader" {
				lead = ln
				break
			}
		}
		if lead != avoid {
			return lead != nil
		}
		err := avoid.call(ctx, func(c pb.FederationServiceClient) error {
			_, err := c.TransferLeadership(ctx, &pb.TransferLeadershipRequest{To: to.Agency})
			return err
		})
		if err != nil {
			t.Logf("leadership transfer from %s to %s: %v (asked again)", avoid.Agency, to.Agency, err)
		}
		return false
	})
	return lead
}
