package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// screenFlags are the features a screen compares besides the name.
type screenFlags struct {
	schema, birthDate, asOf, kind string
	countries, ids                []string
	threshold                     float64
	limit                         int32
}

func (f *screenFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.schema, "schema", "", "person, organization, vessel or aircraft: another schema lowers the score")
	fl.StringSliceVar(&f.countries, "country", nil, "ISO country code(s): a shared one raises the score, none lowers it")
	fl.StringVar(&f.birthDate, "birth-date", "", "YYYY, YYYY-MM or YYYY-MM-DD: the same year raises the score, another lowers it")
	fl.StringSliceVar(&f.ids, "id", nil, "identifier(s) (passport, IMO, tax id, ...): an exact match scores 1")
	fl.StringVar(&f.asOf, "as-of", "", "screen the list as it stood at the end of this day (YYYY-MM-DD) or instant (RFC 3339)")
	fl.Float64Var(&f.threshold, "threshold", 0.8, "lowest score shown (0..1)")
	fl.Int32Var(&f.limit, "limit", 10, "most results shown (at most 100)")
	fl.StringVar(&f.kind, "kind", "", "only designations or denials")
}

func parseSchema(s string) (pb.Schema, error) {
	if s == "" {
		return pb.Schema_SCHEMA_UNSPECIFIED, nil
	}
	v, ok := pb.Schema_value["SCHEMA_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, usagef("--schema: %q is not person, organization, vessel or aircraft", s)
	}
	return pb.Schema(v), nil
}

func (f *screenFlags) request(name string) (*pb.ScreenRequest, error) {
	schema, err := parseSchema(f.schema)
	if err != nil {
		return nil, err
	}
	kind, err := parseKind(f.kind)
	if err != nil {
		return nil, err
	}
	var asOf *timestamppb.Timestamp
	if asOf, err = parseAsOf(f.asOf); err != nil {
		return nil, err
	}
	if f.threshold < 0 || f.threshold > 1 {
		return nil, usagef("--threshold: %v is not within 0..1", f.threshold)
	}
	if f.limit < 1 {
		return nil, usagef("--limit: at least 1")
	}
	return &pb.ScreenRequest{Name: name, Schema: schema, Countries: f.countries, BirthDate: f.birthDate, Identifiers: f.ids,
		AsOf: asOf, Threshold: proto.Float64(f.threshold), Limit: f.limit, Kind: kind}, nil
}

func newScreenCmd() *cobra.Command {
	var (
		cf clientFlags
		sf screenFlags
	)
	cmd := &cobra.Command{
		Use:   "screen NAME",
		Short: "Screen a name against own records and what partners shared",
		Long: `Screen a counterparty: its name (any script; word order, case, diacritics, honorifics
and legal forms like LLC, OOO or GmbH do not matter) and optionally identifiers, schema,
countries and birth date, against the agency's records in force and the entries partners
shared with it (as far as the policy's receive block trusts them).

Each result has a score in 0..1 and an explanation. 1 means an identifier matched, or
every identifying word is the same after normalisation; 0.9 and up means the names differ
by little more than spelling; from the default threshold 0.8 a result is a likely match to
review. A missing word lowers the score by its weight (rare words weigh more than common
ones, so a common first name alone scores low); a different schema takes 0.2, a birth
year more than a year apart 0.25, no shared country 0.1.

The explanation lists each query word with the listed word it matched and how (exact,
initial, similar, phonetic, consonants), listed words missing from the query (-word),
query words not on the list (+word), and the features that agreed or differed.`,
		Example: `  watchfed screen "Vladimir Putin" --schema person --country RU --birth-date 1952
  watchfed screen "Владимир Путин"
  watchfed screen "Tech Trade GmbH" --threshold 0.7 -o json
  watchfed screen "unknown tanker" --id "IMO 9187629"
  watchfed screen batch customers.csv --out results.csv
  watchfed screen application --party "Tech Trade LLC" --item 3A001.a.1 --destination IR`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			if name == "" && len(sf.ids) == 0 {
				return usagef("give a NAME or --id to screen")
			}
			req, err := sf.request(name)
			if err != nil {
				return err
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewScreeningServiceClient(conn).Screen(ctx, req)
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), resp)
				}
				return writeResults(cmd.OutOrStdout(), resp.Results)
			})
		},
	}
	addClientFlags(cmd, &cf)
	sf.add(cmd)
	cmd.AddCommand(newScreenBatchCmd(), newScreenApplicationCmd())
	return cmd
}

func resultRow(r *pb.ScreenResult) []string {
	rec := r.GetRecord()
	what := enumName(rec.GetKind().String(), "KIND_")
	if s := rec.GetSubject().GetSchema(); s != pb.Schema_SCHEMA_UNSPECIFIED {
		what += "/" + enumName(s.String(), "SCHEMA_")
	}
	origin := r.Origin
	if r.Shared {
		origin += " (shared)"
	}
	return []string{fmt.Sprintf("%.3f", r.Score), rec.GetId(), origin, what, r.GetExplanation().GetSummary()}
}

func writeResults(w io.Writer, rs []*pb.ScreenResult) error {
	if len(rs) == 0 {
		_, err := fmt.Fprintln(w, "no match")
		return err
	}
	rows := make([][]string, len(rs))
	for i, r := range rs {
		rows[i] = resultRow(r)
	}
	return table(w, "SCORE\tID\tORIGIN\tKIND\tEXPLANATION", rows)
}

func newScreenApplicationCmd() *cobra.Command {
	var (
		cf                clientFlags
		parties           []string
		item, destination string
		threshold         float64
	)
	cmd := &cobra.Command{
		Use:   "application --party NAME --item CODE --destination CC",
		Short: "Screen a licence application: partners' and own denials of an essentially identical transaction",
		Long: `Screen an export-licence application. Returns the denials, own and partners', of an
essentially identical transaction that are in force: the same control-list entry or a parent
(or a child) of it, the same destination (an order denying a party's export privileges, as a
BIS Denied Persons order does, binds any destination), and a party that matches one of the
application's; and the designations that match a party. Before granting such a
transaction, the no-undercut rule asks the agency to consult the denying partner.`,
		Example: `  watchfed screen application --party "Tech Trade LLC" --party "Ministry of Defence" --item 3A001.a.1 --destination IR`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(parties) == 0 || item == "" || destination == "" {
				return usagef("--party, --item and --destination are required")
			}
			if threshold < 0 || threshold > 1 {
				return usagef("--threshold: %v is not within 0..1", threshold)
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewScreeningServiceClient(conn).ScreenApplication(ctx, &pb.ScreenApplicationRequest{
					Parties: parties, ControlListEntry: item, Destination: destination, Threshold: proto.Float64(threshold)})
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if cf.output == "json" {
					return writeJSON(out, resp)
				}
				if len(resp.Denials) == 0 {
					fmt.Fprintln(out, "denials of an essentially identical transaction: none")
				} else {
					fmt.Fprintln(out, "denials of an essentially identical transaction or of a party's export privileges (consult the denying agency before granting):")
					rows := make([][]string, len(resp.Denials))
					for i, d := range resp.Denials {
						rec := d.Result.GetRecord()
						den := rec.GetDenial()
						rows[i] = []string{fmt.Sprintf("%.3f", d.Result.Score), rec.GetId(), d.Result.Origin, den.GetControlListEntry(), denialDest(den),
							den.GetDeniedOn(), inForceUntil(den), d.Party, d.Result.GetExplanation().GetSummary()}
					}
					if err := table(out, "SCORE\tID\tORIGIN\tENTRY\tDEST\tDENIED ON\tIN FORCE UNTIL\tPARTY\tEXPLANATION", rows); err != nil {
						return err
					}
				}
				fmt.Fprintln(out)
				if len(resp.Designations) == 0 {
					fmt.Fprintln(out, "designations matching a party: none")
					return nil
				}
				fmt.Fprintln(out, "designations matching a party:")
				return writeResults(out, resp.Designations)
			})
		},
	}
	addClientFlags(cmd, &cf)
	cmd.Flags().StringArrayVar(&parties, "party", nil, "a party of the application (repeat for each)")
	cmd.Flags().StringVar(&item, "item", "", "control-list entry of the item, e.g. 3A001.a.1")
	cmd.Flags().StringVar(&destination, "destination", "", "ISO code of the destination country")
	cmd.Flags().Float64Var(&threshold, "threshold", 0.8, "lowest score of a party match (0..1)")
	return cmd
}
