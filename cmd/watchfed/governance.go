package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

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

// newRebindCmd is `watchfed peers rebind AGENCY`: a proposal to bind an
// agency id to another CA or new keys.
func newRebindCmd(cf *clientFlags) *cobra.Command {
	var caCert, keys string
	cmd := &cobra.Command{
		Use:   "rebind AGENCY",
		Short: "Propose to bind an agency id to another CA certificate or new keys (a member back with new keys)",
		Long: `An agency id stays bound to the CA and keys it was first registered with. A member whose node
started afresh with new keys (or a removed agency re-invited under a new CA) needs a rebind: a
proposal the other members approve (watchfed proposals approve ID). Its operator hands over its
new public keys (watchfed federation keys --out FILE on its node) and, for a new CA, the CA
certificate, out of band, as for an invitation.`,
		Example: `  watchfed peers rebind NL-CDIU --keys nl-keys.json
  watchfed peers rebind NL-CDIU --ca-cert nl-ca.pem
  watchfed peers rebind NL-CDIU --ca-cert nl-ca.pem --keys nl-keys.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &pb.RebindPeerRequest{Agency: args[0]}
			if caCert == "" && keys == "" {
				return usagef("give --ca-cert, --keys or both")
			}
			if caCert != "" {
				ca, err := os.ReadFile(caCert)
				if err != nil {
					return usagef("--ca-cert: %v", err)
				}
				req.CaCert = ca
			}
			if keys != "" {
				m, err := readKeysFile(keys)
				if err != nil {
					return usagef("--keys: %v", err)
				}
				if m.Agency != args[0] {
					return usagef("--keys: %s holds the keys of %s, not %s", keys, cell(m.Agency), cell(args[0]))
				}
				req.SigningKey, req.SealingKey = m.SigningKey, m.SealingKey
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewFederationServiceClient(conn).RebindPeer(ctx, req)
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), toProposalJSON(resp.Proposal))
				}
				printProposal(cmd.OutOrStdout(), resp.Proposal)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&caCert, "ca-cert", "", "the agency's new CA certificate, exchanged out of band")
	cmd.Flags().StringVar(&keys, "keys", "", "the agency's new public keys, as its node's `watchfed federation keys` wrote them")
	return cmd
}

// newKeysCmd is `watchfed federation keys`: this agency's public keys, for
// a partner's operator to propose a rebind.
func newKeysCmd(cf *clientFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:     "keys",
		Short:   "Write this agency's public keys (JSON), for a partner to propose a rebind (peers rebind --keys)",
		Example: `  watchfed federation keys --out nl-keys.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				st, err := pb.NewFederationServiceClient(conn).GetStatus(ctx, &pb.GetStatusRequest{})
				if err != nil {
					return err
				}
				if len(st.SigningKey) == 0 {
					return fmt.Errorf("the node does not say its keys (a release before this command)")
				}
				data, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true}.Marshal(
					&pb.Member{Agency: st.Agency, SigningKey: st.SigningKey, SealingKey: st.SealingKey})
				if err != nil {
					return err
				}
				if out == "" || out == "-" {
					_, err = cmd.OutOrStdout().Write(append(escapeJSON(data), '\n'))
					return err
				}
				return os.WriteFile(out, append(data, '\n'), 0o644)
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write them to this file (default stdout)")
	return cmd
}

// readKeysFile reads an agency's public keys as `federation keys` wrote
// them.
func readKeysFile(path string) (*pb.Member, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := &pb.Member{}
	if err := protojson.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.Agency == "" || len(m.SigningKey) == 0 || len(m.SealingKey) == 0 {
		return nil, fmt.Errorf("%s: needs agency, signing_key and sealing_key", path)
	}
	return m, nil
}
