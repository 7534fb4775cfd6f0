package importer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedLines adds the first n lines of a fixture as a seed.
func seedLines(f *testing.F, path string, n int) []byte {
	f.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		f.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	return []byte(strings.Join(lines[:min(n, len(lines))], ""))
}

// checkResult: whatever the input, a parse yields items with records and
// references under its source, or rejects naming a line, never a panic.
func checkResult(t *testing.T, res *Result, err error) {
	if err != nil {
		return
	}
	for _, it := range res.Items {
		if it.Record == nil {
			t.Fatalf("line %d: item without a record", it.Line)
		}
		if !strings.HasPrefix(it.Record.SourceRef, res.Source) {
			t.Fatalf("line %d: source ref %q not under %q", it.Line, it.Record.SourceRef, res.Source)
		}
	}
	for _, r := range res.Rejects {
		if r.Line < 0 || r.Reason == "" {
			t.Fatalf("reject without line or reason: %+v", r)
		}
	}
}

func FuzzParseOFAC(f *testing.F) {
	f.Add(seedLines(f, "ofac-sdn-2021/sdn.csv", 5), seedLines(f, "ofac-sdn-2021/alt.csv", 5), seedLines(f, "ofac-sdn-2021/add.csv", 5))
	f.Add(seedLines(f, "ofac-sdn-2024-05-03.csv", 8), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, main, alt, add []byte) {
		res, err := ParseOFAC("", Files{Main: bytes.NewReader(main), Alt: bytes.NewReader(alt), Add: bytes.NewReader(add)})
		checkResult(t, res, err)
	})
}

func FuzzParseUN(f *testing.F) {
	f.Add(seedLines(f, "un-consolidated.xml", 60))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ParseUN("", bytes.NewReader(data))
		checkResult(t, res, err)
	})
}

func FuzzParseDPL(f *testing.F) {
	f.Add(seedLines(f, "bis-dpl.txt", 6))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ParseDPL("", bytes.NewReader(data))
		checkResult(t, res, err)
	})
}

func FuzzParseFTM(f *testing.F) {
	f.Add(seedLines(f, "ftm.json", 3))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ParseFTM("", bytes.NewReader(data))
		checkResult(t, res, err)
	})
}
