package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/watchfed/watchfed/node"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func newAuditCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the node's hash-chained audit log (operator role)",
		Example: `  watchfed audit list --after 100 --limit 20
  watchfed audit verify
  watchfed audit verify --data-dir ./watchfed-data   # offline, node stopped
  watchfed audit anchors`,
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
		Short: "Walk the whole chain and check it against its anchors; name the first broken link (exit 1 if broken)",
		Long: `Walk the whole audit chain, name the first broken link, and check the chain
against its anchors (the last ones in the federation log and in the node's
anchor file): a chain shorter than, or different from, what was anchored is
broken, and the report names the last anchored event. Anchors in
the federation log (protocol 5) are held by partners; a node outside a
federation keeps them in its own file (audit-anchors in the data directory),
which protects less: an insider who can write the data directory can rewrite
both.`,
		Example: `  watchfed audit verify
  watchfed audit verify --data-dir ./watchfed-data   # offline, node stopped`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res *pb.VerifyAuditLogResponse
			if dataDir != "" {
				if err := cf.check(); err != nil {
					return err
				}
				var err error
				if res, err = node.VerifyAuditOffline(cmd.Context(), dataDir); err != nil {
					return err
				}
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
			} else {
				if res.Ok {
					fmt.Fprintf(cmd.OutOrStdout(), "audit log intact: %d events, head %s\n", res.Checked, hex.EncodeToString(res.HeadHash))
					if res.AnchoredSeq > 0 {
						fmt.Fprintf(cmd.OutOrStdout(), "matches its last anchor: event %d (%s)\n", res.AnchoredSeq, res.AnchoredAt)
					}
				}
				if res.AnchorNote != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "note: %s\n", res.AnchorNote)
				}
			}
			if !res.Ok {
				return fmt.Errorf("audit log broken at event %d: %s (%d events checked)", res.FirstBrokenSeq, res.Reason, res.Checked)
			}
			return nil
		},
	}
	verify.Flags().StringVar(&dataDir, "data-dir", "", "verify the store in this data directory directly (the node must be stopped)")
	var agency string
	anchors := &cobra.Command{
		Use:   "anchors",
		Short: "Show the audit anchors the federation log holds: each member's last chain heads (no audit content)",
		Example: `  watchfed audit anchors
  watchfed audit anchors --agency FR-SBDU -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewAuditServiceClient(conn).ListAuditAnchors(ctx, &pb.ListAuditAnchorsRequest{Agency: agency})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), protoList(resp.Anchors))
				}
				rows := make([][]string, len(resp.Anchors))
				for i, a := range resp.Anchors {
					rows[i] = []string{a.Agency, fmt.Sprint(a.Sequence), hex.EncodeToString(a.HeadHash), fmt.Sprint(a.LogIndex), fmtTime(a.SignedAt)}
				}
				return table(cmd.OutOrStdout(), "AGENCY\tSEQ\tHEAD\tLOG INDEX\tSIGNED", rows)
			})
		},
	}
	anchors.Flags().StringVar(&agency, "agency", "", "only this agency's anchors")
	accept := &cobra.Command{
		Use:   "accept-restore",
		Short: "Accept the audit events a restore from a backup lost: the replaced chain's anchors the restored chain fails are superseded (audited)",
		Long: `After snapshot restore, the restored audit chain ends where the backup was taken:
the anchors of the replaced chain (in the federation log, and the anchor file the
restore set aside as audit-anchors.before-restore-TIME) reach further, so audit
verify reports the chain broken and the node anchors it no more. accept-restore
records that the loss is accepted: those anchors are left out of verification and
anchoring from then on, anchoring resumes, and the acceptance is an audit event.
The anchors stay where they are (partners keep theirs), as evidence of how far the
replaced chain went. Exit 6 if no restore waits to be accepted.`,
		Example: `  watchfed audit anchors accept-restore
  watchfed audit anchors accept-restore -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewAuditServiceClient(conn).AcceptRestore(ctx, &pb.AcceptRestoreRequest{})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), resp)
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "restore accepted (%s): the chain goes on from event %d\n", strings.Join(resp.BeforeRestore, ", "), resp.HeadSeq)
				for _, a := range resp.Superseded {
					fmt.Fprintf(w, "superseded: the anchor of event %d (signed %s)\n", a.Sequence, fmtTime(a.SignedAt))
				}
				return nil
			})
		},
	}
	anchors.AddCommand(accept)
	cmd.AddCommand(list, verify, anchors)
	return cmd
}
