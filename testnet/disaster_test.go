package testnet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/watchfed/watchfed/node"
	"github.com/watchfed/watchfed/node/anchor"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// cli runs the watchfed binary as m's operator would, with m's client
// environment; it returns the exit code and what it printed.
func cli(t *testing.T, ctx context.Context, bin string, m *Member, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "WATCHFED_ADDR="+m.Env.Addr, "WATCHFED_CACERT="+m.Env.CACert,
		"WATCHFED_CLIENT_CERT="+m.Env.ClientCert, "WATCHFED_CLIENT_KEY="+m.Env.ClientKey)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("watchfed %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// leaderWatch polls every member's status until stopped and remembers, per
// term, which agencies were seen leading it: by the leader itself (role) or
// by a member naming it (leader).
type leaderWatch struct {
	mu      sync.Mutex
	byTerm  map[uint64]map[string]bool // term → leader ids seen
	claimed map[uint64]map[string]bool // term → agencies that said they lead
	named   map[uint64]map[string]bool // term → leaders named by another member
	polls   int
	stop    context.CancelFunc
	done    chan struct{}
}

func watchLeaders(nt *Net, conns []*grpc.ClientConn) *leaderWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &leaderWatch{byTerm: map[uint64]map[string]bool{}, claimed: map[uint64]map[string]bool{}, named: map[uint64]map[string]bool{}, stop: cancel, done: make(chan struct{})}
	add := func(m map[uint64]map[string]bool, term uint64, id string) {
		if m[term] == nil {
			m[term] = map[string]bool{}
		}
		m[term][id] = true
	}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			for i, m := range nt.Members {
				st, err := statusOf(ctx, conns[i], false)
				if err != nil {
					continue // a member down or restarting
				}
				w.mu.Lock()
				if st.Role == "leader" {
					add(w.byTerm, st.Term, m.Agency)
					add(w.claimed, st.Term, m.Agency)
				}
				if st.Leader != "" && st.Leader != m.Agency {
					add(w.byTerm, st.Term, st.Leader)
					add(w.named, st.Term, st.Leader)
				}
				w.polls++
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond): // polling interval
			}
		}
	}()
	return w
}

// check stops the watch and fails if a term had two leaders, or if agency
// led a term no other member knew it led (a federation of its own).
func (w *leaderWatch) check(t *testing.T, agency string) {
	t.Helper()
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.polls == 0 {
		t.Fatal("no status was read")
	}
	for term, ids := range w.byTerm {
		if len(ids) > 1 {
			t.Errorf("term %d had %d leaders: %v", term, len(ids), ids)
		}
	}
	for term, ids := range w.claimed {
		if ids[agency] && !w.named[term][agency] {
			t.Errorf("%s led term %d, and no other member followed it there: a federation of its own", agency, term)
		}
	}
}

// wipe removes what the node of m keeps in its data directory (not its
// configuration and certificates): the disk lost.
func wipe(t *testing.T, m *Member) {
	t.Helper()
	for _, name := range []string{node.StoreFile, node.KeysFile, "raft", anchor.FileName, node.InvitationFile, "invite.json"} {
		if err := os.RemoveAll(filepath.Join(m.Dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// sameState waits until every member reports the same replicated-state hash
// at the same applied index.
func sameState(t *testing.T, conns []*grpc.ClientConn) {
	t.Helper()
	waitUntil(t, 2*time.Minute, "every member at the same state hash and index", func() (bool, string) {
		var seen []string
		for _, c := range conns {
			st, err := statusOf(context.Background(), c, true)
			if err != nil {
				return false, err.Error()
			}
			seen = append(seen, fmt.Sprintf("%s@%d:%x", st.Agency, st.StateHashIndex, st.StateHash))
		}
		for _, s := range seen[1:] {
			if s[strings.Index(s, "@"):] != seen[0][strings.Index(seen[0], "@"):] {
				return false, strings.Join(seen, " ")
			}
		}
		return true, ""
	})
}

// latestAcks is the last acknowledged version of each record written by
// the given agencies.
func latestAcks(w *writers, origins ...string) map[string]ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]ack{}
	for _, a := range w.acks {
		for _, o := range origins {
			if a.origin == o && a.version >= out[a.id].version {
				out[a.id] = a
			}
		}
	}
	return out
}

// holdsAll checks that the member behind conn holds every acknowledged
// write in acks as a shared entry, at least at that version.
func holdsAll(t *testing.T, who string, conn *grpc.ClientConn, acks map[string]ack) {
	t.Helper()
	sc := pb.NewSharedServiceClient(conn)
	ids := make([]string, 0, len(acks))
	for id := range acks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		a := acks[id]
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		got, err := sc.GetShared(ctx, &pb.GetSharedRequest{Id: id, MinIndex: a.index})
		cancel()
		if err != nil {
			t.Fatalf("%s lacks %s v%d (committed at %d): %v", who, id, a.version, a.index, err)
		}
		if got.Entry.GetRecord().GetVersion() < a.version {
			t.Fatalf("%s holds %s at v%d, the federation acknowledged v%d", who, id, got.Entry.GetRecord().GetVersion(), a.version)
		}
	}
}

// TestRestoredNodeRejoinsLiveFederation is disaster case (a): one agency's
// node is lost (kill -9, data directory wiped) while the federation lives.
// Its operator restores the node's backup and starts it as usual: it
// rejoins the live federation, catches up on every entry committed while it
// was away and before, and reaches its partners' state hash; the federation
// has one leader per term throughout and the restored node never leads a
// federation of its own. Started with --recover instead while the others
// live, it refuses, saying to start without --recover.
func TestRestoredNodeRejoinsLiveFederation(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes, a minute or two")
	}
	bin := watchfedAt(t, "")
	nt, conns := upgradeNet(t, bin, bin, bin)
	de, fr, nl := nt.Members[0], nt.Members[1], nt.Members[2]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	leaders := watchLeaders(nt, conns)
	w := startWriters(nt, conns)
	defer w.stop()
	w.waitWrites(t, 30)

	backup := filepath.Join(t.TempDir(), "fr-sbdu.backup")
	if code, out := cli(t, ctx, bin, fr, "snapshot", "save", backup); code != 0 {
		t.Fatalf("snapshot save: exit %d: %s", code, out)
	}
	w.waitWrites(t, 30) // committed after the backup, before the loss
	if err := nt.Kill(fr); err != nil {
		t.Fatal(err)
	}
	wipe(t, fr)
	w.waitWrites(t, 30) // committed while FR is gone

	if code, out := cli(t, ctx, bin, fr, "snapshot", "restore", backup, "--data-dir", fr.Dir, "--agency", fr.Agency); code != 0 {
		t.Fatalf("snapshot restore: exit %d: %s", code, out)
	}
	if err := nt.Restart(ctx, fr); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 2*time.Minute, "FR caught up and votes again", func() (bool, string) {
		log, _ := os.ReadFile(filepath.Join(fr.Dir, "node.log"))
		_, err := os.Stat(filepath.Join(fr.Dir, "raft", "restored"))
		return bytes.Contains(log, []byte("it votes again")) && os.IsNotExist(err), fmt.Sprint("mark: ", err)
	})
	w.waitWrites(t, 30) // FR writes again too
	w.stop()
	w.wg.Wait()
	sameState(t, conns)
	holdsAll(t, "FR (restored)", conns[1], latestAcks(w, de.Agency, nl.Agency))
	holdsAll(t, "DE", conns[0], latestAcks(w, nl.Agency))
	leaders.check(t, fr.Agency)

	// --recover while the federation lives: refused, nothing changed.
	if err := nt.Stop(fr, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	config, _ := filepath.Abs(fr.ConfigPath())
	code, out := cli(t, ctx, bin, fr, "node", "--config", config, "--recover")
	if code == 0 || !strings.Contains(out, "--recover refused") || !strings.Contains(out, "without --recover") {
		t.Fatalf("node --recover with a live federation: exit %d, want refused saying to start without --recover:\n%s", code, out)
	}
	// --join on the member's data: refused (exit 2), not ignored.
	inv := filepath.Join(t.TempDir(), "invitation.json")
	if err := os.WriteFile(inv, []byte(`{"agency":"`+fr.Agency+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = cli(t, ctx, bin, fr, "node", "--config", config, "--join", inv)
	if code != 2 || !strings.Contains(out, "holds federation state") || !strings.Contains(out, "without --join") {
		t.Fatalf("node --join on a member's data: exit %d, want 2 saying to start without --join:\n%s", code, out)
	}
	if err := nt.Restart(ctx, fr); err != nil {
		t.Fatal(err)
	}
	sameState(t, conns)
}

// TestRecoverAfterQuorumLost is disaster case (b): two of three agencies'
// nodes are lost for good, so no leader can be elected. The survivor
// (holding every committed entry) is stopped and started once with
// --recover: it finds no live quorum, carries on as a one-member
// federation holding every committed entry, and commits writes again, also
// after a plain restart.
func TestRecoverAfterQuorumLost(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes, a minute")
	}
	bin := watchfedAt(t, "")
	nt, conns := upgradeNet(t, bin, bin, bin)
	de, fr, nl := nt.Members[0], nt.Members[1], nt.Members[2]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	w := startWriters(nt, conns)
	defer w.stop()
	w.waitWrites(t, 30)
	w.stop()
	w.wg.Wait()
	sameState(t, conns) // FR, the survivor, holds the highest applied index
	for _, m := range []*Member{de, nl} {
		if err := nt.Kill(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := nt.Stop(fr, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	fr.Args = []string{"--recover"}
	if err := nt.Restart(ctx, fr); err != nil {
		t.Fatal(err)
	}
	fr.Args = nil
	waitUntil(t, time.Minute, "FR leads alone", func() (bool, string) {
		st, err := statusOf(ctx, conns[1], false)
		return err == nil && st.Role == "leader", fmt.Sprint(st.GetRole(), err)
	})
	holdsAll(t, "FR (recovered)", conns[1], latestAcks(w, de.Agency, nl.Agency))
	rc := pb.NewRecordServiceClient(conns[1])
	write := func(name string) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		resp, err := rc.CreateRecord(wctx, &pb.CreateRecordRequest{Record: &pb.Record{
			Marking: pb.Marking_MARKING_GREEN,
			Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: name, Countries: []string{"RU"}},
			Detail:  &pb.Record_Designation{Designation: &pb.Designation{Program: "RECOVER"}},
		}})
		if err != nil || resp.LogIndex == 0 || resp.NotShared {
			t.Fatalf("write %q on the recovered node: %v (log_index %d, not_shared %v)", name, err, resp.GetLogIndex(), resp.GetNotShared())
		}
	}
	write("Written After Recovery")
	// A plain restart keeps the one-member federation.
	if err := nt.Stop(fr, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := nt.Restart(ctx, fr); err != nil {
		t.Fatal(err)
	}
	write("Written After A Restart")
}
