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
	cfg.Dir = filepath.Join(dir, "watchfed")
	res, err := bench.Watchfed(ctx, cfg)
	if err != nil {
		return err
	}
	rows := res.Rows
	if withEtcd {
		er, err := Etcd(ctx, filepath.Join(dir, "etcd"), cfg)
		if err != nil {
			return err
		}
		rows = append(rows, er...)
	}
	fmt.Printf("machine: %s\n\n", bench.Machine())
	return bench.WriteTable(os.Stdout, rows, res.CatchUp)
}

// Etcd measures the same write load against an embedded 3-member cluster.
func Etcd(ctx context.Context, dir string, cfg bench.Config) ([]bench.Row, error) {
	fmt.Fprintln(cfg.Progress, "etcd: starting 3 members")
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	c, err := StartEtcd(sctx, dir)
	cancel()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var rows []bench.Row
	for _, n := range cfg.Publishers {
		fmt.Fprintf(cfg.Progress, "etcd: %d clients for %s\n", n, cfg.Duration)
		clients, err := c.Clients((n + 7) / 8)
		if err != nil {
			return nil, err
		}
		row, err := bench.Load(ctx, "etcd", Workload, n, cfg.Duration, PutOp(clients, cfg.ValueSize))
		for _, cl := range clients {
			cl.Close()
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}
