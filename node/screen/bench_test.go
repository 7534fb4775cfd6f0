package screen_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/watchfed/watchfed/node/importer"
	"github.com/watchfed/watchfed/node/names"
	"github.com/watchfed/watchfed/node/screen"
	"github.com/watchfed/watchfed/testnet/bench"
	"github.com/watchfed/watchfed/testnet/shareddata"
)

// realItems parses the OFAC SDN 2024 and UN lists, or skips.
func realItems(b *testing.B) []importer.Item {
	b.Helper()
	data := shareddata.Dir()
	var items []importer.Item
	for _, f := range []struct{ format, path string }{
		{"ofac-sdn", filepath.Join(data, "ofac-sdn-2024", "sdn_2024-05-03.csv")},
		{"un-xml", filepath.Join(data, "un", "consolidated_2026-02.xml")},
	} {
		fh, err := os.Open(f.path)
		if err != nil {
			b.Skipf("real lists not present: %v", err)
		}
		res, err := importer.Parse(f.format, "", importer.Files{Main: fh})
		fh.Close()
		if err != nil {
			b.Fatal(err)
		}
		items = append(items, res.Items...)
	}
	return items
}

func build(items []importer.Item, given *names.GivenNames) *screen.Index {
	x := screen.NewIndex()
	x.UseGivenNames(given)
	for i, it := range items {
		it.Record.Id = strconv.Itoa(i)
		x.Put(screen.EntryOf(it.Record, false))
	}
	return x
}

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// benchSearch screens variant and unrelated names against an index in
// process: the engine's own cost, without gRPC, TLS and the audit write.
// The index uses the project's lexicon of given names, as the node's does
// (names.DefaultGivenNames); $WATCHFED_GIVEN_NAMES is "off" for none, or a
// file: CSV (names.LoadGivenNames, frequency -7 or more) if it ends in .csv,
// else the project's format (names.LoadLexicon). The lexicon's memory is
// reported apart, as it is loaded once per process, not per index.
func benchSearch(b *testing.B, items []importer.Item) {
	given, lexBytes := benchLexicon(b)
	before := heap()
	x := build(items, given)
	after := heap()
	_, names := x.Len()
	var queries []string
	for _, v := range bench.Variants(items, 1000, 2) {
		queries = append(queries, v.Query)
	}
	queries = append(queries, bench.Unrelated(250, 3)...)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		x.Search(screen.Query{Name: queries[i%len(queries)], Threshold: screen.DefaultThreshold})
	}
	b.ReportMetric(float64(after-before)/float64(names), "index-B/name")
	b.ReportMetric(float64(after-before)/(1<<20), "index-MiB")
	b.ReportMetric(float64(lexBytes)/(1<<20), "lexicon-MiB")
	runtime.KeepAlive(x)
}

// benchLexicon loads the benchmarks' lexicon once (benchSearch), and tells
// the heap it took.
var benchLexicon = func() func(b *testing.B) (*names.GivenNames, uint64) {
	var (
		once  sync.Once
		given *names.GivenNames
		bytes uint64
		err   error
	)
	return func(b *testing.B) (*names.GivenNames, uint64) {
		once.Do(func() {
			before := heap()
			switch path := os.Getenv("WATCHFED_GIVEN_NAMES"); {
			case path == "":
				given = names.DefaultGivenNames()
			case path == "off":
			case strings.HasSuffix(path, ".csv"):
				given, err = names.LoadGivenNames(path, -7)
			default:
				given, err = names.LoadLexicon(path)
			}
			bytes = heap() - before
		})
		if err != nil {
			b.Fatal(err)
		}
		return given, bytes
	}
}()

func BenchmarkSearchSDNandUN(b *testing.B) { benchSearch(b, realItems(b)) }

func BenchmarkSearchSynthetic(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchSearch(b, bench.Synthetic(n, 1)) })
	}
}
