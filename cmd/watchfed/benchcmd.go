package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/watchfed/watchfed/testnet/bench"
)

func newBenchCmd() *cobra.Command {
	cfg := bench.Defaults()
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure replication: a 3-node federation on loopback over mutual TLS, fsync on",
		Long: `Start a 3-node federation in this process (mutual TLS 1.3 on loopback, every write
fsynced) and measure records written through the gRPC API and acknowledged with
their log index: throughput and latency for each number of concurrent publishers.
After each row, the same publishers run against the replication floor: the
same raft, bbolt log store, FSM and gRPC transport under mutual TLS, fed signed
publications directly on the leader, with none of watchfed's work on a record
(--floor=false skips it). Then import --import records in one call (the bulk
row). Then fill a second federation with --catch-up records, let it compact its
log, add a fourth member and time its catch-up. Prints a table.

The comparison with a 3-member etcd cluster under the same load lives in a nested
Go module, so etcd stays out of this binary:
  cd testnet/etcdbench && go run .`,
		Example: `  watchfed bench
  watchfed bench --publishers 1,16,64 --duration 10s --catch-up 100000
  watchfed bench --catch-up 0 --duration 5s      # throughput rows only`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(cfg.Publishers) == 0 {
				return usagef("--publishers: at least one number")
			}
			for _, n := range cfg.Publishers {
				if n < 1 {
					return usagef("--publishers: %d is not a number of publishers", n)
				}
			}
			if cfg.Duration < time.Second {
				return usagef("--duration: at least 1s")
			}
			if cfg.ValueSize < 256 {
				return usagef("--value-size: at least 256 bytes (a record's fixed fields)")
			}
			cfg.Progress = cmd.ErrOrStderr()
			res, err := bench.Watchfed(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "machine: %s\n\n", bench.Machine())
			return bench.WriteTable(out, res.Rows, res.CatchUp)
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&cfg.Publishers, "publishers", cfg.Publishers, "numbers of concurrent publishers, one row each")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time of each row (after a warm-up of a tenth)")
	f.IntVar(&cfg.CatchUpEntries, "catch-up", cfg.CatchUpEntries, "records in the federation a new member catches up on (0 skips)")
	f.IntVar(&cfg.ValueSize, "value-size", cfg.ValueSize, "encoded size of each record as sent, in bytes")
	f.IntVar(&cfg.ImportRecords, "import", cfg.ImportRecords, "records in the bulk-import row, one Import call (0 skips)")
	f.BoolVar(&cfg.Floor, "floor", cfg.Floor, "after each row, the same publishers against the replication floor (raft without watchfed's work)")
	f.StringVar(&cfg.Dir, "dir", "", "directory for the federations' data (default: a temporary one, removed)")
	cmd.AddCommand(newBenchScreenCmd())
	return cmd
}
