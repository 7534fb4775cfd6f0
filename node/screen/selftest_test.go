package screen_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/watchfed/watchfed/node/importer"
	"github.com/watchfed/watchfed/node/screen"
	"github.com/watchfed/watchfed/testnet/shareddata"
)

// exactSelfTest screens every primary name and strong alias of the items as
// written: each must find its own entry first, or tied first, at 0.99 or
// more.
func exactSelfTest(t *testing.T, items []importer.Item) {
	t.Helper()
	x := screen.NewIndex()
	for _, it := range items {
		it.Record.Id = it.Record.SourceRef
		x.Put(screen.EntryOf(it.Record, false))
	}
	type job struct{ id, name string }
	var jobs []job
	for _, it := range items {
		e := screen.EntryOf(it.Record, false)
		for _, n := range e.Names {
			if !n.Weak && !n.Party {
				jobs = append(jobs, job{e.ID, n.Text})
			}
		}
	}
	// One worker per CPU: the index is safe for concurrent searches.
	fails := make([]string, len(jobs))
	var wg sync.WaitGroup
	for w := range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := w; i < len(jobs); i += runtime.GOMAXPROCS(0) {
				j := jobs[i]
				rs := x.Search(screen.Query{Name: j.name, Threshold: 0.99, Limit: 100})
				i0 := slices.IndexFunc(rs, func(r screen.Result) bool { return r.Entry.ID == j.id })
				if i0 < 0 || rs[i0].Score < rs[0].Score {
					top := "nothing at 0.99"
					if len(rs) > 0 {
						top = rs[0].Entry.ID + " " + rs[0].Explanation.String()
					}
					fails[i] = fmt.Sprintf("%s %q: not first at 0.99 or more; first: %s", j.id, j.name, top)
				}
			}
		})
	}
	wg.Wait()
	names, failed := len(jobs), 0
	for _, f := range fails {
		if f != "" {
			if failed++; failed <= 20 {
				t.Error(f)
			}
		}
	}
	t.Logf("%d names of %d entries screened as written, %d not first at 0.99", names, len(items), failed)
	if failed > 0 {
		t.Errorf("%d of %d names not found first at 0.99 or more", failed, names)
	}
}

func parseFiles(t *testing.T, files ...[2]string) []importer.Item {
	t.Helper()
	var items []importer.Item
	for _, f := range files {
		fh, err := os.Open(f[1])
		if err != nil {
			t.Skipf("list file not present: %v", err)
		}
		res, err := importer.Parse(f[0], "", importer.Files{Main: fh})
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, res.Items...)
	}
	return items
}

// TestExactNamesFixtures runs the exact-name self-test on the committed
// excerpts of OFAC SDN 2024 and the UN list.
func TestExactNamesFixtures(t *testing.T) {
	dir := filepath.Join("..", "importer", "testdata")
	exactSelfTest(t, parseFiles(t, [2]string{"ofac-sdn", filepath.Join(dir, "ofac-sdn-2024-05-03.csv")}, [2]string{"un-xml", filepath.Join(dir, "un-consolidated.xml")}))
}

// TestExactNamesReal runs the exact-name self-test on the complete OFAC SDN
// 2024 and UN lists, when present.
func TestExactNamesReal(t *testing.T) {
	if testing.Short() {
		t.Skip("the complete lists take a few seconds")
	}
	data := shareddata.Dir()
	exactSelfTest(t, parseFiles(t, [2]string{"ofac-sdn", filepath.Join(data, "ofac-sdn-2024", "sdn_2024-05-03.csv")}, [2]string{"un-xml", filepath.Join(data, "un", "consolidated_2026-02.xml")}))
}
