package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
certificate of that agency with the operator and analyst roles. A directory that
holds a stopped testnet starts again on its data; one whose nodes (some or all)
still run is refused, naming them (exit 6): use testnet down or testnet restart.`,
		Example: `  watchfed testnet up --nodes 3 --dir ./tn --detach
  watchfed testnet up --nodes 5 --dir ./tn5 --base-port 7400   # foreground; Ctrl-C stops every node`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Checked before Prepare touches the directory, and again by Start.
			if err := testnet.NotRunning(o.Dir); err != nil {
				return conflictError{err}
			}
			nt, err := testnet.Prepare(o)
			if err != nil {
				return usageError{err}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			if err := nt.Start(ctx); err != nil {
				if _, running := errors.AsType[*testnet.RunningError](err); running {
					return conflictError{err} // started by someone else meanwhile: not ours to stop
				}
				stopCtx, c := context.WithTimeout(context.Background(), 20*time.Second)
				defer c()
				_, _ = testnet.Stop(stopCtx, o.Dir)
				return err
			}
			for _, m := range nt.Members {
				printMember(cmd, m)
			}
			if o.Detach {
				return nil
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "federation up; Ctrl-C stops it")
			<-cmd.Context().Done()
			stopCtx, c := context.WithTimeout(context.Background(), 30*time.Second)
			defer c()
			return stop(stopCtx, cmd, o.Dir)
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
		Long: `Stop every node of the testnet in DIR: the processes that run
` + "`watchfed node --config DIR/<agency>/node.yaml`" + `, whatever the pid files say.
Each gets SIGTERM, and SIGKILL if it still runs ` + testnet.StopGrace.String() + ` later; down returns
once they have exited. A pid file that names no such process (its node died,
or its pid went to another process) is reported as stale and removed; its pid
is never signalled.`,
		Example: `  watchfed testnet down --dir ./tn`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			return stop(ctx, cmd, dir)
		},
	}
	down.Flags().StringVar(&dir, "dir", "testnet-data", "directory of the testnet")
	restart := &cobra.Command{
		Use:   "restart AGENCY",
		Short: "Restart one agency's node of a detached testnet on its data, and wait until it serves",
		Long: `Stop the node of AGENCY in the testnet in DIR if it runs (SIGTERM), start it again
on its data, detached, and return once it serves. Its log goes on in DIR/<agency>/node.log.`,
		Example: `  watchfed testnet restart --dir ./tn FR-SBDU`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(filepath.Join(dir, args[0], "node.yaml")); err != nil {
				return usagef("%s: no agency %s in this testnet", dir, args[0])
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			m, err := testnet.RestartNode(ctx, testnet.Options{Dir: dir}, args[0])
			if err != nil {
				return err
			}
			printMember(cmd, m)
			return nil
		},
	}
	restart.Flags().StringVar(&dir, "dir", "testnet-data", "directory of the testnet")
	cmd.AddCommand(up, down, restart, newTestnetComposeCmd())
	return cmd
}

// printMember prints the line of one agency: id, address and its env file.
func printMember(cmd *cobra.Command, m *testnet.Member) {
	fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t. %s\n", m.Agency, m.Addr, filepath.Join(m.Dir, "env"))
}

// stop stops dir's nodes and says which, and which pid files were stale.
func stop(ctx context.Context, cmd *cobra.Command, dir string) error {
	rep, err := testnet.Stop(ctx, dir)
	for _, s := range rep.Stale {
		fmt.Fprintln(cmd.ErrOrStderr(), "watchfed:", s)
	}
	for _, p := range rep.Stopped {
		if slices.Contains(rep.Killed, p) {
			fmt.Fprintf(cmd.ErrOrStderr(), "stopped %s: killed (SIGKILL), still running %v after SIGTERM\n", p, testnet.StopGrace)
			continue
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "stopped %s\n", p)
	}
	return err
}

func newTestnetComposeCmd() *cobra.Command {
	var (
		dir, project, image string
		nodes, basePort     int
		prepareOnly         bool
	)
	cmd := &cobra.Command{
		Use:   "compose",
		Short: "A federation in containers: write DIR/compose.yaml and the agencies' files, start it, form the federation",
		Long: `Write DIR/compose.yaml (one container of IMAGE per agency on one network) and for each
agency DIR/<agency>/: a development CA, a node certificate for its service name, node.yaml,
policy.yaml and a client certificate with its env file (the node is published on
127.0.0.1:BASE+i). Then start the containers (docker compose, or docker-compose), found
the federation on the first agency and invite the others, whose containers restart to join.
Later, ` + "`docker compose -f DIR/compose.yaml down|up -d`" + ` stops and starts the same federation.`,
		Example: `  CGO_ENABLED=0 go build -trimpath -o watchfed ./cmd/watchfed && docker build -t watchfed .
  watchfed testnet compose --dir fed
  . fed/FR-SBDU/env && watchfed peers list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			c, err := testnet.PrepareCompose(abs, project, image, nodes, basePort)
			if err != nil {
				return usageError{err}
			}
			if !prepareOnly {
				ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Minute)
				defer cancel()
				if err := c.Up(ctx); err != nil {
					return err
				}
			}
			for i, m := range c.Members {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s\t. %s\n", m.Agency, c.Container(i), m.Addr, filepath.Join(m.Dir, "env"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "federation", "directory for compose.yaml and the agencies' files")
	cmd.Flags().StringVar(&project, "project", "watchfed", "compose project: containers are PROJECT-<agency>")
	cmd.Flags().StringVar(&image, "image", "watchfed", "the image built from the Dockerfile")
	cmd.Flags().IntVar(&nodes, "nodes", 3, "number of agencies")
	cmd.Flags().IntVar(&basePort, "base-port", 7400, "agency i is published on 127.0.0.1:BASE+i")
	cmd.Flags().BoolVar(&prepareOnly, "prepare-only", false, "only write the files")
	return cmd
}
