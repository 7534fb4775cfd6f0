package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/watchfed/watchfed/node/importer"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func newImportCmd() *cobra.Command {
	var (
		cf                      clientFlags
		format, source, marking string
		dryRun                  bool
	)
	cmd := &cobra.Command{
		Use:   "import --format F PATH...",
		Short: "Import an edition of a public list: adds, amends and delists to match it",
		Long: `Read a complete edition of a public list and bring the node's records from that list in
line with it: entries new since the last import are added, changed ones amended, and
entries no longer listed delisted (designations) or revoked (denials). Importing the
same edition twice changes nothing. Malformed rows are reported by line and skipped;
the rest imports. Every write is audited and published like any other.

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
  watchfed import --format bis-dpl dpl.txt --dry-run -o json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.check(); err != nil {
				return err
			}
			m, ok := pb.Marking_value["MARKING_"+strings.ReplaceAll(strings.ToUpper(marking), "+", "_")]
			if !ok || m == 0 {
				return usagef("--marking: %q is not CLEAR, GREEN, AMBER, AMBER+STRICT or RED", marking)
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
				return usageError{err}
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				return runImport(ctx, cmd, conn, res, pb.Marking(m), dryRun, cf.output)
			})
		},
	}
	addClientFlags(cmd, &cf)
	cmd.Flags().StringVar(&format, "format", "", "list format: "+strings.Join(importer.Formats, ", ")+" (required)")
	cmd.Flags().StringVar(&source, "source", "", "name of the list in source references (default: per format)")
	cmd.Flags().StringVar(&marking, "marking", "CLEAR", "marking of the imported records")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would change without writing")
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

func runImport(ctx context.Context, cmd *cobra.Command, conn *grpc.ClientConn, res *importer.Result, marking pb.Marking, dryRun bool, output string) error {
	bar := newProgress(cmd.ErrOrStderr(), "import "+res.Source, len(res.Items))
	resp, err := importer.Send(ctx, pb.NewImportServiceClient(conn), res, marking, dryRun, bar.set)
	bar.done()
	if err != nil {
		return err
	}
	rejects := make([]importReject, 0, len(res.Rejects)+len(resp.Rejected))
	for _, r := range res.Rejects {
		rejects = append(rejects, importReject{Line: r.Line, SourceRef: r.Ref, Reason: r.Reason})
	}
	for _, r := range resp.Rejected {
		rejects = append(rejects, importReject{SourceRef: r.SourceRef, Reason: r.Reason})
	}
	out := cmd.OutOrStdout()
	if output == "json" {
		return writeJSON(out, map[string]any{
			"source": res.Source, "dry_run": dryRun, "read": len(res.Items),
			"added": resp.Added, "changed": resp.Changed, "delisted": resp.Delisted, "unchanged": resp.Unchanged,
			"rejected": rejects, "log_index": resp.LogIndex,
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
	writeRejects(out, rejects)
	return nil
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
