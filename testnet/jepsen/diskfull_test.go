package jepsen

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watchfed/watchfed/testnet"
)

// TestJepsenDiskFullSeparate: each node keeps its raft log on one disk
// (raft_log_dir) and its record stores (node.db, raft/fsm.db) on another.
// Clients write and read while one node's raft log disk, or its record
// stores' disk, fills up and is freed, again and again. No node exits or
// panics, none is restarted; while a disk is full the node's status and
// /readyz say so, naming a file on that disk; afterwards no node reports a
// full disk, nothing acknowledged is lost, nothing unwritten appears, the
// states agree and the reads were linearizable.
func TestJepsenDiskFullSeparate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three node processes for twenty seconds, twice")
	}
	if err := testnet.TmpfsAvailable(t.TempDir()); err != nil {
		t.Skipf("a full disk needs a per-node tmpfs: %v", err)
	}
	for _, tc := range []struct {
		name, fault string
		raftLog     bool // the full disk is the raft log's
	}{
		{"raft-log", testnet.FaultRaftLogDiskFull, true},
		{"records", testnet.FaultDiskFull, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := seed(t)
			nt := startFaultyNet(t, testnet.Options{Seed: s, DiskBytes: 256 << 20, RaftLogBytes: 128 << 20}, "")
			mon := watchDiskFull(nt)
			rep := runJepsen(t, &Jepsen{Target: nt, Seed: s, Duration: 20 * time.Second, Faults: []string{tc.fault}, Hold: 3 * time.Second, Quiet: time.Second})
			seen := mon.stop()
			for _, l := range rep.FaultLog {
				t.Log(l)
			}
			requireOK(t, rep)
			if rep.Cycles < 2 || rep.Acked < 10 || rep.Reads < 10 {
				t.Fatalf("too little happened to judge: %d cycles, %d acknowledged, %d reads", rep.Cycles, rep.Acked, rep.Reads)
			}
			requireNoPanic(t, nt)

			// The full disk was reported where it was, by status and /readyz.
			onDisk := func(m *testnet.Member, path string) bool {
				inLog := strings.HasPrefix(path, m.RaftLogDir+string(filepath.Separator))
				return strings.HasPrefix(path, m.Dir+string(filepath.Separator)) && inLog == tc.raftLog
			}
			var status, ready bool
			for _, o := range seen {
				t.Logf("%s reported by %s: %s", o.agency, o.by, o.path)
				m := member(nt, o.agency)
				switch {
				case !onDisk(m, o.path):
					t.Errorf("%s reported by %s names %s, not a file on the disk that was full", o.agency, o.by, o.path)
				case o.by == "status":
					status = true
				default:
					ready = true
				}
			}
			if !status || !ready {
				t.Fatalf("a full disk was not reported (status %v, /readyz %v)", status, ready)
			}
			// Space returned: no node still says its disk is full.
			requireNotFull(t, nt)
		})
	}
}

// requireNoPanic fails the test if a node's log holds a panic.
func requireNoPanic(t *testing.T, nt *testnet.Net) {
	t.Helper()
	for _, m := range nt.Members {
		data, err := os.ReadFile(m.LogFile())
		if err != nil {
			t.Fatal(err)
		}
		if i := strings.Index(string(data), "panic"); i >= 0 {
			t.Errorf("%s's log holds a panic:\n%s", m.Agency, data[i:min(len(data), i+2000)])
		}
	}
}

// requireNotFull waits until no member's status reports a full disk.
func requireNotFull(t *testing.T, nt *testnet.Net) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, m := range nt.Members {
		for {
			st, err := m.Status(ctx)
			if err == nil && !st.DiskFull {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s still reports a full disk after space returned: %s (%v)", m.Agency, st.GetDiskFullPath(), err)
			}
			wait(ctx, 200*time.Millisecond)
		}
	}
}

func member(nt *testnet.Net, agency string) *testnet.Member {
	for _, m := range nt.Members {
		if m.Agency == agency {
			return m
		}
	}
	return nil
}

// fullSeen is one report of a full disk: by status or /readyz.
type fullSeen struct{ agency, by, path string }

// diskMonitor asks every member, over and over, whether its disk is full.
type diskMonitor struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	seen   map[fullSeen]bool
}

func watchDiskFull(nt *testnet.Net) *diskMonitor {
	ctx, cancel := context.WithCancel(context.Background())
	d := &diskMonitor{cancel: cancel, done: make(chan struct{}), seen: map[fullSeen]bool{}}
	go func() {
		defer close(d.done)
		hc := &http.Client{Timeout: 5 * time.Second}
		for ctx.Err() == nil {
			for _, m := range nt.Members {
				if st, err := m.Status(ctx); err == nil && st.DiskFull {
					d.note(fullSeen{m.Agency, "status", st.DiskFullPath})
				}
				if p, ok := readyzFull(ctx, hc, m); ok {
					d.note(fullSeen{m.Agency, "/readyz", p})
				}
			}
			wait(ctx, 100*time.Millisecond)
		}
	}()
	return d
}

func (d *diskMonitor) note(s fullSeen) {
	d.mu.Lock()
	d.seen[s] = true
	d.mu.Unlock()
}

func (d *diskMonitor) stop() []fullSeen {
	d.cancel()
	<-d.done
	var out []fullSeen
	for s := range d.seen {
		out = append(out, s)
	}
	return out
}

// readyzFull asks m's /readyz; a 503 saying "disk full: PATH (...)" gives PATH.
func readyzFull(ctx context.Context, hc *http.Client, m *testnet.Member) (string, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.MetricsAddr+"/readyz", nil)
	if err != nil {
		return "", false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	_, rest, ok := strings.Cut(string(body), "disk full: ")
	if resp.StatusCode != http.StatusServiceUnavailable || !ok {
		return "", false
	}
	path, _, _ := strings.Cut(rest, " (")
	return path, true
}
