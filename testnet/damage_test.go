package testnet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestDamagedFilesOfAStoppedFollower damages real bytes of the files of a
// stopped follower of a running three-member federation, one store at a
// time, and restarts it. Each is detected, naming the file, and either
// repaired to its partners' exact state hash at the same applied index, or
// refused: never served silently diverged.
//
//   - fsm.db, 32 bytes of a data page: set aside at start, rebuilt from
//     snapshot and log, at the leader's state hash;
//   - fsm.db, both meta pages: the same;
//   - the raft log: 32 bytes of an entry's data (fsm.db removed, so the
//     node must rebuild from the log), and a segment's header;
//   - a backup file (snapshot save) with a flipped byte: snapshot restore
//     refuses it, naming the file, and restores nothing;
//   - node.db, 32 bytes of a data page holding one of its own records: the
//     node refuses to start, naming the file, bucket and key (its screening
//     index would miss the record). Damage the start does not read leaves
//     the node up, refusing the reads that meet it (node/store tests).
//
// (A raft snapshot: TestDamagedRaftSnapshotOfAStoppedFollower.)
func TestDamagedFilesOfAStoppedFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a federation of three processes")
	}
	cur := watchfedAt(t, "")
	nt, conns := upgradeNet(t, cur, cur, cur)
	ctx := context.Background()
	st, err := statusOf(ctx, conns[0], false)
	if err != nil {
		t.Fatal(err)
	}
	lead := slices.IndexFunc(nt.Members, func(m *Member) bool { return m.Agency == st.Leader })
	var followers []int
	for i := range nt.Members {
		if i != lead {
			followers = append(followers, i)
		}
	}
	var leadIDs []string
	for i := range 5 {
		leadIDs = append(leadIDs, createRecord(t, conns[lead], fmt.Sprintf("Damage Target %d", i)))
	}
	restart := func(t *testing.T, i int, damage func(dir string)) {
		t.Helper()
		m := nt.Members[i]
		if err := nt.Stop(m, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		damage(m.Dir)
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := nt.Restart(rctx, m); err != nil {
			t.Fatalf("restart of %s after the damage: %v", m.Agency, err)
		}
	}

	t.Run("fsm.db data page", func(t *testing.T) {
		f := followers[0]
		waitSameState(t, conns, lead, f)
		path := filepath.Join(nt.Members[f].Dir, "raft", "fsm.db")
		restart(t, f, func(string) { flipAt(t, path, []byte(leadIDs[2]), 32) })
		waitLogged(t, nt.Members[f], path, "checksum mismatch")
		createRecord(t, conns[lead], "Damage Target After Data Page")
		waitSameState(t, conns, lead, f)
	})

	t.Run("fsm.db meta pages", func(t *testing.T) {
		f := followers[0]
		path := filepath.Join(nt.Members[f].Dir, "raft", "fsm.db")
		restart(t, f, func(string) {
			if err := tearMetaPages(path); err != nil {
				t.Fatal(err)
			}
		})
		waitLogged(t, nt.Members[f], path, "corrupt")
		createRecord(t, conns[lead], "Damage Target After Meta Pages")
		waitSameState(t, conns, lead, f)
	})

	// The raft log (raft-wal segments under raft/wal/): an entry's data
	// damaged, with fsm.db removed so that the node must rebuild from the
	// log; and the segment's header damaged.
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, seg string)
	}{
		{"raft log entry data", func(t *testing.T, seg string) { flipAt(t, seg, []byte(leadIDs[1]), 32) }},
		{"raft log segment header", func(t *testing.T, seg string) {
			f, err := os.OpenFile(seg, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, 32), 0); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := followers[0]
			waitSameState(t, conns, lead, f)
			m := nt.Members[f]
			if err := nt.Stop(m, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			segs, _ := filepath.Glob(filepath.Join(m.Dir, "raft", "wal", "*.wal"))
			if len(segs) == 0 {
				t.Fatalf("no raft-wal segment in %s", filepath.Join(m.Dir, "raft", "wal"))
			}
			slices.Sort(segs)
			// Kept to put the member back afterwards, whatever it does.
			kept := filepath.Join(t.TempDir(), "raft")
			if out, err := exec.Command("cp", "-a", filepath.Join(m.Dir, "raft"), kept).CombinedOutput(); err != nil {
				t.Fatalf("keep the raft directory: %v %s", err, out)
			}
			defer func() {
				_ = nt.Stop(m, 20*time.Second)
				if err := os.RemoveAll(filepath.Join(m.Dir, "raft")); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command("cp", "-a", kept, filepath.Join(m.Dir, "raft")).CombinedOutput(); err != nil {
					t.Fatalf("put the raft directory back: %v %s", err, out)
				}
				rctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				if err := nt.Restart(rctx, m); err != nil {
					t.Fatalf("restart with the raft directory put back: %v", err)
				}
			}()
			tc.damage(t, segs[0])
			if err := os.Remove(filepath.Join(m.Dir, "raft", "fsm.db")); err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			err := nt.Restart(rctx, m)
			if err != nil {
				// Refused: its last word must name the segment file (or,
				// for a segment raft-wal cannot open, the wal directory).
				last := lastLine(err.Error())
				if !strings.Contains(last, segs[0]) && !strings.Contains(last, filepath.Dir(segs[0])) {
					t.Fatalf("restart on a damaged raft log: %v; want a refusal naming %s", err, segs[0])
				}
				t.Logf("refused: %s", last)
				return
			}
			// Started: then it must be at its partners' state, never apart.
			createRecord(t, conns[lead], "Damage Target After "+tc.name)
			waitSameState(t, conns, lead, f)
			waitLogged(t, m, segs[0], "damaged")
		})
	}

	t.Run("backup file", func(t *testing.T) {
		f := followers[1]
		backup := filepath.Join(t.TempDir(), "follower.backup")
		saveBackup(t, conns[f], backup)
		b, err := os.ReadFile(backup)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x08
		if err := os.WriteFile(backup, b, 0o600); err != nil {
			t.Fatal(err)
		}
		dataDir := filepath.Join(t.TempDir(), "restored")
		out, err := exec.Command(cur, "snapshot", "restore", backup, "--data-dir", dataDir,
			"--agency", nt.Members[f].Agency, "--advertise", "127.0.0.1:1").CombinedOutput()
		if err == nil || !strings.Contains(string(out), backup) || !strings.Contains(string(out), "SHA-256 mismatch") {
			t.Fatalf("restore of a damaged backup: %v\n%s", err, out)
		}
		if left, _ := os.ReadDir(dataDir); len(left) != 0 {
			t.Fatalf("a refused backup left %v", left)
		}
		t.Logf("refused: %s", strings.TrimSpace(string(out)))
	})

	t.Run("node.db data page", func(t *testing.T) {
		// The node's own records feed its screening index at start: a
		// damaged one would leave a listed party unscreened, so the node
		// refuses to start, naming the file, bucket and key.
		f := followers[1]
		createRecord(t, conns[f], "Damage Target Local Alpha")
		m := nt.Members[f]
		if err := nt.Stop(m, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(m.Dir, "node.db")
		flipAt(t, path, []byte("Local Alpha"), 32)
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		err := nt.Restart(rctx, m)
		if err == nil || !strings.Contains(lastLine(err.Error()), path) || !strings.Contains(lastLine(err.Error()), "checksum mismatch") {
			t.Fatalf("restart on a damaged node.db: %v; want a refusal naming %s", err, path)
		}
		t.Logf("refused: %s", lastLine(err.Error()))
	})
}

// createRecord writes a designation through conn and returns its id.
func createRecord(t *testing.T, conn *grpc.ClientConn, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := pb.NewRecordServiceClient(conn).CreateRecord(ctx, &pb.CreateRecordRequest{Record: &pb.Record{
		Marking: pb.Marking_MARKING_GREEN, Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: name, Countries: []string{"RU"}},
		Detail: &pb.Record_Designation{Designation: &pb.Designation{Program: "DAMAGE"}}}})
	if err != nil {
		t.Fatalf("create %q: %v", name, err)
	}
	return r.GetRecord().GetId()
}

// waitSameState waits until members a and b report the same state hash at
// the same applied index, and fails at once if they differ at one index.
func waitSameState(t *testing.T, conns []*grpc.ClientConn, a, b int) {
	t.Helper()
	ctx := context.Background()
	waitUntil(t, time.Minute, "the same state hash at the same index", func() (bool, string) {
		sa, err := statusOf(ctx, conns[a], true)
		sb, err2 := statusOf(ctx, conns[b], true)
		if err != nil || err2 != nil {
			return false, fmt.Sprint(err, err2)
		}
		if sa.StateHashIndex == sb.StateHashIndex && len(sa.StateHash) == 32 {
			if !bytes.Equal(sa.StateHash, sb.StateHash) {
				t.Fatalf("at index %d %s hashes %x, %s %x: diverged", sa.StateHashIndex, sa.Agency, sa.StateHash, sb.Agency, sb.StateHash)
			}
			return true, ""
		}
		return false, fmt.Sprintf("%s at %d, %s at %d", sa.Agency, sa.StateHashIndex, sb.Agency, sb.StateHashIndex)
	})
}

// flipAt inverts n bytes at every place where marker occurs in the file at
// path (bbolt copies pages on write, so a value has stale copies in freed
// pages; one of the places is the live one).
func flipAt(t *testing.T, path string, marker []byte, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for off := 0; ; {
		i := bytes.Index(b[off:], marker)
		if i < 0 {
			break
		}
		for j := off + i; j < off+i+n && j < len(b); j++ {
			b[j] ^= 0xff
		}
		found++
		off += i + n
	}
	if found == 0 {
		t.Fatalf("%q not found in %s", marker, path)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitLogged waits until m's node log holds a line naming path and saying what.
func waitLogged(t *testing.T, m *Member, path, what string) {
	t.Helper()
	waitUntil(t, 90*time.Second, m.Agency+" logs "+what+" naming "+path, func() (bool, string) {
		log, err := os.ReadFile(filepath.Join(m.Dir, "node.log"))
		if err != nil {
			return false, err.Error()
		}
		for _, l := range strings.Split(string(log), "\n") {
			if strings.Contains(l, path) && strings.Contains(l, what) {
				t.Logf("%s: %s", m.Agency, l)
				return true, ""
			}
		}
		return false, tail(string(log), 5)
	})
}

// saveBackup writes a backup of the node behind conn to path (snapshot save).
func saveBackup(t *testing.T, conn *grpc.ClientConn, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := pb.NewFederationServiceClient(conn).SaveSnapshot(ctx, &pb.SaveSnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b.Write(resp.Chunk)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// lastLine is the last line of s that is not blank: the last word of a
// node that exited (its log's tail may hold earlier runs' lines).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
