package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node/importer"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func newImportCmd() *cobra.Command {
	var (
		cf                      clientFlags
		format, source, marking string
		maxDelist               string
		dryRun, allowRejects    bool
	)
	cmd := &cobra.Command{
		Use:   "import --format F PATH...",
		Short: "Import an edition of a public list: adds, amends and delists to match it",
		Long: `Read a complete edition of a public list and bring the node's records from that list in
line with it: entries new since the last import are added, changed ones amended, and
entries no longer listed delisted (designations) or revoked (denials). Importing the
same edition twice changes nothing. Malformed rows and entries the node refuses (a
field over its limit is refused, never cut) are reported by line and skipped; the rest
imports. Every write is audited and published like any other.

An edition that looks like a wrong, empty or damaged file is refused whole, nothing
written or published, with the figures (exit 2): one that reads no entries, rejects
more than 1 % of its rows (--allow-rejects overrides), or would delist or revoke more
than 10 % of the list's records in force (--max-delist N or P% raises the limit). The
node audits every override.

Formats:
  ofac-sdn  OFAC legacy CSV: sdn.csv (or cons_prim.csv) with optional alt.csv, add.csv
            and the comments file, told apart by name (Latin-1 or UTF-8)
  un-xml    UN Security Council consolidated list (XML)
  bis-dpl   BIS Denied Persons List (tab-separated), as denials
  ftm       FollowTheMoney entities, JSON lines (OpenSanctions)

Records are known by their source reference ("ofac-sdn:36"); --source names the list
(default: the format's name, "ofac-cons" for OFAC's consolidated non-SDN files).`,
		Example: `  watchfed import --format ofac-sdn sdn.csv alt.csv add.csv sdn_comments.csv
  watchfed import --format un-xml consolidated.xml --marking CLEAR
  watchfed import --format bis-dpl dpl.txt --dry-run -o json
  watchfed import --format un-xml consolidated.xml --max-delist 25   # a large delisting round`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.check(); err != nil {
				return err
			}
			m, ok := pb.Marking_value["MARKING_"+strings.ReplaceAll(strings.ToUpper(marking), "+", "_")]
			if !ok || m == 0 {
				return usagef("--marking: %q is not CLEAR, GREEN, AMBER, AMBER+STRICT or RED", marking)
			}
			opts := importer.Options{Marking: pb.Marking(m), DryRun: dryRun, AllowRejects: allowRejects}
			if err := parseMaxDelist(maxDelist, &opts); err != nil {
				return err
			}
			files, closeAll, err := importFiles(format, args)
			if err != nil {
				return err
			}
			defer closeAll()
			if source == "" && format == "ofac-sdn" && strings.HasPrefix(filepath.Base(args[0]), "cons") {
				source = "ofac-cons"
			}
			res, err := importer.Parse(format, source, files)
			if err != nil {
				return usagef("%s (--format %s): %v; nothing imported", args[0], format, err)
			}
			if len(res.Items) == 0 {
				return usagef("%s (--format %s): no entries read (%d rows rejected): an empty or wrong file is not an edition; nothing imported", strings.Join(args, ", "), format, len(res.Rejects))
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				return runImport(ctx, cmd, conn, res, opts, cf.output)
			})
		},
	}
	addClientFlags(cmd, &cf)
	cmd.Flags().StringVar(&format, "format", "", "list format: "+strings.Join(importer.Formats, ", ")+" (required)")
	cmd.Flags().StringVar(&source, "source", "", "name of the list in source references (default: per format)")
	cmd.Flags().StringVar(&marking, "marking", "CLEAR", "marking of the imported records")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would change without writing")
	cmd.Flags().BoolVar(&allowRejects, "allow-rejects", false, "import even if more than 1 % of the rows are rejected (audited)")
	cmd.Flags().StringVar(&maxDelist, "max-delist", "", "allow up to N delistings/revocations, or P% of the list's records in force (default 10%; audited)")
	_ = cmd.MarkFlagRequired("format")
	return cmd
}

// importFiles opens the paths of one import and tells OFAC's files apart by name.
func importFiles(format string, paths []string) (importer.Files, func(), error) {
	var (
		f     importer.Files
		opens []*os.File
	)
	closeAll := func() {
		for _, o := range opens {
			o.Close()
		}
	}
	for _, p := range paths {
		o, err := os.Open(p)
		if err != nil {
			closeAll()
			return f, nil, usageError{err}
		}
		opens = append(opens, o)
		slot := &f.Main
		if format == "ofac-sdn" {
			switch base := strings.ToLower(filepath.Base(p)); {
			case strings.Contains(base, "alt"):
				slot = &f.Alt
			case strings.Contains(base, "add"):
				slot = &f.Add
			case strings.Contains(base, "comment"):
				slot = &f.Comments
			}
		}
		if *slot != nil {
			closeAll()
			return f, nil, usagef("%s: a second %s file (give each file once: main, alt, add, comments)", p, map[bool]string{true: "main", false: "alt/add/comments"}[slot == &f.Main])
		}
		*slot = o
	}
	if f.Main == nil {
		closeAll()
		return f, nil, usagef("no main file among %s", strings.Join(paths, ", "))
	}
	if format != "ofac-sdn" && len(paths) > 1 {
		closeAll()
		return f, nil, usagef("--format %s takes one file", format)
	}
	return f, closeAll, nil
}

type importReject struct {
	Line      int    `json:"line,omitempty"`
	SourceRef string `json:"source_ref,omitempty"`
	Reason    string `json:"reason"`
}

// parseMaxDelist reads --max-delist: a count ("250") or a percentage ("25%").
func parseMaxDelist(v string, o *importer.Options) error {
	if v == "" {
		return nil
	}
	if p, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(f >= 0 && f <= 100) {
			return usagef("--max-delist: %q is not a percentage from 0%% to 100%%", v)
		}
		o.MaxDelistPct = &f
		return nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return usagef("--max-delist: %q is not a count (250) or a percentage (25%%)", v)
	}
	c := uint32(n)
	o.MaxDelist = &c
	return nil
}

func runImport(ctx context.Context, cmd *cobra.Command, conn *grpc.ClientConn, res *importer.Result, opts importer.Options, output string) error {
	dryRun := opts.DryRun
	bar := newProgress(cmd.ErrOrStderr(), "import "+res.Source, len(res.Items))
	resp, err := importer.SendWith(ctx, pb.NewImportServiceClient(conn), res, opts, bar.set)
	bar.done()
	if err != nil {
		if len(res.Rejects) > 0 && status.Code(err) == codes.InvalidArgument {
			writeRejects(cmd.ErrOrStderr(), fileRejects(res))
		}
		return err
	}
	rejects := fileRejects(res)
	lines := make(map[string]int, len(res.Items))
	for _, it := range res.Items {
		lines[it.Record.GetSourceRef()] = it.Line
	}
	for _, r := range resp.Rejected {
		rejects = append(rejects, importReject{Line: lines[r.SourceRef], SourceRef: r.SourceRef, Reason: r.Reason})
	}
	// What the import wrote is in the log up to log_index once published.
	pub := pubCommitted
	switch {
	case dryRun || resp.Added+resp.Changed+resp.Delisted == 0:
		pub = "nothing_written"
	case resp.LogIndex == 0:
		pub = pubNotShared
	}
	out := cmd.OutOrStdout()
	if output == "json" {
		return writeJSON(out, map[string]any{
			"source": res.Source, "dry_run": dryRun, "read": len(res.Items),
			"added": resp.Added, "changed": resp.Changed, "delisted": resp.Delisted, "unchanged": resp.Unchanged,
			"rejected": rejects, "in_force": resp.InForce, "log_index": resp.LogIndex, "publication": pub,
		})
	}
	what := "imported"
	if dryRun {
		what = "would import (dry run)"
	}
	fmt.Fprintf(out, "%s %s: %d entries read\n", what, res.Source, len(res.Items))
	if err := table(out, "ADDED\tCHANGED\tDELISTED\tUNCHANGED\tREJECTED", [][]string{{
		fmt.Sprint(resp.Added), fmt.Sprint(resp.Changed), fmt.Sprint(resp.Delisted), fmt.Sprint(resp.Unchanged), fmt.Sprint(len(rejects)),
	}}); err != nil {
		return err
	}
	switch pub {
	case pubCommitted:
		fmt.Fprintf(out, "log_index: %d\n", resp.LogIndex)
	case pubNotShared:
		fmt.Fprintln(out, "log_index: - (not yet shared: the node is in no federation, or no quorum within its publish wait; it publishes the entries later)")
	}
	writeRejects(out, rejects)
	return nil
}

// fileRejects are the rows the parse (or the size check) rejected, by line.
func fileRejects(res *importer.Result) []importReject {
	rs := make([]importReject, 0, len(res.Rejects))
	for _, r := range res.Rejects {
		rs = append(rs, importReject{Line: r.Line, SourceRef: r.Ref, Reason: r.Reason})
	}
	return rs
}

func writeRejects(w io.Writer, rs []importReject) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nrejected:")
	for _, r := range rs {
		switch {
		case r.Line > 0 && r.SourceRef != "":
			fmt.Fprintf(w, "  line %d (%s): %s\n", r.Line, cell(r.SourceRef), cell(r.Reason))
		case r.Line > 0:
			fmt.Fprintf(w, "  line %d: %s\n", r.Line, cell(r.Reason))
		default:
			fmt.Fprintf(w, "  %s: %s\n", cell(r.SourceRef), cell(r.Reason))
		}
	}
}
