package main

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// writeExamples are the examples of `add` and `amend` for each kind.
var writeExamples = map[pb.Kind][2]string{
	pb.Kind_KIND_DESIGNATION: {`  watchfed designations add --schema person --name "Ivan PETROV" --alias "Иван Петров" \
      --country RU --birth-date 1965 --program RUSSIA-EO14024 --marking GREEN
  watchfed designations add --from-json vessel.json -o json
  echo '{"subject":{"schema":"SCHEMA_VESSEL","name":"OCEAN STAR"},"designation":{"program":"IRAN"},"marking":"MARKING_GREEN"}' |
      watchfed designations add --from-json -`,
		`  watchfed designations amend DEV/01J... --add-alias "Ivan Petrov" --note "alias from the MFA"
  watchfed designations amend DEV/01J... --remove-country BY --add-id passport:4509876543:RU
  watchfed records get DEV/01J... -o json | jq '.subject.name = "Ivan PETROVICH"' |
      watchfed designations amend DEV/01J... --from-json -      # the whole record, edited`},
	pb.Kind_KIND_DENIAL: {`  watchfed denials add --consignee "Tech Trade LLC" --item "FPGA, 1000 MHz" --control-list-entry 3A001.a.7 \
      --destination IR --end-use "missile guidance" --reason WMD --regime WASSENAAR --marking AMBER
  watchfed denials add --from-json denial.json -o json`,
		`  watchfed denials amend DEV/01J... --add-end-user "Shahid Industrial Group" --note "end user identified"
  watchfed denials amend DEV/01J... --remove-consignee "Tech Trade LLC" --add-consignee "Tech Trade FZE"`},
}

// newWriteCmds builds `add` and `amend` for a kind.
func newWriteCmds(kind pb.Kind, noun string, cf *clientFlags) []*cobra.Command {
	var addF, amendF recordFlags
	add := &cobra.Command{
		Use:     "add",
		Short:   "Record a new " + noun + " and print it with its id",
		Example: writeExamples[kind][0],
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rec, err := addF.readJSON(cmd)
			if err != nil {
				return err
			}
			if rec == nil {
				rec = &pb.Record{}
			}
			if err := addF.apply(cmd, rec, kind); err != nil {
				return err
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewRecordServiceClient(conn).CreateRecord(ctx, &pb.CreateRecordRequest{Record: rec})
				if err != nil {
					return err
				}
				return cf.printWritten(cmd, resp.Record, resp.LogIndex, resp.NotShared)
			})
		},
	}
	addF.bind(add, kind, false)
	amend := &cobra.Command{
		Use:   "amend ID",
		Short: "Store a new version of a " + noun + " with the fields given changed",
		Long: `Store a new version of a ` + noun + ` with exactly the fields named changed: a scalar
flag sets its field; a list field changes item by item with --add-FIELD and
--remove-FIELD (removing an item the record lacks, or adding one it has, is
refused); everything else stays as it is. --from-json replaces the whole
record with a document (the flags apply on top); stdin is read only with
--from-json -.`,
		Example: writeExamples[kind][1],
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := amendF.readJSON(cmd)
			if err != nil {
				return err
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				c := pb.NewRecordServiceClient(conn)
				got, err := c.GetRecord(ctx, &pb.GetRecordRequest{Id: args[0]})
				if err != nil {
					return err
				}
				cur := got.Record
				next := in
				if next == nil {
					next = proto.Clone(cur).(*pb.Record)
					next.ChangeNote = "" // a note belongs to the version it explains
				}
				next.Id = cur.Id
				if err := amendF.apply(cmd, next, kind); err != nil {
					return err
				}
				resp, err := c.AmendRecord(ctx, &pb.AmendRecordRequest{Record: next, ExpectedVersion: cur.Version})
				if err != nil {
					return err
				}
				return cf.printWritten(cmd, resp.Record, resp.LogIndex, resp.NotShared)
			})
		},
	}
	amendF.bind(amend, kind, true)
	return []*cobra.Command{add, amend}
}

func (cf *clientFlags) printRecord(cmd *cobra.Command, r *pb.Record) error {
	if cf.output == "json" {
		return writeJSON(cmd.OutOrStdout(), r)
	}
	return writeRecord(cmd.OutOrStdout(), r)
}

func (cf *clientFlags) printRecords(cmd *cobra.Command, recs []*pb.Record) error {
	if cf.output == "json" {
		return writeJSON(cmd.OutOrStdout(), protoList(recs))
	}
	return table(cmd.OutOrStdout(), recordHeader, recordRows(recs))
}

func newDesignationsCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "designations",
		Short: "Record, amend and delist designations (sanctioned persons, companies, vessels, aircraft)",
		Example: `  watchfed designations add --schema person --name "Ivan PETROV" --alias "Иван Петров" \
      --country RU --birth-date 1965 --program RUSSIA-EO14024 --marking GREEN
  echo '{"subject":{"schema":"SCHEMA_VESSEL","name":"OCEAN STAR","identifiers":[{"type":"IDENTIFIER_TYPE_IMO","value":"9176187"}]},
        "designation":{"program":"IRAN"},"marking":"MARKING_GREEN"}' | watchfed designations add --from-json -
  watchfed designations amend DEV/01J... --add-alias "Ivan Petrov" --note "new alias from MFA"
  watchfed designations delist DEV/01J... --reason "court annulment T-123/24"`,
	}
	addClientFlags(cmd, &cf)
	cmd.AddCommand(newWriteCmds(pb.Kind_KIND_DESIGNATION, "designation", &cf)...)
	var on, reason string
	delist := &cobra.Command{
		Use:   "delist ID",
		Short: "Delist a designation (a new version; the history keeps the listing)",
		Example: `  watchfed designations delist DEV/01J... --reason "annulled by the court, case T-123/26"
  watchfed designations delist DEV/01J... --date 2026-11-30 --reason "UN delisting" -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usagef("--reason: must be given: a delisting is notified with its reason")
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewRecordServiceClient(conn).DelistDesignation(ctx, &pb.DelistDesignationRequest{Id: args[0], DelistedOn: on, Reason: reason})
				if err != nil {
					return err
				}
				return cf.printWritten(cmd, resp.Record, resp.LogIndex, resp.NotShared)
			})
		},
	}
	delist.Flags().StringVar(&on, "date", "", "delisting date YYYY-MM-DD (default today)")
	delist.Flags().StringVar(&reason, "reason", "", "reason for delisting (required)")
	cmd.AddCommand(delist)
	return cmd
}

func newDenialsCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "denials",
		Short: "Record export-licence denials and change their status",
		Example: `  watchfed denials add --consignee "Tech Trade LLC" --item "FPGA, 1000 MHz" --control-list-entry 3A001.a.7 \
      --destination IR --end-use "missile guidance" --reason WMD --regime WASSENAAR --marking AMBER
  watchfed denials status DEV/01J... --status revoked --reason "review: no longer justified"`,
	}
	addClientFlags(cmd, &cf)
	cmd.AddCommand(newWriteCmds(pb.Kind_KIND_DENIAL, "denial", &cf)...)
	var st, reason string
	status := &cobra.Command{
		Use:     "status ID",
		Short:   "Change a denial's status: denied, annulled, suspended, limited, revoked",
		Example: `  watchfed denials status DEV/01J... --status revoked --reason "review: no longer justified"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, ok := pb.DenialStatus_value["DENIAL_STATUS_"+strings.ToUpper(st)]
			if !ok || v == 0 {
				return usagef("--status: %q is not denied, annulled, suspended, limited or revoked", st)
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewRecordServiceClient(conn).SetDenialStatus(ctx, &pb.SetDenialStatusRequest{Id: args[0], Status: pb.DenialStatus(v), Reason: reason})
				if err != nil {
					return err
				}
				return cf.printWritten(cmd, resp.Record, resp.LogIndex, resp.NotShared)
			})
		},
	}
	status.Flags().StringVar(&st, "status", "", "new status (required)")
	status.Flags().StringVar(&reason, "reason", "", "reason for the change (required)")
	cmd.AddCommand(status, newDenialsDueCmd(&cf), newDenialsReviewCmd(&cf))
	return cmd
}

// parseAsOf reads --as-of: a date means the end of that day (UTC), so a
// change made on that day is included; RFC 3339 is exact.
func parseAsOf(s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return timestamppb.New(t), nil
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return timestamppb.New(d.Add(24*time.Hour - time.Nanosecond)), nil
	}
	return nil, usagef("--as-of: %q is not YYYY-MM-DD or RFC 3339", s)
}

func parseKind(s string) (pb.Kind, error) {
	switch strings.ToLower(s) {
	case "", "all":
		return pb.Kind_KIND_UNSPECIFIED, nil
	case "designation", "designations":
		return pb.Kind_KIND_DESIGNATION, nil
	case "denial", "denials":
		return pb.Kind_KIND_DENIAL, nil
	}
	return 0, usagef("--kind: %q is not designation or denial", s)
}

func newRecordsCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "records",
		Short: "Read designations and denials, now or as they stood at a date",
		Example: `  watchfed records list --kind designation
  watchfed records list --as-of 2026-01-31 -o json
  watchfed records get DEV/01J... --as-of 2026-01-31
  watchfed records history DEV/01J...`,
	}
	addClientFlags(cmd, &cf)
	var getAsOf string
	var getVersion uint64
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show one record (current, at --as-of, or --version N)",
		Example: `  watchfed records get DEV/01J...
  watchfed records get DEV/01J... --as-of 2026-01-31 -o json
  watchfed records get DEV/01J... --version 1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asOf, err := parseAsOf(getAsOf)
			if err != nil {
				return err
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewRecordServiceClient(conn).GetRecord(ctx, &pb.GetRecordRequest{Id: args[0], AsOf: asOf, Version: getVersion})
				if err != nil {
					return err
				}
				return cf.printRecord(cmd, resp.Record)
			})
		},
	}
	get.Flags().StringVar(&getAsOf, "as-of", "", "the version current at this date (YYYY-MM-DD, end of day UTC) or time (RFC 3339)")
	get.Flags().Uint64Var(&getVersion, "version", 0, "exactly this version")
	var kind, listAsOf string
	var all bool
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List records (active ones unless --all)",
		Example: `  watchfed records list --kind designation
  watchfed records list --as-of 2026-01-31 -o json
  ID=$(watchfed records list -o json | jq -r '.[0].id')`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := parseKind(kind)
			if err != nil {
				return err
			}
			asOf, err := parseAsOf(listAsOf)
			if err != nil {
				return err
			}
			if limit < 0 {
				return usagef("--limit: must not be negative")
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				c := pb.NewRecordServiceClient(conn)
				var recs []*pb.Record
				token := ""
				for {
					resp, err := c.ListRecords(ctx, &pb.ListRecordsRequest{Kind: k, AsOf: asOf, IncludeInactive: all, PageSize: 1000, PageToken: token})
					if err != nil {
						return err
					}
					recs = append(recs, resp.Records...)
					token = resp.NextPageToken
					if token == "" || (limit > 0 && len(recs) >= limit) {
						break
					}
				}
				if limit > 0 && len(recs) > limit {
					recs = recs[:limit]
				}
				return cf.printRecords(cmd, recs)
			})
		},
	}
	list.Flags().StringVar(&kind, "kind", "", "designation or denial (default both)")
	list.Flags().StringVar(&listAsOf, "as-of", "", "the list as it stood at this date (YYYY-MM-DD, end of day UTC) or time (RFC 3339)")
	list.Flags().BoolVar(&all, "all", false, "include delisted designations and revoked or annulled denials")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many records (0: all)")
	history := &cobra.Command{
		Use:     "history ID",
		Short:   "Show every version of a record, oldest first",
		Example: `  watchfed records history DEV/01J...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewRecordServiceClient(conn).GetRecordHistory(ctx, &pb.GetRecordHistoryRequest{Id: args[0]})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), protoList(resp.Records))
				}
				rows := make([][]string, len(resp.Records))
				for i, r := range resp.Records {
					rows[i] = []string{strconv.FormatUint(r.Version, 10), fmtTime(r.UpdatedAt), r.UpdatedBy, recordStatus(r), r.GetSubject().GetName(), r.ChangeNote}
				}
				return table(cmd.OutOrStdout(), "VERSION\tUPDATED\tBY\tSTATUS\tNAME\tNOTE", rows)
			})
		},
	}
	cmd.AddCommand(get, list, history)
	return cmd
}
