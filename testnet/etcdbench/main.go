package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/watchfed/watchfed/testnet/bench"
)

func main() {
	cfg := bench.Defaults()
	publishers := flag.String("publishers", "1,16,64", "numbers of concurrent publishers (and etcd clients), one row each")
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time of each row (after a warm-up of a tenth)")
	flag.IntVar(&cfg.CatchUpEntries, "catch-up", cfg.CatchUpEntries, "records a new watchfed member catches up on (0 skips)")
	flag.IntVar(&cfg.ValueSize, "value-size", cfg.ValueSize, "bytes per record as sent and per etcd value")
	flag.IntVar(&cfg.ImportRecords, "import", cfg.ImportRecords, "records in watchfed's bulk-import row, one Import call (0 skips)")
	flag.BoolVar(&cfg.Floor, "floor", cfg.Floor, "after each watchfed row at the leader, the same publishers against the replication floor (raft without watchfed's work)")
	flag.BoolVar(&cfg.Followers, "followers", cfg.Followers, "for each number of publishers, rows of writes at a follower too")
	flag.BoolVar(&cfg.ProductionRaft, "production-raft", cfg.ProductionRaft, "run the loopback federation and floor on the node's production raft timing (elections after 1 s, as etcd's) instead of the test timing (300 ms, a 200 ms lease)")
	var wan []string
	for _, c := range cfg.WAN {
		wan = append(wan, fmt.Sprintf("%dx%s", c.Agencies, c.Delay))
	}
	wanFlag := flag.String("wan", strings.Join(wan, ","), `federations across delayed links, AGENCIESxONE-WAY-DELAY, comma-separated ("" skips)`)
	wanPublishers := flag.String("wan-publishers", "1,16", "numbers of publishers (and etcd clients) in the WAN rows")
	flag.BoolVar(&cfg.WANFloor, "wan-floor", cfg.WANFloor, "after each WAN row at the leader, the same publishers against a replication floor of as many members behind the same delayed links")
	skipEtcd := flag.Bool("skip-etcd", false, "measure watchfed only")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (every node runs in this process) to this file")
	catchUpProfile := flag.String("catch-up-profile", "", "write a CPU profile of the new member's catch-up alone to this file")
	importProfile := flag.String("import-profile", "", "write a CPU profile of the bulk-import row alone to this file (samples labelled by agency: go tool pprof -tags)")
	importAllocs := flag.String("import-allocs", "", "write the allocation profile taken once the bulk import is answered to this file (allocations since the start; go tool pprof -sample_index=alloc_space)")
	flag.Parse()
	if *importAllocs != "" {
		f, err := os.Create(*importAllocs)
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcdbench: --import-allocs:", err)
			os.Exit(2)
		}
		defer f.Close()
		cfg.ImportAllocProfile = f
	}
	if *importProfile != "" {
		f, err := os.Create(*importProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcdbench: --import-profile:", err)
			os.Exit(2)
		}
		defer f.Close()
		cfg.ImportProfile = f
	}
	if *catchUpProfile != "" {
		f, err := os.Create(*catchUpProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcdbench: --catch-up-profile:", err)
			os.Exit(2)
		}
		defer f.Close()
		cfg.CatchUpProfile = f
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcdbench: --cpuprofile:", err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "etcdbench: --cpuprofile:", err)
			os.Exit(2)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	cfg.Publishers = counts("--publishers", *publishers)
	cfg.WANPublishers = counts("--wan-publishers", *wanPublishers)
	cfg.WAN = nil
	for _, s := range strings.Split(*wanFlag, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		c, err := bench.ParseWAN(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintf(os.Stderr, "etcdbench: --wan: %v\n", err)
			os.Exit(2)
		}
		cfg.WAN = append(cfg.WAN, c)
	}
	cfg.Progress = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, !*skipEtcd); err != nil {
		fmt.Fprintln(os.Stderr, "etcdbench:", err)
		stop()
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// counts parses a flag's comma-separated numbers of publishers.
func counts(flag, list string) []int {
	var out []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "etcdbench: %s: %q is not a number of publishers\n", flag, s)
			os.Exit(2)
		}
		out = append(out, n)
	}
	return out
}

func run(ctx context.Context, cfg bench.Config, withEtcd bool) error {
	dir, err := os.MkdirTemp("", "watchfed-etcdbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var other bench.Other
	var loop bench.OtherCluster
	if withEtcd {
		sys := &etcdSystem{dir: filepath.Join(dir, "etcd"), cfg: cfg}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		c, err := sys.Start(sctx, 3, 0)
		cancel()
		if err != nil {
			return err
		}
		defer c.Close()
		other, loop = sys, c
	}
	// Rows alternate, watchfed, the replication floor, then etcd for each
	// number of publishers, at the leader, then at a follower.
	rows, err := bench.Interleaved(ctx, filepath.Join(dir, "watchfed"), cfg, loop)
	if err != nil {
		return err
	}
	if len(cfg.WAN) > 0 {
		wrows, err := bench.WAN(ctx, filepath.Join(dir, "wan"), cfg, other)
		if err != nil {
			return err
		}
		rows = append(rows, wrows...)
	}
	var cu *bench.CatchUp
	if cfg.CatchUpEntries > 0 {
		wcfg := cfg
		wcfg.Publishers = nil
		wcfg.Dir = filepath.Join(dir, "catchup")
		res, err := bench.Watchfed(ctx, wcfg)
		if err != nil {
			return err
		}
		cu = res.CatchUp
	}
	fmt.Printf("machine: %s\n\n", bench.Machine())
	return bench.WriteTable(os.Stdout, rows, cu)
}

// etcdSystem starts etcd clusters for the rows.
type etcdSystem struct {
	dir string
	cfg bench.Config
	n   int // clusters started
}

func (s *etcdSystem) Start(ctx context.Context, members int, delay time.Duration) (bench.OtherCluster, error) {
	fmt.Fprintf(s.cfg.Progress, "etcd: starting %d members (%s one way between them)\n", members, delay)
	s.n++
	c, err := StartEtcd(ctx, filepath.Join(s.dir, strconv.Itoa(s.n)), members, delay)
	if err != nil {
		return nil, err
	}
	return &etcdCluster{c: c, cfg: s.cfg}, nil
}

type etcdCluster struct {
	c   *Cluster
	cfg bench.Config
}

func (e *etcdCluster) Close() { e.c.Close() }

// Row measures n clients putting values into the cluster at its leader or
// at a follower, shared 8 to a connection as watchfed's publishers are.
func (e *etcdCluster) Row(ctx context.Context, n int, at bench.Site, net string) (bench.Row, error) {
	fmt.Fprintf(e.cfg.Progress, "etcd (%s): %d clients at the %s for %s\n", net, n, at, e.cfg.Duration)
	clients, err := e.c.Clients((n+7)/8, at)
	if err != nil {
		return bench.Row{}, err
	}
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	row, err := bench.Load(ctx, "etcd", Workload, n, e.cfg.Duration, PutOp(clients, e.cfg.ValueSize))
	row.At, row.Net = at, net
	return row, err
}
