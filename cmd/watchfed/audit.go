package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/watchfed/watchfed/node"
	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func newAuditCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the node's hash-chained audit log (operator role)",
		Example: `  watchfed audit list --after 100 --limit 20
  watchfed audit verify
  watchfed audit verify --data-dir ./watchfed-data   # offline, node stopped`,
	}
	addClientFlags(cmd, &cf)
	var after uint64
	var limit int32
	list := &cobra.Command{
		Use:   "list",
		Short: "Show audit events: who, what, when, outcome",
		Example: `  watchfed audit list --after 100 --limit 20
  watchfed audit list -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewAuditServiceClient(conn).ListAuditEvents(ctx, &pb.ListAuditEventsRequest{AfterSeq: after, Limit: limit})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), protoList(resp.Events))
				}
				rows := make([][]string, len(resp.Events))
				for i, e := range resp.Events {
					rows[i] = []string{fmt.Sprint(e.Seq), fmtTime(e.Time), e.Agency + "/" + e.Actor, e.Action, e.Target, e.Outcome, e.Detail}
				}
				return table(cmd.OutOrStdout(), "SEQ\tTIME\tWHO\tACTION\tTARGET\tOUTCOME\tDETAIL", rows)
			})
		},
	}
	list.Flags().Uint64Var(&after, "after", 0, "events after this sequence number")
	list.Flags().Int32Var(&limit, "limit", 100, "at most this many events (max 1000)")
	var dataDir string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Walk the whole chain; name the first broken link (exit 1 if broken)",
		Example: `  watchfed audit verify
  watchfed audit verify --data-dir ./watchfed-data   # offline, node stopped`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res *pb.VerifyAuditLogResponse
			if dataDir != "" {
				if err := cf.check(); err != nil {
					return err
				}
				st, err := store.Open(filepath.Join(dataDir, node.StoreFile), store.Options{})
				if err != nil {
					return err
				}
				r, err := st.VerifyAudit(cmd.Context())
				st.Close()
				if err != nil {
					return err
				}
				res = &pb.VerifyAuditLogResponse{Ok: r.OK, Checked: r.Checked, FirstBrokenSeq: r.FirstBrokenSeq, Reason: r.Reason, HeadHash: r.HeadHash}
			} else {
				err := cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
					var err error
					res, err = pb.NewAuditServiceClient(conn).VerifyAuditLog(ctx, &pb.VerifyAuditLogRequest{})
					return err
				})
				if err != nil {
					return err
				}
			}
			if cf.output == "json" {
				if err := writeJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else if res.Ok {
				fmt.Fprintf(cmd.OutOrStdout(), "audit log intact: %d events, head %s\n", res.Checked, hex.EncodeToString(res.HeadHash))
			}
			if !res.Ok {
				return fmt.Errorf("audit log broken at event %d: %s (%d events checked)", res.FirstBrokenSeq, res.Reason, res.Checked)
			}
			return nil
		},
	}
	verify.Flags().StringVar(&dataDir, "data-dir", "", "verify the store in this data directory directly (the node must be stopped)")
	cmd.AddCommand(list, verify)
	return cmd
}
