package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/watchfed/watchfed/node"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func newSnapshotCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Back up a node and restore it (disaster recovery; operator role)",
		Long: `snapshot save writes a backup of the running node: its records, audit log and
received entries (node.db), the federation state (fsm.db) and the node's keys, as a tar.
Keep it as secret as the node: it holds the keys.

snapshot restore unpacks a backup into an empty data directory of the stopped node.
Then start the node as usual, without --recover: it rejoins its federation, which still
counts it a member, and catches up on what it missed (it votes again once it has).
Only when the federation's quorum is lost for good (no leader can be elected) is a node
started with --recover, to carry on alone; a node started with --recover refuses if a
live quorum of its federation answers.`,
		Example: `  watchfed snapshot save de-bafa.backup
  watchfed snapshot restore de-bafa.backup --data-dir /var/lib/watchfed --agency DE-BAFA
  watchfed node --config /etc/watchfed/node.yaml`,
	}
	addClientFlags(cmd, &cf)
	cmd.AddCommand(&cobra.Command{
		Use:     "save FILE",
		Short:   "Write a backup of the running node to FILE",
		Example: `  watchfed snapshot save de-bafa.backup`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				stream, err := pb.NewFederationServiceClient(conn).SaveSnapshot(ctx, &pb.SaveSnapshotRequest{})
				if err != nil {
					return err
				}
				tmp := args[0] + ".partial"
				f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
				if err != nil {
					return err
				}
				var n int64
				for {
					resp, err := stream.Recv()
					if err == io.EOF {
						break
					}
					if err != nil {
						f.Close()
						os.Remove(tmp)
						return err
					}
					k, err := f.Write(resp.Chunk)
					if err != nil {
						f.Close()
						return err
					}
					n += int64(k)
				}
				if err := f.Sync(); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				if err := os.Rename(tmp, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "backup of %d bytes written to %s\n", n, args[0])
				return nil
			})
		},
	})
	var dataDir, agency, advertise string
	restore := &cobra.Command{
		Use:     "restore FILE",
		Short:   "Unpack a backup into an empty data directory (node stopped); then start the node as usual: it rejoins its federation",
		Example: `  watchfed snapshot restore de-bafa.backup --data-dir /var/lib/watchfed --agency DE-BAFA`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dataDir == "" || agency == "" {
				return usagef("--data-dir and --agency are required")
			}
			f, err := os.Open(args[0])
			if err != nil {
				return usageError{err}
			}
			defer f.Close()
			if err := node.RestoreBackup(f, dataDir, agency); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return nil
		},
	}
	restore.Flags().StringVar(&dataDir, "data-dir", "", "empty data directory to restore into")
	restore.Flags().StringVar(&agency, "agency", "", "the node's agency id")
	// The address is the node's configuration's, read when it starts; the
	// flag stays so that earlier scripts still run.
	restore.Flags().StringVar(&advertise, "advertise", "", "unused: the node's address comes from its configuration")
	_ = restore.Flags().MarkDeprecated("advertise", "the restored node takes its address from its configuration")
	cmd.AddCommand(restore)
	return cmd
}
