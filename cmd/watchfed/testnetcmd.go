package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/watchfed/watchfed/testnet"
)

func newTestnetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "Run a local federation of N agencies on loopback, for trying things and for tests",
		Example: `  watchfed testnet up --nodes 3 --dir ./tn --detach
  . ./tn/FR-SBDU/env && watchfed peers list
  watchfed testnet down --dir ./tn`,
	}
	var o testnet.Options
	up := &cobra.Command{
		Use:   "up",
		Short: "Start the nodes (foreground until Ctrl-C, or --detach) and form the federation",
		Long: `Start N nodes of N agencies on loopback. Each agency's data, certificates, node.yaml
and log lie under DIR/<agency>/, beside DIR/<agency>/env: export lines for a
certificate of that agency with the operator and analyst roles.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nt, err := testnet.Prepare(o)
			if err != nil {
				return usageError{err}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			if err := nt.Start(ctx); err != nil {
				stopCtx, c := context.WithTimeout(context.Background(), 20*time.Second)
				defer c()
				_ = testnet.Stop(stopCtx, o.Dir)
				return err
			}
			for _, m := range nt.Members {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t. %s\n", m.Agency, m.Addr, filepath.Join(m.Dir, "env"))
			}
			if o.Detach {
				return nil
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "federation up; Ctrl-C stops it")
			<-cmd.Context().Done()
			stopCtx, c := context.WithTimeout(context.Background(), 30*time.Second)
			defer c()
			return testnet.Stop(stopCtx, o.Dir)
		},
	}
	up.Flags().IntVar(&o.Nodes, "nodes", 3, "number of agencies")
	up.Flags().StringVar(&o.Dir, "dir", "testnet-data", "directory for the agencies' data")
	up.Flags().IntVar(&o.BasePort, "base-port", 0, "node i listens on BASE+i (default: free ports)")
	up.Flags().BoolVar(&o.Detach, "detach", false, "return once the federation has a leader; stop it with `testnet down`")
	var dir string
	down := &cobra.Command{
		Use:   "down",
		Short: "Stop the nodes of a detached testnet",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			return testnet.Stop(ctx, dir)
		},
	}
	down.Flags().StringVar(&dir, "dir", "testnet-data", "directory of the testnet")
	cmd.AddCommand(up, down)
	return cmd
}
