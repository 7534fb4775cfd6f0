package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/watchfed/watchfed/policy"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func newFederationCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{Use: "federation", Short: "Found or leave a federation (operator role)"}
	addClientFlags(cmd, &cf)
	var approvals string
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Bootstrap a new federation with this node as its only member",
		Example: `  watchfed federation init
  watchfed federation init --approvals all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewFederationServiceClient(conn).InitFederation(ctx, &pb.InitFederationRequest{Approvals: approvals})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), resp.Member)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "federation founded by %s at %s\n", cell(resp.Member.Agency), cell(resp.Member.Address))
				return nil
			})
		},
	}
	initCmd.Flags().StringVar(&approvals, "approvals", "majority", "how many member agencies must approve a membership proposal: majority, all or a number")
	cmd.AddCommand(initCmd, newLeaveCmd(&cf), newKeysCmd(&cf))
	return cmd
}

func newPeersCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "List, invite and remove federation members (operator role)",
		Example: `  watchfed peers list
  watchfed peers invite --agency FR-SBDU --address fr.example:7400 --ca-cert fr-ca.pem --out invite.json
  watchfed peers remove FR-SBDU
  watchfed peers rebind FR-SBDU --keys fr-keys.json`,
	}
	addClientFlags(cmd, &cf)
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "Every member: address, voter, role, reachable, applied index, lag behind the leader",
		Example: `  watchfed peers list
  watchfed peers list -o json | jq '.[] | select(.reachable | not)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewFederationServiceClient(conn).ListPeers(ctx, &pb.ListPeersRequest{})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), protoList(resp.Peers))
				}
				rows := make([][]string, len(resp.Peers))
				for i, p := range resp.Peers {
					rows[i] = []string{p.Id, p.Address, strconv.FormatBool(p.Voter), p.Role, strconv.FormatBool(p.Reachable),
						fmt.Sprint(p.AppliedIndex), fmt.Sprint(p.Lag), fmtTime(p.LastContact)}
				}
				return table(cmd.OutOrStdout(), "ID\tADDRESS\tVOTER\tROLE\tREACHABLE\tAPPLIED\tLAG\tLAST_CONTACT", rows)
			})
		},
	})
	var agency, address, caCert, out string
	var nonVoter bool
	invite := &cobra.Command{
		Use:     "invite",
		Short:   "Register (from protocol 3: propose) another agency's CA and address; write the invitation its node starts with (--join)",
		Example: `  watchfed peers invite --agency BE-FPS --address be.example:7400 --ca-cert be-ca.pem --out be-invite.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := os.ReadFile(caCert)
			if err != nil {
				return usagef("--ca-cert: %v", err)
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewFederationServiceClient(conn).InvitePeer(ctx, &pb.InvitePeerRequest{Agency: agency, Address: address, CaCert: ca, Voter: !nonVoter})
				if err != nil {
					return err
				}
				data, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true}.Marshal(resp.Invitation)
				if err != nil {
					return err
				}
				if out == "" || out == "-" {
					if resp.Proposal != nil {
						printProposal(cmd.ErrOrStderr(), resp.Proposal) // stdout is the invitation
					}
					_, err = cmd.OutOrStdout().Write(append(escapeJSON(data), '\n'))
					return err
				}
				if resp.Proposal != nil {
					printProposal(cmd.OutOrStdout(), resp.Proposal)
				}
				return os.WriteFile(out, data, 0o644)
			})
		},
	}
	invite.Flags().StringVar(&agency, "agency", "", "agency id of the invited member (required)")
	invite.Flags().StringVar(&address, "address", "", "host:port its node is reached at (required)")
	invite.Flags().StringVar(&caCert, "ca-cert", "", "its CA certificate, exchanged out of band (required)")
	invite.Flags().BoolVar(&nonVoter, "non-voter", false, "join as a non-voter: receives everything, does not vote")
	invite.Flags().StringVar(&out, "out", "", "write the invitation to this file (default stdout)")
	cmd.AddCommand(invite)
	cmd.AddCommand(newRebindCmd(&cf))
	cmd.AddCommand(&cobra.Command{
		Use:     "remove AGENCY",
		Short:   "Remove a member: it receives nothing more (from protocol 3 a proposal the other members approve)",
		Example: `  watchfed peers remove BE-FPS`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewFederationServiceClient(conn).RemovePeer(ctx, &pb.RemovePeerRequest{Agency: args[0]})
				if err != nil {
					return err
				}
				if p := resp.Proposal; p != nil {
					if cf.output == "json" {
						return writeJSON(cmd.OutOrStdout(), toProposalJSON(p))
					}
					printProposal(cmd.OutOrStdout(), p)
				}
				return nil
			})
		},
	})
	return cmd
}

func newLeaderCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{Use: "leader", Short: "Move raft leadership (operator role)"}
	addClientFlags(cmd, &cf)
	var to string
	transfer := &cobra.Command{
		Use:     "transfer",
		Short:   "Hand leadership to another voter (run on the leader)",
		Example: "  watchfed leader transfer --to FR-SBDU",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewFederationServiceClient(conn).TransferLeadership(ctx, &pb.TransferLeadershipRequest{To: to})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), resp)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "leader: %s\n", cell(resp.Leader))
				return nil
			})
		},
	}
	transfer.Flags().StringVar(&to, "to", "", "agency to lead (default: raft picks)")
	cmd.AddCommand(transfer)
	return cmd
}

func newStatusCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "This node's replication status: role, term, indexes, leader, last contact, federation protocol, replicated-state hash, disk full, last audit anchor (operator role)",
		Example: `  watchfed status
  watchfed status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				st, err := pb.NewFederationServiceClient(conn).GetStatus(ctx, &pb.GetStatusRequest{WithStateHash: true})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), st)
				}
				return table(cmd.OutOrStdout(), "FIELD\tVALUE", [][]string{
					{"id", st.Id}, {"agency", st.Agency}, {"role", st.Role}, {"term", fmt.Sprint(st.Term)},
					{"last_index", fmt.Sprint(st.LastIndex)}, {"commit_index", fmt.Sprint(st.CommitIndex)},
					{"applied_index", fmt.Sprint(st.AppliedIndex)}, {"last_contact", fmtTime(st.LastContact)},
					{"leader", st.Leader}, {"snapshot_index", fmt.Sprint(st.SnapshotIndex)}, {"policy_error", st.PolicyError},
					{"protocol", fmt.Sprint(st.Protocol)}, {"protocol_since_index", fmt.Sprint(st.ProtocolSinceIndex)},
					{"protocols_supported", strings.Trim(fmt.Sprint(st.ProtocolsSupported), "[]")},
					{"halted_index", fmt.Sprint(st.HaltedIndex)}, {"halted_reason", st.HaltedReason},
					{"state_hash", hex.EncodeToString(st.StateHash)}, {"state_hash_index", fmt.Sprint(st.StateHashIndex)},
					{"disk_full", fmt.Sprint(st.DiskFull)}, {"disk_full_path", st.DiskFullPath},
					{"last_checkpoint_index", fmt.Sprint(st.LastCheckpointIndex)}, {"checkpoint_disagreements", fmt.Sprint(st.CheckpointDisagreements)},
					{"diverged", fmt.Sprint(st.Diverged)}, {"diverged_reason", st.DivergedReason},
					{"audit_anchored_seq", fmt.Sprint(st.AuditAnchoredSeq)}, {"audit_anchored_at", fmtTime(st.AuditAnchoredAt)},
					{"audit_anchor_where", st.AuditAnchorWhere},
				})
			})
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

func sharedRows(es []*pb.SharedEntry) [][]string {
	rows := make([][]string, len(es))
	for i, e := range es {
		r := e.Record
		rows[i] = []string{fmt.Sprint(e.LogIndex), e.Origin, r.Id, fmt.Sprint(r.Version), enumName(r.Kind.String(), "KIND_"),
			r.GetSubject().GetName(), recordStatus(r), policy.MarkingName(r.Marking)}
	}
	return rows
}

const sharedHeader = "INDEX\tORIGIN\tID\tVERSION\tKIND\tNAME\tSTATUS\tMARKING"

func newSharedCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{Use: "shared", Short: "Read the entries partners shared with this agency"}
	addClientFlags(cmd, &cf)
	var origin string
	var all bool
	var minIndex uint64
	list := &cobra.Command{
		Use:   "list",
		Short: "Current version of every readable shared entry, with origin, version and log index",
		Example: `  watchfed shared list
  watchfed shared list --origin DE-BAFA --all -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				req := &pb.ListSharedRequest{Origin: origin, IncludeInactive: all, MinIndex: minIndex, PageSize: 1000}
				var es []*pb.SharedEntry
				for {
					resp, err := pb.NewSharedServiceClient(conn).ListShared(ctx, req)
					if err != nil {
						return err
					}
					es = append(es, resp.Entries...)
					if req.PageToken = resp.NextPageToken; req.PageToken == "" {
						break
					}
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), protoList(es))
				}
				return table(cmd.OutOrStdout(), sharedHeader, sharedRows(es))
			})
		},
	}
	list.Flags().StringVar(&origin, "origin", "", "only entries from this agency")
	list.Flags().BoolVar(&all, "all", false, "include delisted and revoked entries")
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show one shared entry",
		Example: `  watchfed shared get DE-BAFA/01J...
  watchfed shared get DE-BAFA/01J... --min-index 42 -o json   # after a write that returned log_index 42`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewSharedServiceClient(conn).GetShared(ctx, &pb.GetSharedRequest{Id: args[0], MinIndex: minIndex})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), resp.Entry)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "log_index:\t%d\n", resp.Entry.LogIndex)
				return writeRecord(cmd.OutOrStdout(), resp.Entry.Record)
			})
		},
	}
	cmd.PersistentFlags().Uint64Var(&minIndex, "min-index", 0, "read at least this fresh: wait until this node has the log up to this index (a write's log_index)")
	cmd.AddCommand(list, get)
	return cmd
}
