package testnet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
)

// protocol1Commit is the commit of main that introduced protocol versions
// and supports protocol 1 only: the binary a rolling upgrade starts from.
const protocol1Commit = "523d57c2f401b008af5f03a2386f723cbbe2e153"

var (
	buildMu   sync.Mutex
	binaries  = map[string]string{} // commit ("" for this tree) → binary
	builtDirs []string              // removed after the tests
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range builtDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// watchfedAt builds the watchfed binary of a commit of this repository
// ("" for the tree under test), once per test run. A commit's binary never
// changes, so it is kept in the temporary directory under the commit's name
// for later runs. A commit that is not in the local history (a shallow
// clone, an export without .git) skips the test.
func watchfedAt(t *testing.T, commit string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := binaries[commit]; ok {
		return bin
	}
	var dir, src string
	if commit == "" {
		var err error
		if dir, err = os.MkdirTemp("", "watchfed-bin"); err != nil {
			t.Fatal(err)
		}
		builtDirs = append(builtDirs, dir)
		src = ".."
	} else {
		dir = filepath.Join(os.TempDir(), "watchfed-upgrade-"+commit)
		if bin := filepath.Join(dir, "watchfed"); fileExists(bin) {
			binaries[commit] = bin
			return bin
		}
		root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
		if err != nil {
			t.Skipf("the rolling upgrade builds watchfed from commit %s and needs git history: %v", commit, err)
		}
		top := strings.TrimSpace(string(root))
		if err := exec.Command("git", "-C", top, "cat-file", "-e", commit+"^{commit}").Run(); err != nil {
			t.Skipf("commit %s (protocol 1) is not in this clone's history (shallow clone?): the rolling upgrade from it is skipped", commit)
		}
		// The same source path every time: the compiled packages of the
		// commit stay valid in the build cache.
		src = filepath.Join(dir, "src")
		if err := os.RemoveAll(src); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(src, 0o700); err != nil {
			t.Fatal(err)
		}
		tarball := filepath.Join(dir, "src.tar")
		if out, err := exec.Command("git", "-C", top, "archive", "--format=tar", "-o", tarball, commit).CombinedOutput(); err != nil {
			t.Fatalf("git archive %s: %v\n%s", commit, err, out)
		}
		if out, err := exec.Command("tar", "-xf", tarball, "-C", src).CombinedOutput(); err != nil {
			t.Fatalf("extract %s: %v\n%s", commit, err, out)
		}
	}
	bin := filepath.Join(dir, "watchfed")
	// Built under another name and renamed: a build cut short leaves no
	// binary a later run would take for whole.
	build := exec.Command("go", "build", "-o", bin+".partial", "./cmd/watchfed")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build watchfed at %q: %v\n%s", commit, err, out)
	}
	if err := os.Rename(bin+".partial", bin); err != nil {
		t.Fatal(err)
	}
	binaries[commit] = bin
	return bin
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// upgradeNet starts a federation whose member i runs bins[i].
func upgradeNet(t *testing.T, bins ...string) (*Net, []*grpc.ClientConn) {
	t.Helper()
	return startNet(t, Options{}, bins...)
}

// startNet starts a federation of o whose member i runs bins[i].
func startNet(t *testing.T, o Options, bins ...string) (*Net, []*grpc.ClientConn) {
	t.Helper()
	o.Nodes, o.Dir, o.Binary = len(bins), t.TempDir(), bins[0]
	nt, err := Prepare(o)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range nt.Members {
		m.Binary = bins[i]
	}
	t.Cleanup(func() {
		if err := nt.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := nt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conns := make([]*grpc.ClientConn, len(nt.Members))
	for i, m := range nt.Members {
		if conns[i], err = m.Dial(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conns[i].Close() })
	}
	return nt, conns
}

func statusOf(ctx context.Context, conn *grpc.ClientConn, hash bool) (*pb.GetStatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return pb.NewFederationServiceClient(conn).GetStatus(ctx, &pb.GetStatusRequest{WithStateHash: hash})
}

// waitUntil polls cond until it holds or the deadline passes; last says what
// was seen, for the failure.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (last: %s)", what, within, last)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
	}
}

// ack is an acknowledged write: its record version and the log index of its
// shared entry.
type ack struct {
	origin, id string
	version    uint64
	index      uint64
}

// writers create and amend records on every member until stopped, keeping
// each write acknowledged with a log index.
type writers struct {
	mu   sync.Mutex
	acks []ack
	stop context.CancelFunc
	wg   sync.WaitGroup
}

func startWriters(nt *Net, conns []*grpc.ClientConn) *writers {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writers{stop: cancel}
	for i, m := range nt.Members {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			rc := pb.NewRecordServiceClient(conns[i])
			var id string
			var version uint64
			pace := time.NewTicker(25 * time.Millisecond) // a steady flow, not a flood
			defer pace.Stop()
			for n := 0; ctx.Err() == nil; n++ {
				select {
				case <-ctx.Done():
					return
				case <-pace.C:
				}
				rec := &pb.Record{
					Id: id, Marking: pb.Marking_MARKING_GREEN, ChangeNote: fmt.Sprintf("upgrade %s %d", m.Agency, n),
					Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: fmt.Sprintf("Upgrade Trading %s %d", m.Agency, n), Countries: []string{"RU"}},
					Detail:  &pb.Record_Designation{Designation: &pb.Designation{Program: "UPGRADE"}},
				}
				wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
				var got *pb.Record
				var idx uint64
				var err error
				if id == "" || n%3 == 0 {
					rec.Id = ""
					var resp *pb.CreateRecordResponse
					resp, err = rc.CreateRecord(wctx, &pb.CreateRecordRequest{Record: rec})
					got, idx = resp.GetRecord(), resp.GetLogIndex()
				} else {
					var resp *pb.AmendRecordResponse
					resp, err = rc.AmendRecord(wctx, &pb.AmendRecordRequest{Record: rec, ExpectedVersion: version})
					got, idx = resp.GetRecord(), resp.GetLogIndex()
				}
				wcancel()
				if err != nil {
					id = "" // the outcome is unknown (a node restarting): start a new record
					select {
					case <-ctx.Done():
					case <-time.After(200 * time.Millisecond): // back off while the node restarts
					}
					continue
				}
				id, version = got.Id, got.Version
				if idx > 0 {
					w.mu.Lock()
					w.acks = append(w.acks, ack{origin: m.Agency, id: got.Id, version: got.Version, index: idx})
					w.mu.Unlock()
				}
			}
		}()
	}
	return w
}

func (w *writers) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

// waitWrites waits until n more writes were acknowledged.
func (w *writers) waitWrites(t *testing.T, n int) {
	t.Helper()
	want := w.count() + n
	waitUntil(t, 60*time.Second, fmt.Sprintf("%d more acknowledged writes", n), func() (bool, string) {
		c := w.count()
		return c >= want, fmt.Sprint(c, " of ", want)
	})
}

// TestRollingUpgrade: a federation of three agencies running the protocol 1
// binary (built from git) is upgraded to this tree's binary one node at a
// time, the leader included, with writes flowing on every member. While any
// member runs the old binary the federation stays on protocol 1; once all
// announced protocol 2 the leader activates it, at one index on every node.
// Nothing acknowledged is lost, no node diverges, and a publication only
// protocol 2 refuses (an entry id of another agency) is refused everywhere.
func TestRollingUpgrade(t *testing.T) {
	begin := time.Now()
	old, cur := watchfedAt(t, protocol1Commit), watchfedAt(t, "")
	t.Logf("binaries built in %v", time.Since(begin).Round(time.Millisecond))
	nt, conns := upgradeNet(t, old, old, old)
	t.Logf("federation on the protocol 1 binary formed at %v", time.Since(begin).Round(time.Millisecond))
	ctx := context.Background()
	for i, m := range nt.Members {
		st, err := statusOf(ctx, conns[i], false)
		if err != nil || st.Protocol != 1 || !slices.Equal(st.ProtocolsSupported, []uint32{1}) {
			t.Fatalf("%s on the old binary: %v, status %v", m.Agency, err, st)
		}
	}
	w := startWriters(nt, conns)
	defer func() { w.stop(); w.wg.Wait() }()
	w.waitWrites(t, 6)

	// The leader last but one: it is upgraded while a follower already runs
	// the new binary, and the last follower keeps the federation mixed.
	order := slices.Clone(nt.Members)
	if st, err := statusOf(ctx, conns[0], false); err == nil {
		slices.SortStableFunc(order, func(a, b *Member) int {
			if a.Agency == st.Leader {
				return -1
			}
			if b.Agency == st.Leader {
				return 1
			}
			return 0
		})
		order[0], order[1] = order[1], order[0]
	}
	for n, m := range order {
		i := slices.Index(nt.Members, m)
		start := time.Now()
		if err := nt.Stop(m, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		m.Binary = cur
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := nt.Restart(rctx, m)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		// Caught up: applied what the others had committed when it came back.
		var target uint64
		for j := range nt.Members {
			if st, err := statusOf(ctx, conns[j], false); j != i && err == nil {
				target = max(target, st.CommitIndex)
			}
		}
		waitUntil(t, time.Minute, m.Agency+" caught up after its upgrade", func() (bool, string) {
			st, err := statusOf(ctx, conns[i], false)
			return err == nil && st.AppliedIndex >= target && st.HaltedIndex == 0 && len(st.ProtocolsSupported) == len(replication.SupportedProtocols()),
				fmt.Sprintf("%v %v", err, st)
		})
		t.Logf("%s upgraded and caught up (index %d) in %v", m.Agency, target, time.Since(start).Round(time.Millisecond))
		migrated(t, m)
		w.waitWrites(t, 3)
		if n < len(order)-1 {
			announced(t, m, supportedJSON())
			for j := range nt.Members {
				if st, err := statusOf(ctx, conns[j], false); err == nil && st.Protocol != 1 {
					t.Fatalf("%s is on protocol %d while a member runs the protocol 1 binary", nt.Members[j].Agency, st.Protocol)
				}
			}
		}
	}

	// Every member announced 2: the leader activates it.
	activeEverywhere(t, nt, conns, newestProtocol())
	w.waitWrites(t, 6)

	refusedEverywhere(t, nt, conns)

	w.stop()
	w.wg.Wait()
	w.mu.Lock()
	acks := slices.Clone(w.acks)
	w.mu.Unlock()
	t.Logf("%d writes acknowledged across the upgrade, at %v", len(acks), time.Since(begin).Round(time.Millisecond))

	// One state at one index, the protocol switched at one index.
	var final []*pb.GetStatusResponse
	waitUntil(t, time.Minute, "every node at the same applied index and state hash", func() (bool, string) {
		final = final[:0]
		var seen []string
		for j := range nt.Members {
			st, err := statusOf(ctx, conns[j], true)
			if err != nil {
				return false, err.Error()
			}
			final = append(final, st)
			seen = append(seen, fmt.Sprintf("%s %d/%d %x", st.Agency, st.StateHashIndex, st.CommitIndex, st.StateHash[:min(4, len(st.StateHash))]))
		}
		for _, st := range final[1:] {
			if st.StateHashIndex != final[0].StateHashIndex || !bytes.Equal(st.StateHash, final[0].StateHash) {
				return false, strings.Join(seen, "; ")
			}
		}
		return true, ""
	})
	for _, st := range final {
		if st.Protocol != newestProtocol() || st.ProtocolSinceIndex == 0 || st.ProtocolSinceIndex != final[0].ProtocolSinceIndex || st.HaltedIndex != 0 {
			t.Fatalf("%s: protocol %d since %d (halted %d %q); %s: protocol %d since %d", st.Agency, st.Protocol, st.ProtocolSinceIndex,
				st.HaltedIndex, st.HaltedReason, final[0].Agency, final[0].Protocol, final[0].ProtocolSinceIndex)
		}
	}
	t.Logf("protocol %d since index %d on every node; state %x at index %d", final[0].Protocol, final[0].ProtocolSinceIndex, final[0].StateHash[:8], final[0].StateHashIndex)

	t.Logf("states compared at %v", time.Since(begin).Round(time.Millisecond))
	defer func() { t.Logf("done at %v", time.Since(begin).Round(time.Millisecond)) }()
	defer downgradeRefused(t, nt, conns, old, cur)
	// Every acknowledged write is on its origin and every partner.
	var top uint64
	for _, a := range acks {
		top = max(top, a.index)
	}
	for j, m := range nt.Members {
		held := map[string]uint64{}
		token := ""
		for {
			lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			resp, err := pb.NewSharedServiceClient(conns[j]).ListShared(lctx, &pb.ListSharedRequest{IncludeInactive: true, MinIndex: top, PageSize: 1000, PageToken: token})
			cancel()
			if err != nil {
				t.Fatalf("%s shared: %v", m.Agency, err)
			}
			for _, e := range resp.Entries {
				held[e.Record.Id] = max(held[e.Record.Id], e.Record.Version)
			}
			if token = resp.NextPageToken; token == "" {
				break
			}
		}
		for _, a := range acks {
			if a.origin == m.Agency {
				rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				r, err := pb.NewRecordServiceClient(conns[j]).GetRecord(rctx, &pb.GetRecordRequest{Id: a.id})
				cancel()
				if err != nil || r.GetRecord().GetVersion() < a.version {
					t.Errorf("%s lacks its own acknowledged %s v%d: %v", m.Agency, a.id, a.version, err)
				}
				continue
			}
			if held[a.id] < a.version {
				t.Errorf("%s lacks acknowledged %s v%d (index %d) of %s: holds v%d", m.Agency, a.id, a.version, a.index, a.origin, held[a.id])
			}
		}
	}
}

// downgradeRefused puts a follower back on the protocol 1 binary. That
// binary reads node.db and fsm.db of format 1 (their values carry checksums
// since) and keeps its raft log in a bbolt raft.db (format 1), which the
// upgrade moved to raft-wal (format 2): it refuses to start, naming the file
// and the version, rather than misread them. (How a binary halts at an entry it cannot apply is tested in
// replication: TestProtocolHaltAndResume.) Back on the new binary, the node
// applies what the others committed meanwhile, to the same state.
func downgradeRefused(t *testing.T, nt *Net, conns []*grpc.ClientConn, old, cur string) {
	t.Helper()
	if t.Failed() {
		return
	}
	ctx := context.Background()
	st, err := statusOf(ctx, conns[0], false)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(nt.Members, func(m *Member) bool { return m.Agency != st.Leader })
	j := slices.IndexFunc(nt.Members, func(m *Member) bool { return m.Agency == st.Leader })
	m := nt.Members[i]
	restartOn := func(bin string) error {
		m.Binary = bin
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return nt.Restart(rctx, m)
	}
	if err := nt.Stop(m, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	err = restartOn(old)
	// node.db (whose values carry checksums since) is the first file it
	// opens; raft.db would refuse it next.
	want := filepath.Join(m.Dir, "node.db") + ": format version 2; this binary reads version 1"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("%s on the protocol 1 binary after its files moved on: %v; want a refusal saying %q", m.Agency, err, want)
	}
	t.Logf("%s on the protocol 1 binary: refused to start: %s", m.Agency, want)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	w, err := pb.NewRecordServiceClient(conns[j]).CreateRecord(wctx, &pb.CreateRecordRequest{Record: &pb.Record{
		Marking: pb.Marking_MARKING_GREEN, Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: "Written While Down", Countries: []string{"RU"}},
		Detail: &pb.Record_Designation{Designation: &pb.Designation{Program: "UPGRADE"}}}})
	cancel()
	if err != nil || w.LogIndex == 0 {
		t.Fatalf("write while %s is down: %v %v", m.Agency, err, w)
	}
	if err := restartOn(cur); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Minute, m.Agency+" back on the new binary, at the others' state", func() (bool, string) {
		a, err := statusOf(ctx, conns[i], true)
		b, err2 := statusOf(ctx, conns[j], true)
		if err != nil || err2 != nil {
			return false, fmt.Sprint(err, err2)
		}
		return a.HaltedIndex == 0 && a.StateHashIndex >= w.LogIndex && a.StateHashIndex == b.StateHashIndex && bytes.Equal(a.StateHash, b.StateHash),
			fmt.Sprintf("%s halted %d at %d %x; %s at %d %x", a.Agency, a.HaltedIndex, a.StateHashIndex, a.StateHash, b.Agency, b.StateHashIndex, b.StateHash)
	})
}

// announced waits until m's node logged its announcement of versions (as
// JSON, "[1,2]").
// supportedJSON is this binary's protocol versions as its log writes them.
func supportedJSON() string {
	b, _ := json.Marshal(replication.SupportedProtocols())
	return string(b)
}

// newestProtocol is the highest protocol this binary supports with every
// version below it: the one the leader activates once every member runs it.
func newestProtocol() uint32 {
	var top uint32 = 1
	for _, v := range replication.SupportedProtocols() {
		if replication.Contiguous(replication.SupportedProtocols(), 1, v) {
			top = max(top, v)
		}
	}
	return top
}

func announced(t *testing.T, m *Member, versions string) {
	t.Helper()
	want := `"msg":"announced the protocol versions of this binary","versions":` + versions
	waitUntil(t, 90*time.Second, m.Agency+" announced "+versions, func() (bool, string) {
		data, _ := os.ReadFile(filepath.Join(m.Dir, "node.log"))
		var seen []string
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, "protocol") {
				seen = append(seen, l)
			}
		}
		return bytes.Contains(data, []byte(want)), "node.log: " + strings.Join(seen, "\n")
	})
}

// activeEverywhere waits until every member's node is on protocol want.
func activeEverywhere(t *testing.T, nt *Net, conns []*grpc.ClientConn, want uint32) {
	t.Helper()
	waitUntil(t, 90*time.Second, fmt.Sprintf("protocol %d active on every node", want), func() (bool, string) {
		var seen []string
		ok := true
		for j := range nt.Members {
			st, err := statusOf(context.Background(), conns[j], false)
			seen = append(seen, fmt.Sprintf("%s: %v %d@%d", nt.Members[j].Agency, err, st.GetProtocol(), st.GetProtocolSinceIndex()))
			ok = ok && err == nil && st.Protocol == want
		}
		return ok, strings.Join(seen, "; ")
	})
}

// refusedEverywhere has the leader's agency publish, signed with its own key,
// an entry under another member's agency id: protocol 2 refuses it on every
// node (the leader's FSM answers for all: they apply the same entry the
// same, which the state hash comparison after confirms).
func refusedEverywhere(t *testing.T, nt *Net, conns []*grpc.ClientConn) {
	t.Helper()
	ctx := context.Background()
	for attempt := 0; ; attempt++ {
		st, err := statusOf(ctx, conns[0], false)
		if err != nil {
			t.Fatal(err)
		}
		var leader, other *Member
		for _, m := range nt.Members {
			if m.Agency == st.Leader {
				leader = m
			} else {
				other = m
			}
		}
		if leader == nil {
			t.Fatalf("no leader known: %v", st)
		}
		data, err := os.ReadFile(filepath.Join(leader.Dir, "keys.pem"))
		if err != nil {
			t.Fatal(err)
		}
		keys, err := seal.UnmarshalKeys(data)
		if err != nil {
			t.Fatal(err)
		}
		forged := other.Agency + "/" + ulid.Make().String()
		body, _ := proto.Marshal(&peerpb.PublicationBody{Origin: leader.Agency, Envelopes: []*peerpb.Envelope{{
			Header: &peerpb.EnvelopeHeader{EntryId: forged, Version: 1, Origin: leader.Agency, Marking: pb.Marking_MARKING_GREEN}}}})
		cmd, _ := proto.Marshal(&peerpb.Command{Command: &peerpb.Command_Publication{Publication: &peerpb.Publication{
			Origin: leader.Agency, Body: body, Signature: ed25519.Sign(keys.Signing, body)}}})
		tlsCfg, err := pki.Files{CACert: filepath.Join(leader.Dir, "certs", "ca.pem"), Cert: filepath.Join(leader.Dir, "certs", "node.pem"),
			Key: filepath.Join(leader.Dir, "certs", "node-key.pem")}.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		conn, err := grpc.NewClient(leader.Addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
		if err != nil {
			t.Fatal(err)
		}
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = peerpb.NewPeerServiceClient(conn).Forward(fctx, &peerpb.ForwardRequest{Command: cmd})
		cancel()
		conn.Close()
		if status.Code(err) == codes.Unavailable && attempt < 5 {
			continue // leadership moved meanwhile
		}
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "an entry of "+other.Agency+" published by "+leader.Agency) {
			t.Fatalf("entry %s published by %s under protocol 2: %v, want refused", forged, leader.Agency, err)
		}
		t.Logf("refused: %v", status.Convert(err).Message())
		return
	}
}

// TestMixedVersionsStayOnProtocol1: the founder runs the protocol 1
// binary, the two members that join it run this tree's and announce
// protocol 2, and one of them leads: it does not activate protocol 2, and
// nothing stops applying.
func TestMixedVersionsStayOnProtocol1(t *testing.T) {
	old, cur := watchfedAt(t, protocol1Commit), watchfedAt(t, "")
	nt, conns := upgradeNet(t, old, cur, cur)
	announced(t, nt.Members[0], "[1]")
	for _, m := range nt.Members[1:] {
		announced(t, m, supportedJSON())
	}
	ctx := context.Background()
	newer := nt.Members[1].Agency
	waitUntil(t, 90*time.Second, newer+" leads", func() (bool, string) {
		st, err := statusOf(ctx, conns[0], false)
		if err != nil {
			return false, err.Error()
		}
		if st.Leader == newer {
			return true, ""
		}
		for i, m := range nt.Members {
			if m.Agency == st.Leader {
				tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err = pb.NewFederationServiceClient(conns[i]).TransferLeadership(tctx, &pb.TransferLeadershipRequest{To: newer})
				cancel()
			}
		}
		return false, fmt.Sprintf("leader %s: %v", st.Leader, err)
	})
	// A negative check needs a window: the leader looks every half second,
	// so writes flowing for some of its rounds give it the chance to
	// activate wrongly.
	w := startWriters(nt, conns)
	defer func() { w.stop(); w.wg.Wait() }()
	since := time.Now()
	w.waitWrites(t, 15)
	waitUntil(t, 10*time.Second, "a window of 3 s with writes", func() (bool, string) { return time.Since(since) > 3*time.Second, "" })
	for i, m := range nt.Members {
		st, err := statusOf(ctx, conns[i], false)
		if err != nil || st.Protocol != 1 || st.ProtocolSinceIndex != 0 || st.HaltedIndex != 0 {
			t.Fatalf("%s in a mixed federation: %v, status %v", m.Agency, err, st)
		}
		if data, _ := os.ReadFile(filepath.Join(m.Dir, "node.log")); bytes.Contains(data, []byte("activated a federation protocol version")) {
			t.Fatalf("%s activated a protocol with a member on the old binary", m.Agency)
		}
	}
}

// migrated checks that m's node moved its bbolt raft log (format 1, as the
// protocol 1 binary wrote it) into raft-wal at its first start on the new
// binary, saying so, and kept the old file aside.
func migrated(t *testing.T, m *Member) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(m.Dir, "raft", "raft.db.pre-wal")); err != nil {
		t.Fatalf("%s: the old raft log was not kept aside: %v", m.Agency, err)
	}
	log, err := os.ReadFile(filepath.Join(m.Dir, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "migrated the raft log from bbolt to raft-wal") {
		t.Fatalf("%s: no line in its log says the raft log was migrated", m.Agency)
	}
}

// beforeNestedCommit is the last commit of main before 0e05785 put fsm.db
// at format 3: its binary reads fsm.db (and raft snapshots) of formats 1
// and 2 and supports protocols 1 to 5, the release a rolling upgrade to
// this tree starts from.
const beforeNestedCommit = "a2f844b4927742b152d7a6dab5eb53d7b68e4539"

// TestMixedVersionsSnapshotToOldMember: in a federation of two members on
// this tree's binary and one on the release before fsm.db format 3
// (commit a2f844b, the founder: a federation founded on this binary
// activates protocol 6 before anyone joins, and the old binary then halts
// at that entry, as with every protocol before), the old member is stopped while the others write more
// than raft keeps of its log (TrailingLogs), large publications among
// them, so that when it comes back the leader must send it a snapshot. It
// takes the snapshot (fsm.db stays at format 2 while protocol 6 is not
// active) and holds the others' state. Upgraded in turn, it announces
// protocol 6, the leader activates it, and the snapshots taken from then
// on are at format 3.
func TestMixedVersionsSnapshotToOldMember(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a federation of three processes and fills 10,000 entries of its log")
	}
	begin := time.Now()
	old, cur := watchfedAt(t, beforeNestedCommit), watchfedAt(t, "")
	t.Logf("binaries built in %v", time.Since(begin).Round(time.Millisecond))
	nt, conns := startNet(t, Options{NodeConfig: "raft_snapshot_threshold: 16\nraft_snapshot_interval: 200ms\n"}, old, cur, cur)
	ctx := context.Background()
	oldM, oldIdx := nt.Members[0], 0
	for _, m := range nt.Members[1:] {
		announced(t, m, supportedJSON())
	}
	announced(t, oldM, "[1,2,3,4,5]")
	activeEverywhere(t, nt, conns, replication.ProtocolAnchors)
	t.Logf("mixed federation on protocol 5 at %v", time.Since(begin).Round(time.Millisecond))

	st, err := statusOf(ctx, conns[oldIdx], false)
	if err != nil {
		t.Fatal(err)
	}
	if err := nt.Stop(oldM, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	behind, restoredBefore := st.AppliedIndex, restoredCount(t, oldM)
	// Large publications (an import of a few hundred records is one or a
	// few of 16 KB or more), then enough small ones that the leader's log
	// no longer holds what the old member lacks.
	importRecords(t, conns[1], 400)
	trailing := replication.DefaultRaftConfig().TrailingLogs
	fillUntilCompacted(t, conns[1:], behind+trailing)
	t.Logf("log compacted past %d + %d at %v", behind, trailing, time.Since(begin).Round(time.Millisecond))
	for _, m := range nt.Members[1:] {
		if got := snapshotStamp(t, m); got != "2" {
			t.Fatalf("%s's newest raft snapshot is at fsm.db format %q before protocol 6, want \"2\"", m.Agency, got)
		}
	}

	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = nt.Restart(rctx, oldM)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 90*time.Second, oldM.Agency+" restores a raft snapshot", func() (bool, string) {
		n := restoredCount(t, oldM)
		log, _ := os.ReadFile(oldM.LogFile())
		var said []string // what it said of snapshots: a refusal names the format
		for _, l := range strings.Split(string(log), "\n") {
			if strings.Contains(l, "snapshot") {
				said = append(said, l)
			}
		}
		return n > restoredBefore, fmt.Sprintf("%d restores logged, %d before; %s", n, restoredBefore, strings.Join(said[max(0, len(said)-2):], "\n"))
	})
	createRecord(t, conns[1], "Written After The Snapshot")
	waitSameState(t, conns, 1, oldIdx)
	if st, err := statusOf(ctx, conns[oldIdx], false); err != nil || st.HaltedIndex != 0 || st.Protocol != replication.ProtocolAnchors {
		t.Fatalf("%s after taking the snapshot: %v %v", oldM.Agency, err, st)
	}
	t.Logf("%s on the old binary took a snapshot and holds the others' state at %v", oldM.Agency, time.Since(begin).Round(time.Millisecond))

	// Upgraded: protocol 6 is activated, and the layout moves to format 3.
	if err := nt.Stop(oldM, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	oldM.Binary = cur
	rctx, cancel = context.WithTimeout(ctx, time.Minute)
	err = nt.Restart(rctx, oldM)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	activeEverywhere(t, nt, conns, replication.ProtocolNestedLog)
	importRecords(t, conns[1], 400)
	for range 20 {
		createRecord(t, conns[1], "Written On Protocol 6")
	}
	for _, m := range nt.Members {
		waitUntil(t, time.Minute, m.Agency+" takes a snapshot at fsm.db format 3", func() (bool, string) {
			got := snapshotStamp(t, m)
			return got == "3", "format " + got
		})
	}
	waitSameState(t, conns, 1, oldIdx)
	waitSameState(t, conns, 1, 2)
	t.Logf("protocol 6 active, snapshots at format 3, one state, at %v", time.Since(begin).Round(time.Millisecond))
}

// importRecords imports n designations of a list through conn in one
// stream: the node publishes them in a few large publications.
func importRecords(t *testing.T, conn *grpc.ClientConn, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := pb.NewImportServiceClient(conn).Import(ctx)
	if err != nil {
		t.Fatal(err)
	}
	source := "upgrade-" + ulid.Make().String()
	req := &pb.ImportRequest{Source: source, Marking: pb.Marking_MARKING_GREEN}
	for i := range n {
		req.Records = append(req.Records, &pb.Record{
			SourceRef: fmt.Sprintf("%s:%d", source, i), Marking: pb.Marking_MARKING_GREEN,
			Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: fmt.Sprintf("Imported Trading %s %d", source, i), Countries: []string{"RU"}},
			Detail:  &pb.Record_Designation{Designation: &pb.Designation{Program: "UPGRADE"}}})
	}
	if err := stream.Send(req); err != nil {
		t.Fatalf("import: %v", err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil || int(resp.Added) != n || resp.LogIndex == 0 {
		t.Fatalf("import of %d records: %v %v", n, err, resp)
	}
}

// fillUntilCompacted fills the log through conns until the leader among
// them has snapshotted past index at: its log then starts after
// at - TrailingLogs at the latest. The entries are the barriers of
// consistent reads, 48 at a time: raft commits them in batches, where a
// record's write waits for its origin's own commit (a fill of records ran
// at about 100 entries a second on a busy machine).
func fillUntilCompacted(t *testing.T, conns []*grpc.ClientConn, at uint64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for w := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := pb.NewSharedServiceClient(conns[w%len(conns)])
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				// NotFound after its barrier, or an error (a leader change)
				// the next read retries: either way it only fills the log.
				_, _ = sc.GetShared(rctx, &pb.GetSharedRequest{Id: "NO-SUCH/ENTRY", Consistent: true})
				rcancel()
			}
		}()
	}
	waitUntil(t, 3*time.Minute, fmt.Sprintf("a snapshot past index %d on the leader", at), func() (bool, string) {
		var seen []string
		for j := range conns {
			st, err := statusOf(ctx, conns[j], false)
			if err != nil {
				seen = append(seen, err.Error())
				continue
			}
			if st.Role == "leader" && st.SnapshotIndex > at {
				return true, ""
			}
			seen = append(seen, fmt.Sprintf("%s %s last %d snapshot %d", st.Agency, st.Role, st.LastIndex, st.SnapshotIndex))
		}
		return false, strings.Join(seen, "; ")
	})
}

// restoredCount is how many times m's node logged that it restored its
// state from a raft snapshot.
func restoredCount(t *testing.T, m *Member) int {
	t.Helper()
	log, err := os.ReadFile(m.LogFile())
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(log, []byte("replicated state restored from a raft snapshot"))
}

// snapshotStamp is the fsm.db format stamp of m's newest raft snapshot
// ("" if it has none, or it is being replaced).
func snapshotStamp(t *testing.T, m *Member) string {
	t.Helper()
	snap := newestSnapshot(t, m)
	if snap == "" {
		return ""
	}
	db, err := bolt.Open(filepath.Join(snap, "state.bin"), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return "" // removed by a newer snapshot meanwhile
	}
	defer db.Close()
	var stamp string
	_ = db.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket([]byte("meta")); meta != nil {
			stamp = string(meta.Get([]byte("format")))
		}
		return nil
	})
	return stamp
}
