package testnet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// feedLine is what `watchfed watch -o json` prints of an entry.
type feedLine struct {
	LogIndex uint64 `json:"log_index"`
	Position uint32 `json:"position"`
	Cursor   string `json:"cursor"`
	Record   struct {
		ID string `json:"id"`
	} `json:"record"`
}

// feed runs `watchfed watch --from FROM -o json` on m's node and reads its
// lines one at a time; stop kills the process, as a cut connection would.
type feed struct {
	t    *testing.T
	cmd  *exec.Cmd
	r    *bufio.Reader
	next *feedLine // a line read ahead by peek
}

func watchFeed(t *testing.T, ctx context.Context, bin string, m *Member, from string) *feed {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "watch", "--from", from, "-o", "json")
	cmd.Env = append(os.Environ(), "WATCHFED_ADDR="+m.Env.Addr, "WATCHFED_CACERT="+m.Env.CACert,
		"WATCHFED_CLIENT_CERT="+m.Env.ClientCert, "WATCHFED_CLIENT_KEY="+m.Env.ClientKey)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &feed{t: t, cmd: cmd, r: bufio.NewReaderSize(out, 1<<20)}
	t.Cleanup(func() {
		f.stop()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("watch --from %s said: %s", from, stderr.String())
		}
	})
	return f
}

// read returns the next entry of the feed, blocking until one comes (the
// context given to watchFeed bounds it: the process is killed at its end).
func (f *feed) read() feedLine {
	f.t.Helper()
	if n := f.next; n != nil {
		f.next = nil
		return *n
	}
	line, err := f.r.ReadBytes('\n')
	if err != nil {
		f.t.Fatalf("watch ended: %v", err)
	}
	var e feedLine
	if err := json.Unmarshal(line, &e); err != nil {
		f.t.Fatalf("watch printed %q: %v", line, err)
	}
	if e.Cursor != fmt.Sprintf("%d:%d", e.LogIndex, e.Position) {
		f.t.Fatalf("entry at %d:%d has cursor %q", e.LogIndex, e.Position, e.Cursor)
	}
	return e
}

// peek returns the next entry without consuming it.
func (f *feed) peek() feedLine {
	f.t.Helper()
	e := f.read()
	f.next = &e
	return e
}

func (f *feed) stop() {
	if f.cmd.Process != nil && f.cmd.ProcessState == nil {
		_ = f.cmd.Process.Kill()
		_ = f.cmd.Wait()
	}
}

// TestFeedResumesInsideABulkEntry: 20,000 records imported at once reach a
// partner in bulk entries (up to 1,024 records at one log index). A
// consumer of the partner's feed (`watchfed watch`, a real process) is cut
// off in the middle of a bulk entry and resumes with --from the cursor of
// the last entry it processed: the ids it gets, in order, are exactly those
// of an uninterrupted read, with no gap and no duplicate.
func TestFeedResumesInsideABulkEntry(t *testing.T) {
	if os.Getenv("WATCHFED_LONG") != "1" {
		t.Skip("about 90 s (real processes, a 20,000-record import): WATCHFED_LONG=1 runs it")
	}
	const total = 20000
	bin := watchfedAt(t, "")
	nt, _ := upgradeNet(t, bin, bin)
	de, fr := nt.Members[0], nt.Members[1]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	edition := filepath.Join(t.TempDir(), "feed.ftm.json")
	var b strings.Builder
	for i := range total {
		fmt.Fprintf(&b, `{"id": "feed-%05d", "schema": "Person", "properties": {"name": ["Feedperson Number%05d"], "country": ["ru"]}}`+"\n", i, i)
	}
	if err := os.WriteFile(edition, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := cli(t, ctx, bin, de, "import", "--format", "ftm", "--marking", "GREEN", edition); code != 0 {
		t.Fatalf("import: exit %d: %s", code, out)
	}

	whole := watchFeed(t, ctx, bin, fr, "1")
	var want []string
	bulk := false
	var prev feedLine
	for i := range total {
		e := whole.read()
		want = append(want, e.Record.ID)
		bulk = bulk || (i > 0 && e.LogIndex == prev.LogIndex)
		prev = e
	}
	whole.stop()
	if !bulk {
		t.Fatal("no two entries at one log index: the import was not published in bulk")
	}

	// Cut after about a third, where the next entry is at the same index.
	cut := watchFeed(t, ctx, bin, fr, "1")
	var got []string
	var last feedLine
	for len(got) < total/3 || cut.peek().LogIndex != last.LogIndex {
		last = cut.read()
		got = append(got, last.Record.ID)
	}
	cut.stop()
	t.Logf("cut after %d entries, at cursor %s (inside the bulk entry at index %d)", len(got), last.Cursor, last.LogIndex)

	resumed := watchFeed(t, ctx, bin, fr, last.Cursor)
	for len(got) < total {
		got = append(got, resumed.read().Record.ID)
	}
	resumed.stop()
	if !slices.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("resumed feed differs from the uninterrupted one at entry %d: %s, want %s", i, got[i], want[i])
			}
		}
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("%s delivered twice", id)
		}
		seen[id] = true
	}
}
