package importer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/testnet/shareddata"
)

// sharedData is where the real list files are, when present.
var sharedData = shareddata.Dir()

func openReal(t *testing.T, rel string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join(sharedData, rel))
	if err != nil {
		t.Skipf("real list files not present (%v)", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestRealLists parses the complete real files: every entry must become a
// valid record, and nothing may be rejected.
func TestRealLists(t *testing.T) {
	for _, tc := range []struct {
		format string
		files  func(t *testing.T) Files
		want   int
		refuse map[string]string // entries the node refuses: source ref → field at fault
	}{
		{"ofac-sdn", func(t *testing.T) Files {
			return Files{Main: openReal(t, "ofac-sdn-2021/sdn.csv"), Alt: openReal(t, "ofac-sdn-2021/alt.csv"), Add: openReal(t, "ofac-sdn-2021/add.csv"), Comments: openReal(t, "ofac-sdn-2021/sdn_comments.csv")}
		}, 8976, nil},
		{"ofac-sdn", func(t *testing.T) Files { return Files{Main: openReal(t, "ofac-sdn-2024/sdn_2024-05-03.csv")} }, 14965, nil},
		{"ofac-sdn", func(t *testing.T) Files {
			return Files{Main: openReal(t, "ofac-non-sdn-2025-12/cons_prim.csv"), Alt: openReal(t, "ofac-non-sdn-2025-12/cons_alt.csv"), Add: openReal(t, "ofac-non-sdn-2025-12/cons_add.csv"), Comments: openReal(t, "ofac-non-sdn-2025-12/cons_comments.csv")}
		}, 442, nil},
		// An alias of several names over 300 characters (un:6908429) is
		// taken name by name: no entry is refused.
		{"un-xml", func(t *testing.T) Files { return Files{Main: openReal(t, "un/consolidated_2026-02.xml")} }, 1003, nil},
		// 581 rows; a party at several addresses has a row per address.
		{"bis-dpl", func(t *testing.T) Files { return Files{Main: openReal(t, "bis-dpl/dpl_2022.txt")} }, 457, nil},
		{"ftm", func(t *testing.T) Files { return Files{Main: openReal(t, "ftm/zala.ftm.json")} }, 17, nil},
	} {
		t.Run(tc.format, func(t *testing.T) {
			res, err := Parse(tc.format, "", tc.files(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.Rejects {
				t.Errorf("rejected: %s", r)
			}
			if len(res.Items) != tc.want {
				t.Errorf("%d items, want %d", len(res.Items), tc.want)
			}
			for _, it := range res.Items {
				rec := it.Record
				rec.Marking = 1
				record.Normalize(rec, time.Now())
				err := record.Validate(rec)
				if want := tc.refuse[rec.SourceRef]; want != "" {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("line %d %s: %v, want refused: %s", it.Line, rec.SourceRef, err, want)
					}
				} else if err != nil {
					t.Errorf("line %d %s: %v", it.Line, rec.SourceRef, err)
				}
			}
		})
	}
}
