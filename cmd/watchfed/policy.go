package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/policy"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Check a sharing policy file, and explain what goes to which partner"}
	cmd.AddCommand(newPolicyCheckCmd(), newPolicyExplainCmd())
	return cmd
}

// checkResult is `policy check -o json`.
type checkResult struct {
	File     string         `json:"file"`
	OK       bool           `json:"ok"`
	Agency   string         `json:"agency"`
	Partners []string       `json:"partners"`
	Errors   []checkFinding `json:"errors"`
}

type checkFinding struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

func newPolicyCheckCmd() *cobra.Command {
	var output, members string
	cmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a policy file offline: every error with its line and reason (exit 2 if any)",
		Example: `  watchfed policy check policy.yaml
  watchfed policy check policy.yaml --members FR-SBDU,NL-CDIU   # also refuse partners outside these
  watchfed policy check policy.yaml -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return usagef("--output: %q is not table or json", output)
			}
			o := policy.Options{ValidID: record.ValidateAgencyID}
			if members != "" {
				o.Members = strings.Split(members, ",")
			}
			pol, err := policy.Load(args[0], o)
			res := checkResult{File: args[0], OK: err == nil, Partners: []string{}, Errors: []checkFinding{}}
			var es policy.Errors
			switch {
			case err == nil:
				res.Agency, res.Partners = pol.Agency, pol.PartnerIDs()
			case errors.As(err, &es):
				for _, e := range es {
					res.Errors = append(res.Errors, checkFinding{Line: e.Line, Reason: e.Reason})
				}
			default:
				return usageError{err}
			}
			if output == "json" {
				if err := writeJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else if res.OK {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: agency %s shares with %d partners (%s)\n", args[0], res.Agency, len(res.Partners), strings.Join(res.Partners, ", "))
			}
			if !res.OK {
				if output == "json" {
					return usageError{fmt.Errorf("%s: %d errors", args[0], len(es))}
				}
				return usageError{es}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output: table or json")
	cmd.Flags().StringVar(&members, "members", "", "comma-separated federation members: a partner outside them is an error")
	return cmd
}

func newPolicyExplainCmd() *cobra.Command {
	var cf clientFlags
	var partner string
	cmd := &cobra.Command{
		Use:   "explain RECORD_ID",
		Short: "Why a record goes, or does not go, to each partner under the policy in force (analyst or operator)",
		Example: `  watchfed policy explain DE-BAFA/01JD8X3Q5M7ZK2V9W4T6R1N0PB
  watchfed policy explain DE-BAFA/01JD8X3Q5M7ZK2V9W4T6R1N0PB --partner FR-SBDU -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewPolicyServiceClient(conn).ExplainPolicy(ctx, &pb.ExplainPolicyRequest{RecordId: args[0], Partner: partner})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), resp)
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "%s v%d under %s\n", resp.RecordId, resp.Version, orNone(resp.PolicyFile))
				if resp.PolicyError != "" {
					fmt.Fprintf(w, "policy error: %s\n", resp.PolicyError)
				}
				rows := make([][]string, 0, len(resp.Decisions))
				for _, d := range resp.Decisions {
					share := "no"
					if d.Share {
						share = "yes"
					}
					held := "-"
					if d.HoldsVersion > 0 {
						held = fmt.Sprintf("v%d", d.HoldsVersion)
					}
					marking := policy.MarkingName(d.Marking)
					if d.OriginatorControl {
						marking += " ORCON"
					}
					if !d.Share {
						marking = "-"
					}
					rows = append(rows, []string{d.Partner, share, marking, orNone(strings.Join(d.Redacted, ",")), held, strings.Join(d.Reasons, "; ")})
				}
				return table(w, "PARTNER\tSHARE\tMARKING\tREDACTED\tHOLDS\tREASONS", rows)
			})
		},
	}
	addClientFlags(cmd, &cf)
	cmd.Flags().StringVar(&partner, "partner", "", "explain for this partner only")
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
