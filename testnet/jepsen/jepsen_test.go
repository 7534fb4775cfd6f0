package jepsen

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watchfed/watchfed/testnet"
)

var (
	longRun  = flag.Bool("long", false, "run the long reliability test (also WATCHFED_LONG=1); WATCHFED_LONG_DURATION sets its length (default 10m)")
	seedFlag = flag.Uint64("seed", 0, "replay a reliability run with this seed (default: from the clock, logged)")
)

var (
	buildMu  sync.Mutex
	binaries = map[string]string{} // build tags → binary
)

// watchfedBinary builds the real binary once per set of build tags: the
// reliability tests kill -9 and pause node processes. Tag watchfed_testbug
// builds in the deliberate bugs that prove the checker can fail.
func watchfedBinary(t *testing.T, tags string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := binaries[tags]; ok {
		return bin
	}
	dir, err := os.MkdirTemp("", "watchfed-bin")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "watchfed")
	// Static, so that the same binary also runs in the FROM scratch image.
	cmd := exec.Command("go", "build", "-trimpath", "-tags", tags, "-o", bin, "../../cmd/watchfed")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build watchfed (tags %q): %v\n%s", tags, err, out)
	}
	binaries[tags] = bin
	return bin
}

// faultsFromEnv narrows the fault kinds to WATCHFED_FAULTS (comma-separated); nil is all.
func faultsFromEnv() []string {
	if v := os.Getenv("WATCHFED_FAULTS"); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

func seed(t *testing.T) uint64 {
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay: go test ./testnet/jepsen -run '%s' -seed %d)", s, t.Name(), s)
	return s
}

// diskBytes gives each node a tmpfs of size bytes where mounting one is
// possible (root), so the nemesis can fill a disk; 0 (no disk-full fault)
// otherwise. It must hold the whole run's raft log and state: a node whose
// disk fills up by itself stops taking in the log, as it should.
func diskBytes(t *testing.T, size int64) int64 {
	if err := testnet.TmpfsAvailable(t.TempDir()); err != nil {
		t.Logf("disk-full fault skipped: %v", err)
		return 0
	}
	return size
}

func startFaultyNet(t *testing.T, o testnet.Options, tags string) *testnet.Net {
	t.Helper()
	o.Binary, o.Faults = watchfedBinary(t, tags), true
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
		if d := os.Getenv("WATCHFED_TESTNET_DIR"); d != "" {
			o.Dir = filepath.Join(d, t.Name()) // kept for the nodes' logs
		}
	}
	nt, err := testnet.Prepare(o)
	if err != nil {
		t.Fatal(err)
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
	return nt
}

func runJepsen(t *testing.T, j *Jepsen) *Report {
	t.Helper()
	j.Artifacts = t.ArtifactDir()
	j.Logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), j.Duration+5*time.Minute)
	defer cancel()
	rep, err := j.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep.Table())
	return rep
}

func requireOK(t *testing.T, rep *Report) {
	t.Helper()
	if rep.OK() {
		return
	}
	// A few of each kind of problem.
	kinds := map[string]int{}
	for _, p := range rep.Problems {
		k := strings.Fields(p + " x x")[1]
		if kinds[k]++; kinds[k] <= 5 {
			t.Error(p)
		}
	}
	if rep.Visualised != "" {
		t.Errorf("not linearizable: history in %s", rep.Visualised)
	}
	t.Fatalf("reliability check failed (seed %d): lost %d, phantom %d, divergent %d, linearizable %v, checkpoint disagreements %d",
		rep.Seed, rep.Lost, rep.Phantom, rep.Divergent, rep.Linearizable, rep.CheckpointDisagreements)
}

// TestJepsenShort: clients on three nodes write and read while every kind
// of fault comes and goes; after healing nothing acknowledged is lost,
// nothing unwritten appears, the states agree and the reads were linearizable.
func TestJepsenShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three node processes for half a minute")
	}
	s := seed(t)
	nt := startFaultyNet(t, testnet.Options{Seed: s, DiskBytes: diskBytes(t, 256<<20)}, "")
	rep := runJepsen(t, &Jepsen{Target: nt, Seed: s, Duration: 25 * time.Second, Hold: 2 * time.Second, Quiet: time.Second})
	requireOK(t, rep)
	if rep.Cycles < 3 || rep.Acked < 10 || rep.Reads < 10 {
		t.Fatalf("too little happened to judge: %d cycles, %d acknowledged, %d reads", rep.Cycles, rep.Acked, rep.Reads)
	}
}

// TestJepsenDiskFull: clients write and read while one node's disk (its
// record store, raft log and replicated state) fills up and is freed, again
// and again. No node exits (the heal fails the run if one did), none is
// restarted, and afterwards nothing acknowledged is lost, nothing unwritten
// appears, the states agree and the reads were linearizable.
func TestJepsenDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three node processes for twenty seconds")
	}
	if err := testnet.TmpfsAvailable(t.TempDir()); err != nil {
		t.Skipf("a full disk needs a per-node tmpfs: %v", err)
	}
	s := seed(t)
	nt := startFaultyNet(t, testnet.Options{Seed: s, DiskBytes: 256 << 20}, "")
	rep := runJepsen(t, &Jepsen{Target: nt, Seed: s, Duration: 20 * time.Second, Faults: []string{testnet.FaultDiskFull}, Hold: 3 * time.Second, Quiet: time.Second})
	for _, l := range rep.FaultLog {
		t.Log(l)
	}
	requireOK(t, rep)
	if rep.Cycles < 2 || rep.Acked < 10 || rep.Reads < 10 {
		t.Fatalf("too little happened to judge: %d cycles, %d acknowledged, %d reads", rep.Cycles, rep.Acked, rep.Reads)
	}
}

// TestJepsenCatchesEarlyAck proves the checker can fail: nodes that
// acknowledge a write before it commits (built with the watchfed_testbug
// tag, which only tests use) must be caught.
func TestJepsenCatchesEarlyAck(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three node processes")
	}
	s := seed(t)
	nt := startFaultyNet(t, testnet.Options{Seed: s}, "watchfed_testbug")
	rep := runJepsen(t, &Jepsen{Target: nt, Seed: s, Duration: 12 * time.Second, Faults: []string{testnet.FaultLatency}, Hold: 3 * time.Second, Quiet: 500 * time.Millisecond})
	if rep.OK() {
		t.Fatalf("the checker passed nodes that acknowledge before commit:\n%s", rep.Table())
	}
	if rep.Linearizable {
		t.Fatalf("early acknowledgements not detected as non-linearizable reads:\n%s", rep.Table())
	}
	if _, err := os.Stat(rep.Visualised); err != nil {
		t.Fatalf("no visualisation of the failing history: %v", err)
	}
	t.Logf("caught, as it must be; history in %s", rep.Visualised)
}

// TestJepsenLong is the long run behind -long or WATCHFED_LONG=1.
// WATCHFED_FAULTS (comma-separated kinds) narrows the faults, WATCHFED_LONG_NODES sets the size.
func TestJepsenLong(t *testing.T) {
	if !*longRun && os.Getenv("WATCHFED_LONG") != "1" {
		t.Skip("long reliability run: go test ./testnet/jepsen -run TestJepsenLong -long -timeout 2h")
	}
	d := 10 * time.Minute
	if v := os.Getenv("WATCHFED_LONG_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("WATCHFED_LONG_DURATION: %v", err)
		}
	}
	nodes := 3
	if v := os.Getenv("WATCHFED_LONG_NODES"); v != "" {
		nodes, _ = strconv.Atoi(v)
	}
	faults := faultsFromEnv()
	s := seed(t)
	nt := startFaultyNet(t, testnet.Options{Nodes: nodes, Seed: s, DiskBytes: diskBytes(t, 1<<30)}, "")
	rep := runJepsen(t, &Jepsen{Target: nt, Seed: s, Duration: d, Faults: faults, Hold: 2 * time.Second, Quiet: time.Second})
	for _, l := range rep.FaultLog {
		t.Log(l)
	}
	t.Logf("\n%s", rep.Table())
	requireOK(t, rep)
}
