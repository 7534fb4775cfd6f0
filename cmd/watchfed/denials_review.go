package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// newDenialsDueCmd lists the denials whose periodic review is due.
func newDenialsDueCmd(cf *clientFlags) *cobra.Command {
	var within string
	cmd := &cobra.Command{
		Use:   "due",
		Short: "This agency's denials in force whose review is due within --within, or overdue",
		Example: `  watchfed denials due                 # due today or overdue
  watchfed denials due --within 90d -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			days, err := parseDays(within)
			if err != nil {
				return usagef("--within: %v", err)
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewRecordServiceClient(conn).ListDueDenials(ctx, &pb.ListDueDenialsRequest{WithinDays: days})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), protoList(resp.Denials))
				}
				rows := make([][]string, len(resp.Denials))
				for i, d := range resp.Denials {
					r := d.Record
					when := fmt.Sprintf("in %d days", d.DaysLeft)
					switch {
					case d.Overdue:
						when = fmt.Sprintf("OVERDUE by %d days", -d.DaysLeft)
					case d.DaysLeft == 0:
						when = "today"
					}
					rows[i] = []string{r.Id, r.GetDenial().ReviewBy, when, recordStatus(r), r.GetDenial().ControlListEntry, r.GetDenial().Destination, r.GetSubject().GetName()}
				}
				return table(cmd.OutOrStdout(), "ID\tREVIEW_BY\tDUE\tSTATUS\tCONTROL_LIST_ENTRY\tDESTINATION\tNAME", rows)
			})
		},
	}
	cmd.Flags().StringVar(&within, "within", "0d", "look ahead this many days (e.g. 90d)")
	return cmd
}

// parseDays reads "90d" or "90" as a number of days.
func parseDays(s string) (uint32, error) {
	n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(s), "d"), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number of days like 90d", s)
	}
	return uint32(n), nil
}

// newDenialsReviewCmd records the periodic review of a denial.
func newDenialsReviewCmd(cf *clientFlags) *cobra.Command {
	var renew, revoke bool
	var reason, reviewBy string
	var expected uint64
	cmd := &cobra.Command{
		Use:   "review ID",
		Short: "Record a denial's review: --renew (until --review-by, default three years) or --revoke",
		Example: `  watchfed denials review DE-BAFA/01J... --renew --reason "end user still diverting to the programme"
  watchfed denials review DE-BAFA/01J... --revoke --reason "end user dissolved"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if renew == revoke {
				return usagef("give exactly one of --renew and --revoke")
			}
			outcome := pb.ReviewOutcome_REVIEW_OUTCOME_RENEW
			if revoke {
				outcome = pb.ReviewOutcome_REVIEW_OUTCOME_REVOKE
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewRecordServiceClient(conn).ReviewDenial(ctx, &pb.ReviewDenialRequest{
					Id: args[0], Outcome: outcome, Reason: reason, ReviewBy: reviewBy, ExpectedVersion: expected,
				})
				if err != nil {
					return err
				}
				return cf.printWritten(cmd, resp.Record, resp.LogIndex, resp.NotShared)
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&renew, "renew", false, "the denial stays in force until the next review")
	fl.BoolVar(&revoke, "revoke", false, "the denial is no longer justified")
	fl.StringVar(&reason, "reason", "", "the review's reasoning, notified to partners (required)")
	fl.StringVar(&reviewBy, "review-by", "", "with --renew: next review date YYYY-MM-DD (default: three years from today)")
	fl.Uint64Var(&expected, "expected-version", 0, "fail if the denial changed since this version")
	return cmd
}
