package bench

// The evaluation's query sets, written out for screening them with another
// engine (issue 18: the comparison with Moov Watchman, docs/screening.md).
// With WATCHFED_SCREEN_DUMP=DIR the in-process evaluation writes into DIR
// (tab-separated, no header, tabs and line breaks in a field made spaces):
//
//	names.tsv          entry id, schema (person, organization, vessel,
//	                   aircraft), then each name: the primary first, then
//	                   the aliases
//	queries.tsv        split, kind, query, locale, listed name, entry id,
//	                   accepted ids (comma-separated: the entry and those
//	                   listed under the same words), one row a query in the
//	                   evaluation's order; locale for ordinary names only,
//	                   the last three for variants only
//	hits-watchfed.tsv  query, rank, entry id, score, matched name: the index's
//	                   first ten for each distinct query
//
// Another engine's first ten, written as hits-NAME.tsv in the format of
// hits-watchfed.tsv beside them (with hits-NAME.queries, the numbers of the
// rows of queries.tsv it screened, from 1, if it screened only a sample),
// are scored by the evaluation's own rules (Evaluate, through ReadEvalDump,
// ReadHits and HitsSearcher) in TestScreenPeerCompare.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/watchfed/watchfed/node/importer"
)

// tsvField makes s one field of a TSV row.
var tsvField = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace

// writeTSV writes rows to dir/name.
func writeTSV(dir, name string, rows func(row func(fields ...string))) error {
	fh, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(fh)
	rows(func(fields ...string) {
		for i, f := range fields {
			fields[i] = tsvField(f)
		}
		w.WriteString(strings.Join(fields, "\t") + "\n")
	})
	if err := w.Flush(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// WriteEvalDump writes names.tsv and queries.tsv of the evaluation of sets
// over items into dir.
func WriteEvalDump(dir string, items []importer.Item, sets []EvalSet) error {
	err := writeTSV(dir, "names.tsv", func(row func(...string)) {
		for _, it := range items {
			schema := strings.ToLower(strings.TrimPrefix(it.Record.GetSubject().GetSchema().String(), "SCHEMA_"))
			row(slices.Concat([]string{it.Record.SourceRef, schema}, recordNames(it))...)
		}
	})
	if err != nil {
		return err
	}
	return writeTSV(dir, "queries.tsv", func(row func(...string)) {
		for _, s := range sets {
			for _, v := range s.Variants {
				accepted := []string{v.Ref}
				for ref := range s.sameName[nameKey(v.Source)] {
					if ref != v.Ref {
						accepted = append(accepted, ref)
					}
				}
				slices.Sort(accepted[1:])
				row(s.Split, v.Kind, v.Query, "", v.Source, v.Ref, strings.Join(accepted, ","))
			}
			for _, o := range s.Ordinary {
				row(s.Split, o.Kind, o.Name, o.Locale, "", "", "")
			}
		}
	})
}

// ReadEvalDump reads queries.tsv back into the sets it was written from,
// in their order, with each variant's accepted entries.
func ReadEvalDump(dir string) ([]EvalSet, error) {
	fh, err := os.Open(filepath.Join(dir, "queries.tsv"))
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var sets []EvalSet
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 7 {
			return nil, fmt.Errorf("queries.tsv:%d: %d fields, want 7", line, len(f))
		}
		if len(sets) == 0 || sets[len(sets)-1].Split != f[0] {
			sets = append(sets, EvalSet{Split: f[0], sameName: map[string]map[string]bool{}})
		}
		s := &sets[len(sets)-1]
		if f[5] == "" {
			s.Ordinary = append(s.Ordinary, Ordinary{Kind: f[1], Name: f[2], Locale: f[3]})
			continue
		}
		s.Variants = append(s.Variants, Variant{Kind: f[1], Query: f[2], Source: f[4], Ref: f[5]})
		k := nameKey(f[4])
		if s.sameName[k] == nil {
			s.sameName[k] = map[string]bool{}
		}
		for _, ref := range strings.Split(f[6], ",") {
			s.sameName[k][ref] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("queries.tsv: %w", err)
	}
	if len(sets) == 0 {
		return nil, fmt.Errorf("queries.tsv in %s: no queries", dir)
	}
	return sets, nil
}

// HitsRecorder wraps a Searcher and keeps the first ten of each distinct
// query it screens, and how long screening took.
type HitsRecorder struct {
	mu      sync.Mutex
	order   []string
	hits    map[string][]Hit
	Queries int           // screens, repeated queries counted again
	Time    time.Duration // spent in the wrapped Searcher
}

// Wrap returns search, recording into r.
func (r *HitsRecorder) Wrap(search Searcher) Searcher {
	return func(ctx context.Context, name string) ([]Hit, error) {
		start := time.Now()
		hits, err := search(ctx, name)
		d := time.Since(start)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.Queries++
		r.Time += d
		if r.hits == nil {
			r.hits = map[string][]Hit{}
		}
		if _, ok := r.hits[name]; !ok && err == nil {
			r.order = append(r.order, name)
			r.hits[name] = hits
		}
		return hits, err
	}
}

// WriteHits writes the recorded hits as dir/hits-NAME.tsv.
func (r *HitsRecorder) WriteHits(dir, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return writeTSV(dir, "hits-"+name+".tsv", func(row func(...string)) {
		for _, q := range r.order {
			for i, h := range r.hits[q] {
				row(q, strconv.Itoa(i+1), h.Ref, strconv.FormatFloat(h.Score, 'g', -1, 64), h.Matched)
			}
		}
	})
}

// ReadHits reads a hits file: query → its hits, best first. A query
// screened with no result has no row and is absent; a file with no row at
// all is refused (an engine that found nothing for any query was not run).
func ReadHits(r io.Reader) (map[string][]Hit, error) {
	out := map[string][]Hit{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("line %d: %d fields, want 5", line, len(f))
		}
		rank, err := strconv.Atoi(f[1])
		if err != nil || rank != len(out[f[0]])+1 {
			return nil, fmt.Errorf("line %d: rank %q after %d hits of %q", line, f[1], len(out[f[0]]), f[0])
		}
		score, err := strconv.ParseFloat(f[3], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: score: %w", line, err)
		}
		out[f[0]] = append(out[f[0]], Hit{Ref: f[2], Score: score, Matched: f[4]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no hits")
	}
	return out, nil
}

// HitsSearcher answers each query with its hits as read (none if absent).
func HitsSearcher(hits map[string][]Hit) Searcher {
	return func(_ context.Context, name string) ([]Hit, error) { return hits[name], nil }
}
