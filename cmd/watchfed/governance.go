package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Governance on the command line: membership proposals and their
// approvals, and leaving the federation (from protocol 3; see the README's
// operating section).

// proposalJSON is a proposal as `proposals list -o json` prints it: the
// keys are the CLI's contract.
type proposalJSON struct {
	ID         string `json:"id"`
	Action     string `json:"action"`
	Agency     string `json:"agency"`
	ProposedBy string `json:"proposed_by"`
	Approvals  uint32 `json:"approvals"`
	Needed     uint32 `json:"needed"`
	State      string `json:"state"`
	ExpiresAt  string `json:"expires_at"`
}

func toProposalJSON(p *pb.Proposal) proposalJSON {
	return proposalJSON{ID: p.Id, Action: p.Action, Agency: p.Agency, ProposedBy: p.ProposedBy,
		Approvals: p.Approvals, Needed: p.Needed, State: p.State, ExpiresAt: fmtTime(p.ExpiresAt)}
}

const proposalsHeader = "ID\tACTION\tAGENCY\tPROPOSED_BY\tAPPROVALS\tNEEDED\tSTATE\tEXPIRES_AT"

func proposalRow(p *pb.Proposal) []string {
	return []string{p.Id, p.Action, p.Agency, p.ProposedBy, fmt.Sprint(p.Approvals), fmt.Sprint(p.Needed), p.State, fmtTime(p.ExpiresAt)}
}

// printProposal says in one line what became of a proposal this command
// made or decided, and what the other agencies must do if it waits.
func printProposal(w io.Writer, p *pb.Proposal) {
	what := p.Action + " " + p.Agency
	if p.Agency == "" {
		what = p.Action + " (" + p.Detail + ")"
	}
	fmt.Fprintf(w, "proposal %s: %s, proposed by %s: %d of %d approvals, %s\n",
		cell(p.Id), cell(what), cell(p.ProposedBy), p.Approvals, p.Needed, cell(p.State))
	if p.State == "pending" {
		fmt.Fprintf(w, "it takes effect once approved by enough member agencies (each runs: watchfed proposals approve %s); it expires at %s\n",
			cell(p.Id), fmtTime(p.ExpiresAt))
	}
}

func newProposalsCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "proposals",
		Short: "List, approve and reject membership proposals (operator role)",
		Long: `From federation protocol 3, adding a member, removing another, promoting a non-voter,
re-binding an agency id and changing the approval threshold are proposals: they take effect
once enough member agencies approved them, each approval signed by that agency's key.`,
		Example: `  watchfed proposals list
  watchfed proposals approve 42
  watchfed proposals reject 42`,
	}
	addClientFlags(cmd, &cf)
	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "Pending proposals: id, action, agency, proposer, approvals of those needed, state, expiry",
		Example: `  watchfed proposals list
  watchfed proposals list --all -o json | jq '.[] | select(.state == "pending")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewFederationServiceClient(conn).ListProposals(ctx, &pb.ListProposalsRequest{All: all})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					out := make([]proposalJSON, len(resp.Proposals))
					for i, p := range resp.Proposals {
						out[i] = toProposalJSON(p)
					}
					return writeJSON(cmd.OutOrStdout(), out)
				}
				rows := make([][]string, len(resp.Proposals))
				for i, p := range resp.Proposals {
					rows[i] = proposalRow(p)
				}
				return table(cmd.OutOrStdout(), proposalsHeader, rows)
			})
		},
	}
	list.Flags().BoolVar(&all, "all", false, "include applied, rejected and expired proposals")
	decide := func(approve bool) *cobra.Command {
		verb, example := "reject", "  watchfed proposals reject 42"
		if approve {
			verb, example = "approve", "  watchfed proposals approve 42"
		}
		return &cobra.Command{
			Use:     verb + " ID",
			Short:   "Sign this agency's " + map[bool]string{true: "approval", false: "rejection"}[approve] + " of a pending proposal (ID as proposals list shows it)",
			Example: example,
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
					c := pb.NewFederationServiceClient(conn)
					var p *pb.Proposal
					if approve {
						resp, err := c.ApproveProposal(ctx, &pb.ApproveProposalRequest{Id: args[0]})
						if err != nil {
							return err
						}
						p = resp.Proposal
					} else {
						resp, err := c.RejectProposal(ctx, &pb.RejectProposalRequest{Id: args[0]})
						if err != nil {
							return err
						}
						p = resp.Proposal
					}
					if cf.output == "json" {
						return writeJSON(cmd.OutOrStdout(), toProposalJSON(p))
					}
					printProposal(cmd.OutOrStdout(), p)
					return nil
				})
			},
		}
	}
	cmd.AddCommand(list, decide(true), decide(false))
	return cmd
}

// newLeaveCmd is `watchfed federation leave`.
func newLeaveCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "leave",
		Short: "Take this agency out of the federation, at once, on its own word (signed by the agency)",
		Long: `Take this agency out of the federation. It needs no one's approval. Partners publish nothing
more to it (their keys rotate), and its node leaves raft's configuration. Joining again takes a
new invitation, approved like any other.`,
		Example: "  watchfed federation leave",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewFederationServiceClient(conn).LeaveFederation(ctx, &pb.LeaveFederationRequest{})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), resp)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "left the federation at log index %d\n", resp.LogIndex)
				return nil
			})
		},
	}
}
