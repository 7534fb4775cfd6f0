package testnet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/watchfed/watchfed/replication"
)

// TestRaftSnapshotRefusedForWantOfRoom: a follower is stopped while its
// partners write past what the leader keeps of its log (TrailingLogs), so
// that it can only catch up by a raft snapshot, and comes back with its
// raft directory's disk nearly full: less free than twice the snapshot
// with 64 MiB to spare (replication.SnapshotRoom), though more than the
// snapshot itself. It keeps running and answering, logs the refusal
// naming the snapshot's size and its raft directory, and writes no
// snapshot. Once the space is given back the leader's next offer (raft
// backs off between offers, so the refusals are few) is taken, and the
// follower holds the leader's state at the leader's index.
func TestRaftSnapshotRefusedForWantOfRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a federation of three processes and fills 10,000 entries of its log")
	}
	if err := TmpfsAvailable(t.TempDir()); err != nil {
		t.Skipf("a nearly full disk needs a per-node tmpfs: %v", err)
	}
	begin := time.Now()
	since := func() time.Duration { return time.Since(begin).Round(time.Millisecond) }
	cur := watchfedAt(t, "")
	// The raft log on a disk of its own: the disk filled is the one of
	// the raft directory (fsm.db, the snapshots), which the check measures.
	nt, conns := startNet(t, Options{DiskBytes: 192 << 20, RaftLogBytes: 64 << 20,
		NodeConfig: "raft_snapshot_threshold: 256\nraft_snapshot_interval: 200ms\n"}, cur, cur, cur)
	ctx := context.Background()
	st, err := statusOf(ctx, conns[0], false)
	if err != nil {
		t.Fatal(err)
	}
	lead := slices.IndexFunc(nt.Members, func(m *Member) bool { return m.Agency == st.Leader })
	f := (lead + 1) % len(nt.Members)
	m := nt.Members[f]
	others := []int{lead, 3 - lead - f}
	createRecord(t, conns[lead], "Room Before The Stop")
	waitSameState(t, conns, lead, f)
	st, err = statusOf(ctx, conns[f], false)
	if err != nil {
		t.Fatal(err)
	}
	if err := nt.Stop(m, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	behind := st.AppliedIndex
	t.Logf("federation formed, %s stopped at index %d, at %v", m.Agency, behind, since())

	// Records it lacks, then enough entries that the leader's log no
	// longer holds what it lacks.
	for i := range 10 {
		createRecord(t, conns[others[i%2]], fmt.Sprintf("Room While Stopped %d", i))
	}
	fillUntilCompacted(t, []*grpc.ClientConn{conns[others[0]], conns[others[1]]}, behind+replication.DefaultRaftConfig().TrailingLogs)
	st, err = statusOf(ctx, conns[lead], false)
	if err != nil || st.Role != "leader" {
		t.Fatalf("%s after the fill: %v %v (the test wants the leader unchanged)", nt.Members[lead].Agency, err, st)
	}
	size := snapshotSize(t, nt.Members[lead])
	t.Logf("leader's log compacted past %d (snapshot at %d, %d bytes) at %v", behind, st.SnapshotIndex, size, since())

	// Room for the snapshot and the reserve, not for the snapshot twice
	// over and the reserve.
	free := int64(64<<20) + size/2
	if err := nt.FillDiskLeaving(m, free); err != nil {
		t.Fatal(err)
	}
	raftDir := filepath.Join(m.Dir, "raft")
	snapsBefore := snapshotDirs(t, m)
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = nt.Restart(rctx, m)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	t.Logf("%s restarted with %d bytes free in %s at %v", m.Agency, diskFree(t, raftDir), raftDir, since())

	var refusals []refusal
	waitUntil(t, time.Minute, m.Agency+" refuses the snapshot", func() (bool, string) {
		if refusals = refusalsLogged(t, m); len(refusals) > 0 {
			return true, ""
		}
		if fst, err := statusOf(ctx, conns[f], false); err == nil && fst.AppliedIndex >= st.SnapshotIndex {
			t.Fatalf("%s took a snapshot (applied %d) with %d bytes free: twice %d bytes and 64 MiB do not fit", m.Agency, fst.AppliedIndex, free, size)
		}
		log, _ := os.ReadFile(m.LogFile())
		return false, tail(string(log), 3)
	})
	for _, r := range refusals {
		if r.Size <= 0 || !strings.Contains(r.Err, raftDir) || !strings.Contains(r.Err, fmt.Sprintf("a snapshot of %d bytes", r.Size)) {
			t.Fatalf("refusal %+v: want the snapshot's size and %s named", r, raftDir)
		}
	}
	t.Logf("%s: %s (%d bytes)", m.Agency, refusals[0].Err, refusals[0].Size)
	// Still serving, behind, with no snapshot written.
	if !m.Running() {
		t.Fatalf("%s exited after refusing a snapshot", m.Agency)
	}
	fst, err := statusOf(ctx, conns[f], false)
	if err != nil {
		t.Fatalf("%s does not answer after refusing a snapshot: %v", m.Agency, err)
	}
	if h, err := healthpb.NewHealthClient(conns[f]).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("%s's health after refusing a snapshot: %v %v", m.Agency, h, err)
	}
	if fst.AppliedIndex >= st.SnapshotIndex || fst.DiskFull {
		t.Fatalf("%s refused the snapshot yet stands at %d (the snapshot at %d), disk full %v (%s)", m.Agency, fst.AppliedIndex, st.SnapshotIndex, fst.DiskFull, fst.DiskFullPath)
	}
	if got := snapshotDirs(t, m); !slices.Equal(got, snapsBefore) {
		t.Fatalf("%s's snapshots were %v before, %v after refusing", m.Agency, snapsBefore, got)
	}

	// Space given back: the leader offers it again (raft backs off, up
	// to about 10 s between offers) and it is taken.
	if err := nt.FreeDisk(m); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	waitUntil(t, time.Minute, m.Agency+" takes a snapshot once space is back", func() (bool, string) {
		fst, err := statusOf(ctx, conns[f], false)
		if err != nil {
			return false, err.Error()
		}
		return fst.AppliedIndex >= st.SnapshotIndex, fmt.Sprintf("applied %d, snapshot at %d", fst.AppliedIndex, st.SnapshotIndex)
	})
	n := len(refusalsLogged(t, m))
	t.Logf("%s caught up %v after the space was given back (%d refusals in %v), at %v", m.Agency,
		time.Since(freed).Round(time.Millisecond), n, time.Since(restarted).Round(time.Millisecond), since())
	if n > 20 {
		t.Fatalf("%d refusals logged in %v: the leader does not back off", n, time.Since(restarted).Round(time.Millisecond))
	}
	createRecord(t, conns[lead], "Room After The Snapshot")
	waitSameState(t, conns, lead, f)
	if !m.Running() {
		t.Fatalf("%s exited", m.Agency)
	}
	log, err := os.ReadFile(m.LogFile())
	if err != nil {
		t.Fatal(err)
	}
	if i := strings.Index(string(log), "panic"); i >= 0 {
		t.Fatalf("%s's log holds a panic:\n%s", m.Agency, log[i:min(len(log), i+2000)])
	}
	// The leader was told why, not a broken stream.
	// The leader may be a partner's: it learns no path or free space.
	told := fmt.Sprintf("ResourceExhausted desc = raft: snapshot of %d bytes refused: no room for it on this member", refusals[0].Size)
	ll, err := os.ReadFile(nt.Members[lead].LogFile())
	if err != nil || !strings.Contains(string(ll), told) {
		t.Fatalf("the leader's log does not say %q (%v)", told, err)
	}
	if strings.Contains(string(ll), filepath.Join(m.Dir, "raft")) {
		t.Fatalf("the leader's log names %s's raft directory", m.Agency)
	}
	t.Logf("one state at %v", since())
}

// refusal is a node's log line "refused a raft snapshot".
type refusal struct {
	Msg  string `json:"msg"`
	Size int64  `json:"size"`
	Err  string `json:"err"`
}

// refusalsLogged are the snapshot refusals in m's log.
func refusalsLogged(t *testing.T, m *Member) []refusal {
	t.Helper()
	f, err := os.Open(m.LogFile())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []refusal
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r refusal
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Msg == "refused a raft snapshot" {
			out = append(out, r)
		}
	}
	return out
}

// snapshotSize is the declared size of m's newest raft snapshot.
func snapshotSize(t *testing.T, m *Member) int64 {
	t.Helper()
	snap := newestSnapshot(t, m)
	if snap == "" {
		t.Fatalf("%s has no raft snapshot", m.Agency)
	}
	b, err := os.ReadFile(filepath.Join(snap, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct{ Size int64 }
	if err := json.Unmarshal(b, &meta); err != nil || meta.Size <= 0 {
		t.Fatalf("%s: size %d (%v)", snap, meta.Size, err)
	}
	return meta.Size
}

// snapshotDirs lists m's raft/snapshots, whole or partial.
func snapshotDirs(t *testing.T, m *Member) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(m.Dir, "raft", "snapshots"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func diskFree(t *testing.T, dir string) uint64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}
