package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/watchfed/watchfed/node/importer"
	"github.com/watchfed/watchfed/node/screen"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"google.golang.org/protobuf/proto"
)

// TestEvalDump writes the evaluation of synthetic names and the committed
// ordinary names out and reads it back: the files hold every entry's names
// and every query, and the figures from the hits as read are those of the
// evaluation itself.
func TestEvalDump(t *testing.T) {
	items := Synthetic(400, 1)
	ordinary, _, err := LoadOrdinary("")
	if err != nil {
		t.Fatal(err)
	}
	sets := EvalSplits(items, ordinary, TuneSplit(""), 8)
	// the first variant's name listed twice: both entries are right answers
	first := sets[0].Variants[0]
	i := slices.IndexFunc(items, func(it importer.Item) bool { return it.Record.SourceRef == first.Ref })
	dup := proto.Clone(items[i].Record).(*pb.Record)
	dup.SourceRef = "synthetic:dup"
	dup.Subject.Aliases = []*pb.Alias{{Name: "Tab\tName"}}
	items = append(items, importer.Item{Line: len(items) + 1, Record: dup})
	for i := range sets {
		sets[i].sameName = sameNames(items, sets[i].Variants)
	}
	x := screen.NewIndex()
	for _, it := range items {
		r := proto.Clone(it.Record).(*pb.Record)
		r.Id = r.SourceRef
		x.Put(screen.EntryOf(r, false))
	}
	var rec HitsRecorder
	search := rec.Wrap(func(_ context.Context, name string) ([]Hit, error) {
		rs := x.Search(screen.Query{Name: name, Limit: 10})
		hits := make([]Hit, len(rs))
		for i, r := range rs {
			hits[i] = Hit{Ref: r.Entry.ID, Matched: r.Explanation.Matched, Score: r.Score}
		}
		return hits, nil
	})
	// a set with no query (fresh names of synthetic ones) has no row
	sets = slices.DeleteFunc(sets, func(s EvalSet) bool { return len(s.Variants)+len(s.Ordinary) == 0 })
	var want []Quality
	queries := 0
	for _, s := range sets {
		q, err := Evaluate(context.Background(), s, search)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, q)
		queries += len(s.Variants) + len(s.Ordinary)
	}
	dir := t.TempDir()
	if err := WriteEvalDump(dir, items, sets); err != nil {
		t.Fatal(err)
	}
	if err := rec.WriteHits(dir, "watchfed"); err != nil {
		t.Fatal(err)
	}

	b, err := os.ReadFile(filepath.Join(dir, "names.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(rows) != len(items) {
		t.Fatalf("names.tsv: %d rows, want %d", len(rows), len(items))
	}
	if got, want := rows[len(rows)-1], "synthetic:dup\t"+strings.ToLower(dup.Subject.Schema.String()[len("SCHEMA_"):])+"\t"+dup.Subject.Name+"\tTab Name"; got != want {
		t.Errorf("names.tsv: last row %q, want %q", got, want)
	}
	got, err := ReadEvalDump(dir)
	if err != nil {
		t.Fatal(err)
	}
	n, accepted := 0, 0
	for i, s := range got {
		n += len(s.Variants) + len(s.Ordinary)
		if s.Split != sets[i].Split || !reflect.DeepEqual(s.Variants, sets[i].Variants) || !reflect.DeepEqual(s.Ordinary, sets[i].Ordinary) {
			t.Errorf("set %d (%s) read back otherwise", i, s.Split)
		}
		for _, v := range s.Variants {
			if v.Ref == first.Ref && s.sameName[nameKey(v.Source)]["synthetic:dup"] {
				accepted++
			}
		}
	}
	if n != queries || len(got) != len(sets) {
		t.Fatalf("queries.tsv: %d queries in %d sets, want %d in %d", n, len(got), queries, len(sets))
	}
	if accepted == 0 {
		t.Error("no variant of the first entry accepts synthetic:dup, listed under the same name")
	}
	fh, err := os.Open(filepath.Join(dir, "hits-watchfed.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	hits, err := ReadHits(fh)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range got {
		q, err := Evaluate(context.Background(), s, HitsSearcher(hits))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(q.Kinds, want[i].Kinds) || !reflect.DeepEqual(q.Ordinary, want[i].Ordinary) {
			t.Errorf("%s: figures from the hits file differ from the evaluation's", s.Split)
		}
	}
}

// TestScreenPeerCompare scores the hits files of a dump
// (WATCHFED_SCREEN_DUMP) by the evaluation's rules, on the queries every
// file has (another engine screens a sample), one column group an engine.
//
//	WATCHFED_SCREEN_PEER=DIR go test -run ScreenPeerCompare -v ./testnet/bench
func TestScreenPeerCompare(t *testing.T) {
	dir := os.Getenv("WATCHFED_SCREEN_PEER")
	if dir == "" {
		t.Skip("set WATCHFED_SCREEN_PEER to a dump folder with hits files")
	}
	sets, err := ReadEvalDump(dir)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "hits-*.tsv"))
	if len(files) == 0 {
		t.Fatalf("no hits-*.tsv in %s", dir)
	}
	var engines []string
	var hits []map[string][]Hit
	var screened []map[int]bool
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ReadHits(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		engines = append(engines, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "hits-"), ".tsv"))
		hits = append(hits, h)
		// hits-NAME.queries, if there, lists the rows of queries.tsv (from 1)
		// its engine screened: a sample
		var rows map[int]bool
		qf := strings.TrimSuffix(f, ".tsv") + ".queries"
		if b, err := os.ReadFile(qf); err == nil {
			rows = map[int]bool{}
			for _, r := range strings.Fields(string(b)) {
				n, err := strconv.Atoi(r)
				if err != nil {
					t.Fatalf("%s: %v", qf, err)
				}
				rows[n] = true
			}
			if len(rows) == 0 {
				t.Fatalf("%s: no rows", qf)
			}
		}
		screened = append(screened, rows)
	}
	// the sample: the rows every engine screened
	row := 0
	in := func() bool {
		row++
		for _, s := range screened {
			if s != nil && !s[row] {
				return false
			}
		}
		return true
	}
	for i := range sets {
		sets[i].Variants = slices.DeleteFunc(sets[i].Variants, func(Variant) bool { return !in() })
		sets[i].Ordinary = slices.DeleteFunc(sets[i].Ordinary, func(Ordinary) bool { return !in() })
	}
	quality := make([][]Quality, len(engines))
	for e := range engines {
		for _, s := range sets {
			q, err := Evaluate(context.Background(), s, HitsSearcher(hits[e]))
			if err != nil {
				t.Fatal(err)
			}
			quality[e] = append(quality[e], q)
		}
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "split\tvariant\tqueries\t%s\t\n", strings.Join(slices.Repeat([]string{"recall@10\ttop-1\tfound ≥ 0.8"}, len(engines)), "\t"))
	for i, s := range sets {
		for _, k := range EvalKinds {
			if q := quality[0][i].Kinds[k]; q != nil {
				fmt.Fprintf(tw, "%s\t%s\t%d\t", s.Split, k, q.Queries)
				for e := range engines {
					q := quality[e][i].Kinds[k]
					fmt.Fprintf(tw, "%.2f\t%.2f\t%.2f\t", q.Recall(), q.Top1Share(), q.At08Share())
				}
				fmt.Fprintln(tw)
			}
		}
	}
	fmt.Fprintf(tw, "split\tordinary\tnames\t%s\t\n", strings.Join(slices.Repeat([]string{"share ≥ 0.8\t≥ 0.9\t"}, len(engines)), "\t"))
	for i, s := range sets {
		for _, k := range OrdinaryKinds {
			if q := quality[0][i].Ordinary[k]; q != nil {
				fmt.Fprintf(tw, "%s\t%s\t%d\t", s.Split, k, q.Names)
				for e := range engines {
					q := quality[e][i].Ordinary[k]
					fmt.Fprintf(tw, "%.3f\t%.3f\t\t", ratio(q.At08, q.Names), ratio(q.At09, q.Names))
				}
				fmt.Fprintln(tw)
			}
		}
	}
	tw.Flush()
	t.Logf("engines (column groups in this order): %s\n%s", strings.Join(engines, ", "), b.String())
}

// TestDumpFilesRefused: a wrong or empty dump file is an error naming what
// is wrong, never an engine that found nothing.
func TestDumpFilesRefused(t *testing.T) {
	for _, tc := range []struct{ name, hits, want string }{
		{"empty", "", "no hits"},
		{"fields", "q\t1\tref\t0.9\n", "line 1: 4 fields, want 5"},
		{"rank", "q\t2\tref\t0.9\tname\n", `line 1: rank "2" after 0 hits of "q"`},
		{"score", "q\t1\tref\thigh\tname\n", "line 1: score"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadHits(strings.NewReader(tc.hits)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadHits: %v, want an error with %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, queries, want string }{
		{"empty", "", "no queries"},
		{"fields", "tuning\ttypo1\tq\n", "queries.tsv:1: 3 fields, want 7"},
	} {
		t.Run("queries "+tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "queries.tsv"), []byte(tc.queries), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadEvalDump(dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadEvalDump: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
