package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/watchfed/watchfed/testnet/bench"
)

func newBenchScreenCmd() *cobra.Command {
	cfg := bench.ScreenDefaults()
	cmd := &cobra.Command{
		Use:   "screen",
		Short: "Measure screening: queries per second, latency, memory, recall and precision",
		Long: `Start a node in this process and screen names through its gRPC API (mutual TLS on
loopback), on two datasets: the OFAC SDN 2024 list and the UN list imported through
ImportService (skipped with a message when --data lacks them), and --synthetic names
written to the node's store, indexed when the node starts. For each number of
concurrent clients it prints screens per second and p50/p99 latency over a mix of
variant and ordinary names; then the live heap after loading, and the quality
evaluation, on two splits of the dataset's entries: a tuning split (entries already on
the OFAC SDN list of 2021, and the even rows of the ordinary names) and a held-out split
(the others: entries added since, the UN list, the odd rows), each with its own seed.
Per kind of variant (exact, one and two typos, reordered, a dropped middle name,
Cyrillic script, another legal form, particles joined or split, repeated words,
initials, an initial for the surname, Arabic script without short vowels for parties
of programs and lands that write it) it prints recall@10 and top-1, screened with
threshold 0; per kind of ordinary name on no list (persons and companies of 60 locales
from --data's ordinary-names, or a committed excerpt; a common first name before a
listed surname one letter off) how many scored 0.8 or more and 0.9 or more; and so for
a third set, fresh, of ordinary names built apart from that file (common given names of
many languages near a listed person's given name or before a listed surname, surnames
with a relative's ending, business names).`,
		Example: `  watchfed bench screen
  watchfed bench screen --synthetic 0 --duration 5s         # real lists only
  watchfed bench screen --data /none --synthetic 100000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(cfg.Clients) == 0 {
				return usagef("--clients: at least one number")
			}
			for _, n := range cfg.Clients {
				if n < 1 {
					return usagef("--clients: %d is not a number of clients", n)
				}
			}
			if cfg.Duration < time.Second {
				return usagef("--duration: at least 1s")
			}
			if cfg.Synthetic < 0 || cfg.Variants < 1 || cfg.PerKind < 1 {
				return usagef("--synthetic: not negative; --variants and --per-kind: at least 1")
			}
			cfg.Progress = cmd.ErrOrStderr()
			runs, err := bench.Screen(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "machine: %s\n\n", bench.Machine())
			return bench.WriteScreenTable(out, runs)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Data, "data", cfg.Data, "directory of the real list files (ofac-sdn-2024/, un/; ofac-sdn-2021/ and ordinary-names/ for the evaluation)")
	f.IntVar(&cfg.Synthetic, "synthetic", cfg.Synthetic, "synthetic names in the second dataset (0 skips it)")
	f.IntSliceVar(&cfg.Clients, "clients", cfg.Clients, "numbers of concurrent clients, one row each")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time of each row (after a warm-up of a tenth)")
	f.IntVar(&cfg.Variants, "variants", cfg.Variants, "variant queries in the load mix")
	f.IntVar(&cfg.PerKind, "per-kind", cfg.PerKind, "queries of each kind in each split of the quality evaluation")
	f.StringVar(&cfg.Dir, "dir", "", "directory for the node's data (default: a temporary one, removed)")
	return cmd
}
