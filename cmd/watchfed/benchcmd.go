package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/watchfed/watchfed/testnet/bench"
)

func newBenchCmd() *cobra.Command {
	cfg := bench.Defaults()
	var wan []string // --wan, parsed into cfg.WAN
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure replication: writes at the leader and at a follower, on loopback and across delayed links",
		Long: `Start a 3-node federation in this process (mutual TLS 1.3 on loopback, every write
fsynced) and measure records written through the gRPC API and acknowledged with
their log index: throughput and latency for each number of concurrent publishers,
at the leader and then at a follower (--followers=false skips those). After each
leader row, the same publishers run against the replication floor: the same
raft, log store, FSM and gRPC transport under mutual TLS, fed signed
publications directly on the leader, with none of watchfed's work on a record
(--floor=false skips it). Then import --import records in one call (the bulk
row). Then the WAN rows: for each --wan case, a federation of that many
agencies whose every link delays what it carries by that much each way
(through fault proxies), --wan-publishers publishers at the leader and at a
follower, each leader row followed by a replication floor of as many members
behind the same links (--wan-floor=false skips it). Then fill a second federation with --catch-up records, let it
compact its log, add a fourth member and time its catch-up. Prints a table.

The comparison with a 3-member etcd cluster under the same load lives in a nested
Go module, so etcd stays out of this binary:
  cd testnet/etcdbench && go run .`,
		Example: `  watchfed bench
  watchfed bench --publishers 1,16,64 --duration 10s --catch-up 100000
  watchfed bench --catch-up 0 --wan "" --duration 5s      # loopback throughput rows only
  watchfed bench --publishers 16 --catch-up 0 --import 0 --wan 3x10ms,5x40ms`,
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
			cfg.WAN = nil
			for _, w := range wan {
				c, err := bench.ParseWAN(w)
				if err != nil {
					return usagef("--wan: %v", err)
				}
				cfg.WAN = append(cfg.WAN, c)
			}
			for _, n := range cfg.WANPublishers {
				if n < 1 {
					return usagef("--wan-publishers: %d is not a number of publishers", n)
				}
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
	f.BoolVar(&cfg.Followers, "followers", cfg.Followers, "for each number of publishers, a row of writes at a follower too")
	for _, c := range cfg.WAN {
		wan = append(wan, fmt.Sprintf("%dx%s", c.Agencies, c.Delay))
	}
	f.StringSliceVar(&wan, "wan", wan, `federations across delayed links, AGENCIESxONE-WAY-DELAY ("" skips)`)
	f.IntSliceVar(&cfg.WANPublishers, "wan-publishers", cfg.WANPublishers, "numbers of publishers in the WAN rows")
	f.BoolVar(&cfg.WANFloor, "wan-floor", cfg.WANFloor, "after each WAN row at the leader, the same publishers against a replication floor behind the same delayed links")
	f.StringVar(&cfg.Dir, "dir", "", "directory for the federations' data (default: a temporary one, removed)")
	cmd.AddCommand(newBenchScreenCmd())
	return cmd
}
