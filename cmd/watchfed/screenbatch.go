package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// batchColumns are the input columns a header row may name; without a
// header the first column is the name.
var batchColumns = []string{"name", "schema", "country", "birth_date", "id", "ref"}

type batchRow struct {
	n   int // 1-based data row
	req *pb.ScreenRequest
}

func newScreenBatchCmd() *cobra.Command {
	var (
		cf          clientFlags
		sf          screenFlags
		out, format string
	)
	cmd := &cobra.Command{
		Use:   "batch FILE.csv",
		Short: "Screen every row of a CSV file; CSV or JSON lines out, resumable",
		Long: `Screen a file of counterparties. The input is CSV; a header row may name the columns
name, schema, country, birth_date, id and ref (countries and ids separated by ";"),
otherwise the first column is the name. The flags (--threshold, --limit, --schema, ...)
apply to rows that do not say otherwise.

The output has one line per match, or one line with no match, for each input row, and
names the input row it belongs to (CSV: row, ref, query, score, record_id, origin, shared,
kind, matched_name, explanation; JSON lines: {"row", "ref", "query", "results"}). With
--out, an interrupted run continues where it stopped when started again with the same
arguments: the rows already in the output file are not screened again.`,
		Example: `  watchfed screen batch customers.csv --out hits.csv
  watchfed screen batch customers.csv --format jsonl --threshold 0.85 > hits.jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cf.output == "json" {
				format = "jsonl"
			}
			if format != "csv" && format != "jsonl" {
				return usagef("--format: %q is not csv or jsonl", format)
			}
			base, err := sf.request("")
			if err != nil {
				return err
			}
			rows, err := readBatch(args[0], base)
			if err != nil {
				return err
			}
			w, done, closeOut, err := openBatchOut(out, format, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			defer closeOut()
			for len(rows) > 0 && rows[0].n <= done {
				rows = rows[1:]
			}
			if done > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "resuming after row %d\n", done)
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				return runBatch(ctx, conn, rows, w, format, newProgress(cmd.ErrOrStderr(), "screen", len(rows)))
			})
		},
	}
	addClientFlags(cmd, &cf)
	sf.add(cmd)
	cmd.Flags().StringVar(&out, "out", "", "output file (default standard output); an existing one is resumed")
	cmd.Flags().StringVar(&format, "format", "csv", "output format: csv or jsonl")
	return cmd
}

func readBatch(path string, base *pb.ScreenRequest) ([]batchRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageError{err}
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	col := map[string]int{"name": 0}
	var rows []batchRow
	for first, n := true, 0; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, usagef("%s: %v", path, err)
		}
		if first {
			if hdr := header(rec); hdr != nil {
				col = hdr
				continue
			}
		}
		n++
		line, _ := cr.FieldPos(0)
		get := func(c string) string {
			if i, ok := col[c]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		req := &pb.ScreenRequest{Name: get("name"), Schema: base.Schema, Countries: base.Countries, BirthDate: base.BirthDate,
			Identifiers: base.Identifiers, AsOf: base.AsOf, Threshold: base.Threshold, Limit: base.Limit, Kind: base.Kind, Ref: get("ref")}
		if v := get("schema"); v != "" {
			s, err := parseSchema(v)
			if err != nil {
				return nil, usagef("%s line %d: %v", path, line, err)
			}
			req.Schema = s
		}
		if v := get("country"); v != "" {
			req.Countries = strings.Split(v, ";")
		}
		if v := get("birth_date"); v != "" {
			req.BirthDate = v
		}
		if v := get("id"); v != "" {
			req.Identifiers = strings.Split(v, ";")
		}
		if req.Name == "" && len(req.Identifiers) == 0 {
			return nil, usagef("%s line %d: no name and no id", path, line)
		}
		rows = append(rows, batchRow{n: n, req: req})
	}
	return rows, nil
}

// header returns the column positions if rec is a header row naming "name".
func header(rec []string) map[string]int {
	m := map[string]int{}
	for i, h := range rec {
		h = strings.ToLower(strings.TrimSpace(h))
		for _, c := range batchColumns {
			if h == c {
				m[c] = i
			}
		}
	}
	if _, ok := m["name"]; !ok {
		return nil
	}
	return m
}

var batchCSVHeader = []string{"row", "ref", "query", "score", "record_id", "origin", "shared", "kind", "matched_name", "explanation"}

// openBatchOut opens the output, and for an existing file finds the last
// input row it holds completely (a torn last line is cut off).
func openBatchOut(path, format string, stdout io.Writer) (io.Writer, int, func(), error) {
	if path == "" {
		if format == "csv" {
			var b bytes.Buffer
			writeCSV(&b, batchCSVHeader)
			stdout.Write(b.Bytes())
		}
		return stdout, 0, func() {}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil, err
	}
	keep := bytes.LastIndexByte(data, '\n') + 1
	data = data[:keep]
	done := 0
	if len(data) > 0 {
		lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
		last := lines[len(lines)-1]
		if format == "jsonl" {
			var v struct {
				Row int `json:"row"`
			}
			if err := json.Unmarshal(last, &v); err != nil {
				return nil, 0, nil, usagef("--out %s: last line is not a JSON result line: %v", path, err)
			}
			done = v.Row
		} else if len(lines) > 1 {
			rec, err := csv.NewReader(bytes.NewReader(last)).Read()
			if err != nil || len(rec) == 0 {
				return nil, 0, nil, usagef("--out %s: last line is not a CSV result line", path)
			}
			if done, err = strconv.Atoi(rec[0]); err != nil {
				return nil, 0, nil, usagef("--out %s: last line's row %q is not a number", path, rec[0])
			}
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, nil, err
	}
	if err := f.Truncate(int64(keep)); err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	if _, err := f.Seek(int64(keep), io.SeekStart); err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	if keep == 0 && format == "csv" {
		var b bytes.Buffer
		writeCSV(&b, batchCSVHeader)
		f.Write(b.Bytes())
	}
	return f, done, func() { f.Close() }, nil
}

// writeCSV writes one CSV row, its fields escaped for a terminal like all
// the CLI prints (CSV quotes tabs and line feeds itself).
func writeCSV(b *bytes.Buffer, rec []string) {
	esc := make([]string, len(rec))
	for i, f := range rec {
		esc[i] = escapeText(f, true)
	}
	w := csv.NewWriter(b)
	_ = w.Write(esc)
	w.Flush()
}

// runBatch streams the rows to ScreenBatch and writes each row's results
// whole: the output only ever ends at a row boundary, which is what makes
// resuming exact.
func runBatch(ctx context.Context, conn *grpc.ClientConn, rows []batchRow, w io.Writer, format string, bar *progress) error {
	defer bar.done()
	if len(rows) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := pb.NewScreeningServiceClient(conn).ScreenBatch(ctx)
	if err != nil {
		return err
	}
	sendErr := make(chan error, 1)
	go func() {
		for _, r := range rows {
			if err := stream.Send(&pb.ScreenBatchRequest{Query: r.req}); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- stream.CloseSend()
	}()
	var buf bytes.Buffer
	flush := func() error {
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		return err
	}
	for i, r := range rows {
		resp, err := stream.Recv()
		if err != nil {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			if err == io.EOF {
				return fmt.Errorf("the node ended the batch after %d of %d rows", i, len(rows))
			}
			return err
		}
		res := resp.GetResponse()
		if format == "jsonl" {
			line, err := json.Marshal(map[string]any{"row": r.n, "ref": r.req.Ref, "query": r.req.Name, "results": protoList(res.Results)})
			if err != nil {
				return err
			}
			buf.Write(escapeJSON(line))
			buf.WriteByte('\n')
		} else {
			base := []string{strconv.Itoa(r.n), r.req.Ref, r.req.Name}
			if len(res.Results) == 0 {
				writeCSV(&buf, append(base, "", "", "", "", "", "", ""))
			}
			for _, m := range res.Results {
				rec := m.GetRecord()
				writeCSV(&buf, append(base[:3:3], fmt.Sprintf("%.3f", m.Score), rec.GetId(), m.Origin, strconv.FormatBool(m.Shared),
					enumName(rec.GetKind().String(), "KIND_"), m.GetExplanation().GetMatchedName(), m.GetExplanation().GetSummary()))
			}
		}
		if buf.Len() > 64<<10 {
			if err := flush(); err != nil {
				return err
			}
		}
		bar.set(i + 1)
	}
	if err := flush(); err != nil {
		return err
	}
	return <-sendErr
}
