package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/watchfed/watchfed/node/importer"
	"github.com/watchfed/watchfed/node/names"
	"github.com/watchfed/watchfed/node/screen"
	"github.com/watchfed/watchfed/testnet/shareddata"
)

// TestScreenQualityInProcess runs the quality evaluation of bench screen on
// OFAC SDN 2024 + UN against an index in this process (no node, no gRPC):
// the figures of bench screen --synthetic 0, in a minute. Set
// WATCHFED_SCREEN_EVAL=1 to run it, WATCHFED_SCREEN_MISSES to a file to
// write the misses to, WATCHFED_SCREEN_SYNTHETIC to a number of synthetic
// names to evaluate on those instead, WATCHFED_SCREEN_SEED to a number to
// draw every set with seeds of its own (EvalSeedsFrom: variants, near,
// fresh, re-paired and cross-list names the project has not seen; the
// default is the reported figures' seeds), and WATCHFED_SCREEN_ORDINARY to
// a file of ordinary names (the format of ReadOrdinary) in place of data's.
// WATCHFED_SCREEN_DUMP to a folder writes the indexed names, every query
// and the index's first ten for each into it (screendump.go), to screen
// them with another engine.
//
//	WATCHFED_SCREEN_EVAL=1 go test -run ScreenQualityInProcess -v ./testnet/bench
func TestScreenQualityInProcess(t *testing.T) {
	if os.Getenv("WATCHFED_SCREEN_EVAL") == "" {
		t.Skip("set WATCHFED_SCREEN_EVAL=1 to run the quality evaluation in process")
	}
	data := shareddata.Dir()
	items, dataset, tune := itemsOf(realLists(t, data)), "OFAC SDN 2024 + UN (in process)", TuneSplit(data)
	if n, err := strconv.Atoi(os.Getenv("WATCHFED_SCREEN_SYNTHETIC")); err == nil && n > 0 {
		items, dataset, tune = Synthetic(n, 1), fmt.Sprintf("%d synthetic names (in process)", n), TuneSplit("")
	} else if items == nil {
		t.Skip("real list files not present")
	}
	x := screen.NewIndex()
	given := givenNames(t)
	x.UseGivenNames(given)
	for _, it := range items {
		it.Record.Id = it.Record.SourceRef
		x.Put(screen.EntryOf(it.Record, false))
	}
	ordinary, source, err := LoadOrdinary(data)
	if f := os.Getenv("WATCHFED_SCREEN_ORDINARY"); f != "" {
		ordinary, source, err = readOrdinaryFile(f)
	}
	if err != nil {
		t.Fatal(err)
	}
	seeds := evalSeeds(t)
	t.Logf("ordinary names: %d from %s; seeds %+v", len(ordinary), source, seeds)
	sets := EvalSplitsSeeded(items, ordinary, tune, 200, seeds)
	if os.Getenv("WATCHFED_SCREEN_SYNTHETIC") == "" {
		if cross, ok := CrossListSetSeeded(data, items, 200, seeds.Cross); ok {
			sets = append(sets, cross)
		}
	}
	t.Logf("names another romanisation or order of a listed name (SeparateSameName): %d", SeparateSameName(sets, items, given))
	search := func(_ context.Context, name string) ([]Hit, error) {
		rs := x.Search(screen.Query{Name: name, Limit: 10})
		hits := make([]Hit, len(rs))
		for i, r := range rs {
			hits[i] = Hit{Ref: r.Entry.ID, Matched: r.Explanation.Matched, Score: r.Score, Explanation: r.Explanation.String()}
		}
		return hits, nil
	}
	var rec HitsRecorder
	dump := os.Getenv("WATCHFED_SCREEN_DUMP")
	if dump != "" {
		search = rec.Wrap(search)
	}
	run := ScreenRun{Dataset: dataset, Ordinary: fmt.Sprintf("%d ordinary names", len(ordinary))}
	var misses []string
	for _, set := range sets {
		q, err := Evaluate(context.Background(), set, search)
		if err != nil {
			t.Fatal(err)
		}
		run.Quality = append(run.Quality, q)
		for _, m := range q.Misses {
			misses = append(misses, q.Split+" "+m)
		}
	}
	var b strings.Builder
	if err := WriteScreenTable(&b, []ScreenRun{run}); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
	if dump != "" {
		if err := WriteEvalDump(dump, items, sets); err != nil {
			t.Fatal(err)
		}
		if err := rec.WriteHits(dump, "watchfed"); err != nil {
			t.Fatal(err)
		}
		t.Logf("dump in %s: %d screens in %v, %.0f µs a screen", dump, rec.Queries, rec.Time.Round(time.Millisecond), float64(rec.Time.Microseconds())/float64(rec.Queries))
	}
	if f := os.Getenv("WATCHFED_SCREEN_MISSES"); f != "" {
		if err := os.WriteFile(f, []byte(strings.Join(misses, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// evalSeeds are the evaluation's seeds: the default ones, or
// EvalSeedsFrom($WATCHFED_SCREEN_SEED).
func evalSeeds(tb testing.TB) EvalSeeds {
	tb.Helper()
	v := os.Getenv("WATCHFED_SCREEN_SEED")
	if v == "" {
		return DefaultEvalSeeds()
	}
	base, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		tb.Fatalf("WATCHFED_SCREEN_SEED %q: %v", v, err)
	}
	return EvalSeedsFrom(base)
}

// readOrdinaryFile reads ordinary names from a file of ReadOrdinary's format.
func readOrdinaryFile(path string) ([]Ordinary, string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("ordinary names: %w", err)
	}
	defer fh.Close()
	out, err := ReadOrdinary(fh)
	if err != nil {
		return nil, "", fmt.Errorf("ordinary names %s: %w", path, err)
	}
	return out, path, nil
}

// givenNames is the lexicon of given names the index uses: the project's
// (names.DefaultGivenNames, as the node's), or $WATCHFED_GIVEN_NAMES: "off"
// for none, a file in the CSV format of names.ParseGivenNames (counting
// names at least as common as $WATCHFED_GIVEN_MINFREQ, default -7: at -8
// the tuning split's "Jones PLC" met "YOUNES") if it ends in .csv, else a
// file in the project's format (names.LoadLexicon).
func givenNames(tb testing.TB) *names.GivenNames {
	tb.Helper()
	path := os.Getenv("WATCHFED_GIVEN_NAMES")
	switch {
	case path == "":
		g := names.DefaultGivenNames()
		tb.Logf("lexicon of given names: the project's, %d names", g.Len())
		return g
	case path == "off":
		tb.Log("no lexicon of given names")
		return nil
	case strings.HasSuffix(path, ".csv"):
		minFreq := -7
		if v, err := strconv.Atoi(os.Getenv("WATCHFED_GIVEN_MINFREQ")); err == nil {
			minFreq = v
		}
		g, err := names.LoadGivenNames(path, minFreq)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Logf("lexicon of given names: %d names from %s (frequency ≥ %d)", g.Len(), path, minFreq)
		return g
	}
	g, err := names.LoadLexicon(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("lexicon of given names: %d names from %s", g.Len(), path)
	return g
}

// realLists parses OFAC SDN 2024 and the UN list from data, one result a
// file, or returns nil where either file is absent.
func realLists(tb testing.TB, data string) []*importer.Result {
	tb.Helper()
	var results []*importer.Result
	for _, f := range []struct{ format, path string }{
		{"ofac-sdn", filepath.Join(data, "ofac-sdn-2024", "sdn_2024-05-03.csv")},
		{"un-xml", filepath.Join(data, "un", "consolidated_2026-02.xml")},
	} {
		fh, err := os.Open(f.path)
		if err != nil {
			return nil
		}
		res, err := importer.Parse(f.format, "", importer.Files{Main: fh})
		fh.Close()
		if err != nil {
			tb.Fatal(err)
		}
		results = append(results, res)
	}
	return results
}

// itemsOf joins the results' items.
func itemsOf(results []*importer.Result) []importer.Item {
	var items []importer.Item
	for _, res := range results {
		items = append(items, res.Items...)
	}
	return items
}
