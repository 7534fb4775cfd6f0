package screen_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/watchfed/watchfed/node/importer"
	"github.com/watchfed/watchfed/testnet/shareddata"
)

// TestExactNamesEditions runs the exact-name self-test on every real list
// edition under the shared data folder, each on its own (an edition is what
// an agency imports), the ones matching was never tuned on included: OFAC
// SDN 2021 with its aliases, the consolidated non-SDN lists, the earlier
// SDN 2024 snapshot and the FollowTheMoney excerpt.
func TestExactNamesEditions(t *testing.T) {
	if testing.Short() {
		t.Skip("the complete lists take a few seconds each")
	}
	data := shareddata.Dir()
	for _, ed := range []struct {
		name, format             string
		main, alt, add, comments string
	}{
		{"ofac-sdn-2021", "ofac-sdn", "ofac-sdn-2021/sdn.csv", "ofac-sdn-2021/alt.csv", "ofac-sdn-2021/add.csv", "ofac-sdn-2021/sdn_comments.csv"},
		{"ofac-non-sdn-2025-12", "ofac-sdn", "ofac-non-sdn-2025-12/cons_prim.csv", "ofac-non-sdn-2025-12/cons_alt.csv", "ofac-non-sdn-2025-12/cons_add.csv", "ofac-non-sdn-2025-12/cons_comments.csv"},
		{"ofac-sdn-2024-04-26", "ofac-sdn", "ofac-sdn-2024/sdn_2024-04-26.csv", "", "", ""},
		{"ofac-sdn-2024-05-03", "ofac-sdn", "ofac-sdn-2024/sdn_2024-05-03.csv", "", "", ""},
		{"un-2026-02", "un-xml", "un/consolidated_2026-02.xml", "", "", ""},
		{"ftm-zala", "ftm", "ftm/zala.ftm.json", "", "", ""},
		{"bis-dpl-2022", "bis-dpl", "bis-dpl/dpl_2022.txt", "", "", ""},
	} {
		t.Run(ed.name, func(t *testing.T) {
			res := parseEdition(t, data, ed.format, ed.main, ed.alt, ed.add, ed.comments)
			if len(res.Rejects) > 0 {
				t.Errorf("%d rejects, first: %s", len(res.Rejects), res.Rejects[0])
			}
			exactSelfTest(t, res.Items)
		})
	}
}

// parseEdition parses one edition of the shared data folder from its files
// (paths relative to data; "" for a file the format does not have),
// skipping the test where a file is absent.
func parseEdition(t *testing.T, data, format, main, alt, add, comments string) *importer.Result {
	t.Helper()
	var files importer.Files
	for _, f := range []struct {
		rel string
		dst *io.Reader
	}{{main, &files.Main}, {alt, &files.Alt}, {add, &files.Add}, {comments, &files.Comments}} {
		if f.rel == "" {
			continue
		}
		fh, err := os.Open(filepath.Join(data, f.rel))
		if err != nil {
			t.Skipf("list file not present: %v", err)
		}
		t.Cleanup(func() { fh.Close() })
		*f.dst = fh
	}
	res, err := importer.Parse(format, "", files)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
