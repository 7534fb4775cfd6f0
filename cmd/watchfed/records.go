package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/policy"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// recordFlags is the content of a record as flags. Only flags the user set
// are applied, so `amend` changes exactly what was given.
type recordFlags struct {
	file string
	// common
	schema, name, marking, note                    string
	aliases, weakAliases, countries, nationalities []string
	birthDates, ids, relTo                         []string
	originatorControl, local                       bool
	// designation
	program, legalBasis, listedOn, reviewBy, statement string
	measures                                           []string
	// denial
	item, cle, destination, endUse, reason, regime, deniedOn string
	consignees, endUsers, purchasers, intermediaries         []string
}

func (f *recordFlags) bind(cmd *cobra.Command, kind pb.Kind) {
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "read the record as JSON from FILE ('-' for stdin; stdin is read anyway when it is not a terminal and no --name is given)")
	fl.StringVar(&f.schema, "schema", "", "subject schema: person, organization, vessel, aircraft")
	fl.StringVar(&f.name, "name", "", "primary name of the subject")
	fl.StringArrayVar(&f.aliases, "alias", nil, "strong alias (repeatable; any script)")
	fl.StringArrayVar(&f.weakAliases, "weak-alias", nil, "weak alias: nickname, short form (repeatable)")
	fl.StringArrayVar(&f.countries, "country", nil, "ISO 3166 country code linked to the subject (repeatable)")
	fl.StringArrayVar(&f.nationalities, "nationality", nil, "ISO 3166 nationality (repeatable)")
	fl.StringArrayVar(&f.birthDates, "birth-date", nil, "birth date, possibly partial: 1965, 1965-03 or 1965-03-14 (repeatable)")
	fl.StringArrayVar(&f.ids, "id", nil, "identifier TYPE:VALUE[:COUNTRY], TYPE one of passport, national-id, tax-id, registration-number, lei, imo, call-sign, other (repeatable)")
	fl.StringVar(&f.marking, "marking", "", "TLP marking: CLEAR, GREEN, AMBER, AMBER+STRICT, RED")
	fl.StringArrayVar(&f.relTo, "rel-to", nil, "releasable only to this agency (repeatable)")
	fl.BoolVar(&f.originatorControl, "originator-control", false, "recipients may not pass the record on without consent")
	fl.BoolVar(&f.local, "local", false, "local-only: national use, never leaves this node")
	fl.StringVar(&f.note, "note", "", "why this version is written (kept in the history)")
	if kind == pb.Kind_KIND_DESIGNATION {
		fl.StringVar(&f.program, "program", "", "programme or regime, e.g. RUSSIA-EO14024")
		fl.StringVar(&f.legalBasis, "legal-basis", "", "legal basis of the listing")
		fl.StringArrayVar(&f.measures, "measure", nil, "measure, e.g. asset-freeze, travel-ban (repeatable)")
		fl.StringVar(&f.listedOn, "listed-on", "", "listing date YYYY-MM-DD (default today)")
		fl.StringVar(&f.reviewBy, "review-by", "", "sunset: review date YYYY-MM-DD")
		fl.StringVar(&f.statement, "statement", "", "statement of reasons")
	} else {
		fl.StringVar(&f.item, "item", "", "description of the item denied")
		fl.StringVar(&f.cle, "control-list-entry", "", "control-list entry, e.g. 3A001.a.1 (ALL for a denial of all items)")
		fl.StringVar(&f.destination, "destination", "", "ISO 3166 destination country")
		fl.StringVar(&f.endUse, "end-use", "", "stated end use")
		fl.StringVar(&f.reason, "reason", "", "reason code, e.g. WMD, MILITARY-END-USE, DIVERSION")
		fl.StringVar(&f.regime, "regime", "", "regime, e.g. WASSENAAR, NSG, AG, MTCR, EU-DUAL-USE")
		fl.StringVar(&f.deniedOn, "denied-on", "", "date of the refusal YYYY-MM-DD (default today)")
		fl.StringVar(&f.reviewBy, "review-by", "", "review date YYYY-MM-DD (default three years after --denied-on)")
		fl.StringArrayVar(&f.consignees, "consignee", nil, "consignee name (repeatable)")
		fl.StringArrayVar(&f.endUsers, "end-user", nil, "end-user name (repeatable)")
		fl.StringArrayVar(&f.purchasers, "purchaser", nil, "purchaser name (repeatable)")
		fl.StringArrayVar(&f.intermediaries, "intermediary", nil, "intermediary name (repeatable)")
	}
}

// readJSON returns the record given as a JSON document, or nil when the
// record comes from flags.
func (f *recordFlags) readJSON(cmd *cobra.Command) (*pb.Record, error) {
	var r io.Reader
	switch {
	case f.file == "-":
		r = cmd.InOrStdin()
	case f.file != "":
		fh, err := os.Open(f.file)
		if err != nil {
			return nil, usageError{err}
		}
		defer fh.Close()
		r = fh
	case !cmd.Flags().Changed("name") && !isTerminal(cmd.InOrStdin()):
		r = cmd.InOrStdin()
	default:
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read record: %w", err)
	}
	if strings.TrimSpace(string(data)) == "" {
		return nil, nil
	}
	rec := &pb.Record{}
	if err := protojson.Unmarshal(data, rec); err != nil {
		return nil, usagef("record JSON: %v", err)
	}
	return rec, nil
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return !ok || term.IsTerminal(int(f.Fd()))
}

// apply writes the flags the user set onto rec.
func (f *recordFlags) apply(cmd *cobra.Command, rec *pb.Record, kind pb.Kind) error {
	set := cmd.Flags().Changed
	if rec.Subject == nil {
		rec.Subject = &pb.Subject{}
	}
	s := rec.Subject
	if set("schema") {
		v, ok := pb.Schema_value["SCHEMA_"+strings.ToUpper(f.schema)]
		if !ok || v == 0 {
			return usagef("--schema: %q is not person, organization, vessel or aircraft", f.schema)
		}
		s.Schema = pb.Schema(v)
	}
	if set("name") {
		s.Name = f.name
	}
	if set("alias") || set("weak-alias") {
		s.Aliases = nil
		for _, a := range f.aliases {
			s.Aliases = append(s.Aliases, &pb.Alias{Name: a, Strength: pb.NameStrength_NAME_STRENGTH_STRONG})
		}
		for _, a := range f.weakAliases {
			s.Aliases = append(s.Aliases, &pb.Alias{Name: a, Strength: pb.NameStrength_NAME_STRENGTH_WEAK})
		}
	}
	if set("country") {
		s.Countries = f.countries
	}
	if set("nationality") {
		s.Nationalities = f.nationalities
	}
	if set("birth-date") {
		s.BirthDates = f.birthDates
	}
	if set("id") {
		s.Identifiers = nil
		for _, raw := range f.ids {
			id, err := parseIdentifier(raw)
			if err != nil {
				return err
			}
			s.Identifiers = append(s.Identifiers, id)
		}
	}
	if set("marking") {
		m, err := policy.ParseMarking(f.marking)
		if err != nil {
			return usagef("--marking: %v", err)
		}
		rec.Marking = m
	}
	if set("rel-to") {
		rec.RelTo = f.relTo
	}
	if set("originator-control") {
		rec.OriginatorControl = f.originatorControl
	}
	if set("local") {
		rec.Local = f.local
	}
	if set("note") {
		rec.ChangeNote = f.note
	}
	if kind == pb.Kind_KIND_DESIGNATION {
		return f.applyDesignation(set, rec)
	}
	return f.applyDenial(set, rec)
}

func (f *recordFlags) applyDesignation(set func(string) bool, rec *pb.Record) error {
	d := rec.GetDesignation()
	if d == nil {
		d = &pb.Designation{}
		rec.Detail = &pb.Record_Designation{Designation: d}
	}
	strs := map[string]*string{"program": &d.Program, "legal-basis": &d.LegalBasis, "listed-on": &d.ListedOn, "review-by": &d.ReviewBy, "statement": &d.Statement}
	vals := map[string]string{"program": f.program, "legal-basis": f.legalBasis, "listed-on": f.listedOn, "review-by": f.reviewBy, "statement": f.statement}
	for flag, p := range strs {
		if set(flag) {
			*p = vals[flag]
		}
	}
	if set("measure") {
		d.Measures = f.measures
	}
	return nil
}

func (f *recordFlags) applyDenial(set func(string) bool, rec *pb.Record) error {
	d := rec.GetDenial()
	if d == nil {
		d = &pb.Denial{}
		rec.Detail = &pb.Record_Denial{Denial: d}
	}
	strs := map[string]*string{"item": &d.Item, "control-list-entry": &d.ControlListEntry, "destination": &d.Destination, "end-use": &d.EndUse,
		"reason": &d.Reason, "regime": &d.Regime, "denied-on": &d.DeniedOn, "review-by": &d.ReviewBy}
	vals := map[string]string{"item": f.item, "control-list-entry": f.cle, "destination": f.destination, "end-use": f.endUse,
		"reason": f.reason, "regime": f.regime, "denied-on": f.deniedOn, "review-by": f.reviewBy}
	for flag, p := range strs {
		if set(flag) {
			*p = vals[flag]
		}
	}
	if set("consignee") || set("end-user") || set("purchaser") || set("intermediary") {
		d.Parties = nil
		for role, names := range map[pb.PartyRole][]string{pb.PartyRole_PARTY_ROLE_CONSIGNEE: f.consignees, pb.PartyRole_PARTY_ROLE_END_USER: f.endUsers,
			pb.PartyRole_PARTY_ROLE_PURCHASER: f.purchasers, pb.PartyRole_PARTY_ROLE_INTERMEDIARY: f.intermediaries} {
			for _, n := range names {
				d.Parties = append(d.Parties, &pb.Party{Role: role, Name: n, Country: d.Destination})
			}
		}
		// Map iteration order is random; parties keep a stable order by role.
		sortParties(d.Parties)
	}
	// The subject of a denial is its main denied party unless named otherwise.
	if rec.Subject.Name == "" && len(d.Parties) > 0 {
		rec.Subject.Name = d.Parties[0].Name
	}
	if rec.Subject.Schema == pb.Schema_SCHEMA_UNSPECIFIED {
		rec.Subject.Schema = pb.Schema_SCHEMA_ORGANIZATION
	}
	return nil
}

func sortParties(ps []*pb.Party) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].Role < ps[j-1].Role; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

func parseIdentifier(raw string) (*pb.Identifier, error) {
	parts := strings.SplitN(raw, ":", 3)
	if len(parts) < 2 || parts[1] == "" {
		return nil, usagef("--id %q: want TYPE:VALUE[:COUNTRY]", raw)
	}
	t := strings.ToUpper(strings.ReplaceAll(parts[0], "-", "_"))
	v, ok := pb.IdentifierType_value["IDENTIFIER_TYPE_"+t]
	if !ok || v == 0 {
		return nil, usagef("--id %q: type %q is not passport, national-id, tax-id, registration-number, lei, imo, call-sign or other", raw, parts[0])
	}
	id := &pb.Identifier{Type: pb.IdentifierType(v), Value: parts[1]}
	if len(parts) == 3 {
		id.Country = parts[2]
	}
	return id, nil
}

// newWriteCmds builds `add` and `amend` for a kind.
func newWriteCmds(kind pb.Kind, noun string, cf *clientFlags) []*cobra.Command {
	var addF, amendF recordFlags
	add := &cobra.Command{
		Use:   "add",
		Short: "Record a new " + noun + " and print it with its id",
		Args:  cobra.NoArgs,
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
				return cf.printWritten(cmd, resp.Record, resp.LogIndex)
			})
		},
	}
	addF.bind(add, kind)
	amend := &cobra.Command{
		Use:   "amend ID",
		Short: "Store a new version of a " + noun + " with the fields given changed",
		Args:  cobra.ExactArgs(1),
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
				return cf.printWritten(cmd, resp.Record, resp.LogIndex)
			})
		},
	}
	amendF.bind(amend, kind)
	return []*cobra.Command{add, amend}
}

func (cf *clientFlags) printRecord(cmd *cobra.Command, r *pb.Record) error {
	if cf.output == "json" {
		return writeJSON(cmd.OutOrStdout(), r)
	}
	return writeRecord(cmd.OutOrStdout(), r)
}

// printWritten shows a written record; people also see the log index of its
// shared entry (0: local-only, or no federation yet).
func (cf *clientFlags) printWritten(cmd *cobra.Command, r *pb.Record, logIndex uint64) error {
	if err := cf.printRecord(cmd, r); err != nil || cf.output == "json" {
		return err
	}
	if logIndex > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "log_index:          %d\n", logIndex)
	}
	return nil
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
        "designation":{"program":"IRAN"},"marking":"MARKING_GREEN"}' | watchfed designations add
  watchfed designations amend DEV/01J... --alias "Ivan Petrov" --note "new alias from MFA"
  watchfed designations delist DEV/01J... --reason "court annulment T-123/24"`,
	}
	addClientFlags(cmd, &cf)
	cmd.AddCommand(newWriteCmds(pb.Kind_KIND_DESIGNATION, "designation", &cf)...)
	var on, reason string
	delist := &cobra.Command{
		Use:   "delist ID",
		Short: "Delist a designation (a new version; the history keeps the listing)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usagef("--reason: must be given: a delisting is notified with its reason")
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewRecordServiceClient(conn).DelistDesignation(ctx, &pb.DelistDesignationRequest{Id: args[0], DelistedOn: on, Reason: reason})
				if err != nil {
					return err
				}
				return cf.printRecord(cmd, resp.Record)
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
		Use:   "status ID",
		Short: "Change a denial's status: denied, annulled, suspended, limited, revoked",
		Args:  cobra.ExactArgs(1),
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
				return cf.printRecord(cmd, resp.Record)
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
		Args:  cobra.ExactArgs(1),
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
		Args:  cobra.NoArgs,
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
		Use:   "history ID",
		Short: "Show every version of a record, oldest first",
		Args:  cobra.ExactArgs(1),
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
