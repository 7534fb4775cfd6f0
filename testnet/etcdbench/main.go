package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
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
	flag.BoolVar(&cfg.Floor, "floor", cfg.Floor, "after each watchfed row, the same publishers against the replication floor (raft without watchfed's work)")
	skipEtcd := flag.Bool("skip-etcd", false, "measure watchfed only")
	flag.Parse()
	cfg.Publishers = nil
	for _, s := range strings.Split(*publishers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "etcdbench: --publishers: %q is not a number of publishers\n", s)
			os.Exit(2)
		}
		cfg.Publishers = append(cfg.Publishers, n)
	}
	cfg.Progress = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, !*skipEtcd); err != nil {
		fmt.Fprintln(os.Stderr, "etcdbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg bench.Config, withEtcd bool) error {
	dir, err := os.MkdirTemp("", "watchfed-etcdbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var other bench.RowFunc
	if withEtcd {
		fmt.Fprintln(cfg.Progress, "etcd: starting 3 members")
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		c, err := StartEtcd(sctx, filepath.Join(dir, "etcd"))
		cancel()
		if err != nil {
			return err
		}
		defer c.Close()
		other = func(ctx context.Context, n int) (bench.Row, error) { return etcdRow(ctx, c, n, cfg) }
	}
	// Rows alternate, watchfed, the replication floor, then etcd for each
	// number of publishers.
	rows, err := bench.Interleaved(ctx, filepath.Join(dir, "watchfed"), cfg, other)
	if err != nil {
		return err
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

// etcdRow measures n clients putting values into the cluster.
func etcdRow(ctx context.Context, c *Cluster, n int, cfg bench.Config) (bench.Row, error) {
	fmt.Fprintf(cfg.Progress, "etcd: %d clients for %s\n", n, cfg.Duration)
	clients, err := c.Clients((n + 7) / 8)
	if err != nil {
		return bench.Row{}, err
	}
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	return bench.Load(ctx, "etcd", Workload, n, cfg.Duration, PutOp(clients, cfg.ValueSize))
}
