package bench

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/watchfed/watchfed/node/importer"
	"github.com/watchfed/watchfed/node/names"
)

// ordinaryFixture is an excerpt of the ordinary-names file (every
// twelfth row), for runs without the shared data.
//
//go:embed testdata/ordinary-names.tsv
var ordinaryFixture []byte

// EvalSet is one split of the quality evaluation: variant queries of listed
// entries and ordinary names on no list.
type EvalSet struct {
	Split    string // "tuning" or "held-out"
	Variants []Variant
	Ordinary []Ordinary
	// Listed are the ordinary names left out because their words are
	// those of a listed name (as written, in any order).
	Listed []string
	// sameName: name key → source refs of the entries listed under it.
	// The right answer for a variant is its source entry or any entry
	// listed under the same words in any order (lists carry a party more
	// than once: OFAC and the UN, in other word orders).
	sameName map[string]map[string]bool
}

// EvalSplits makes the two splits of the evaluation over the items of an
// index, and a third set of fresh ordinary names (FreshOrdinary). The tuning split draws its variants from the entries tune accepts
// and takes the even rows of the ordinary names; the held-out split, with
// other seeds, the other entries and the odd rows. Figures on the held-out
// split are the honest ones: the matcher was tuned without looking at it.
func EvalSplits(items []importer.Item, ordinary []Ordinary, tune func(ref string) bool, perKind int) []EvalSet {
	return EvalSplitsSeeded(items, ordinary, tune, perKind, DefaultEvalSeeds())
}

// EvalSeeds are the seeds of the evaluation's random draws, one per set.
type EvalSeeds struct {
	Tuning, HeldOut         uint64 // EvalVariants of each split
	NearTuning, NearHeldOut uint64 // NearNames of each split
	Fresh, Repaired, Cross  uint64 // FreshOrdinary, RepairedOrdinary, CrossListOrdinary
}

// DefaultEvalSeeds are the seeds of the figures the project reports (and
// tuned on: a run with others is a check on draws it has not seen).
func DefaultEvalSeeds() EvalSeeds {
	return EvalSeeds{Tuning: 2, HeldOut: 5, NearTuning: 3, NearHeldOut: 6, Fresh: 20261202, Repaired: 20261203, Cross: 20261204}
}

// EvalSeedsFrom gives each draw its own seed: base, base+1, ... base+6.
func EvalSeedsFrom(base uint64) EvalSeeds {
	return EvalSeeds{Tuning: base, HeldOut: base + 1, NearTuning: base + 2, NearHeldOut: base + 3, Fresh: base + 4, Repaired: base + 5, Cross: base + 6}
}

// EvalSplitsSeeded is EvalSplits with the seeds of its draws given.
func EvalSplitsSeeded(items []importer.Item, ordinary []Ordinary, tune func(ref string) bool, perKind int, seeds EvalSeeds) []EvalSet {
	sets := []EvalSet{
		{Split: "tuning", Variants: EvalVariants(items, tune, perKind, seeds.Tuning)},
		{Split: "held-out", Variants: EvalVariants(items, func(ref string) bool { return !tune(ref) }, perKind, seeds.HeldOut)},
	}
	for i, o := range ordinary {
		sets[i%2].Ordinary = append(sets[i%2].Ordinary, o)
	}
	for i := range sets {
		var pool []importer.Item
		for _, it := range items {
			if tune(it.Record.SourceRef) == (i == 0) {
				pool = append(pool, it)
			}
		}
		seed := seeds.NearTuning
		if i == 1 {
			seed = seeds.NearHeldOut
		}
		sets[i].Ordinary = append(sets[i].Ordinary, NearNames(pool, sets[i].Ordinary, perKind, seed)...)
		sets[i].sameName = sameNames(items, sets[i].Variants)
	}
	// A third set of ordinary names, built apart from the file the
	// matcher was tuned on: see FreshOrdinary.
	fresh := EvalSet{Split: "fresh", Ordinary: FreshOrdinary(items, 3*perKind, seeds.Fresh)}
	// and a fourth, made otherwise from the held-out rows: see RepairedOrdinary.
	var heldOut []Ordinary
	for i, o := range ordinary {
		if i%2 == 1 {
			heldOut = append(heldOut, o)
		}
	}
	sets = append(sets, fresh, EvalSet{Split: "re-paired", Ordinary: RepairedOrdinary(items, heldOut, 3*perKind, seeds.Repaired)})
	// An "ordinary" name whose words are those of a listed name ("Martin
	// Inc" and an alias 'MARTIN') is that name: every screen must report
	// it, so it is left out of the ordinary names and counted apart.
	listed := map[string]bool{}
	for _, it := range items {
		for _, n := range recordNames(it) {
			listed[nameKey(n)] = true
		}
	}
	for i := range sets {
		sets[i].Ordinary = slices.DeleteFunc(sets[i].Ordinary, func(o Ordinary) bool {
			if listed[nameKey(o.Name)] {
				sets[i].Listed = append(sets[i].Listed, o.Name)
				return true
			}
			return false
		})
	}
	return sets
}

func sameNames(items []importer.Item, vs []Variant) map[string]map[string]bool {
	want := map[string]bool{}
	for _, v := range vs {
		want[nameKey(v.Source)] = true
	}
	out := map[string]map[string]bool{}
	for _, it := range items {
		for _, n := range recordNames(it) {
			if k := nameKey(n); want[k] {
				if out[k] == nil {
					out[k] = map[string]bool{}
				}
				out[k][it.Record.SourceRef] = true
			}
		}
	}
	return out
}

// nameKey is a name's words, sorted.
func nameKey(name string) string {
	ws := strings.Fields(names.Normalize(name))
	slices.Sort(ws)
	return strings.Join(ws, " ")
}

// holds reports whether a listed name has every word of a query that
// removed information (a dropped middle name, initials): each query word
// the same as a word of the name, an initial the first letter of one, each
// word of the name used once. Such a name is as right an answer as the one
// the query came from: nothing in the query tells them apart.
func holds(listed, query string) bool {
	ls := strings.Fields(names.Normalize(listed))
	qs := strings.Fields(names.Normalize(query))
	// full words first, so that an initial does not take a word a full
	// word needs
	slices.SortStableFunc(qs, func(a, b string) int { return len(b) - len(a) })
	return takeEach(ls, qs, func(q, l string) bool { return q == l || len(q) == 1 && l[0] == q[0] })
}

// takeEach reports whether every query word matches a listed word, each
// listed word taken once, in the order of qs.
func takeEach(ls, qs []string, match func(q, l string) bool) bool {
	used := make([]bool, len(ls))
	for _, q := range qs {
		i := slices.IndexFunc(ls, func(l string) bool { return match(q, l) })
		for i >= 0 && used[i] {
			j := slices.IndexFunc(ls[i+1:], func(l string) bool { return match(q, l) })
			if j < 0 {
				i = -1
				break
			}
			i += 1 + j
		}
		if i < 0 {
			return false
		}
		used[i] = true
	}
	return true
}

// ambiguous are the kinds whose queries may hold less than one party's name.
var ambiguous = map[string]bool{"drop": true, "initials": true, "initial-surname": true}

// TuneSplit says which entries the tuning split draws from: those already
// on the OFAC SDN list of 2021 (by entry number) when that file is in data,
// else every other entry by a hash of its reference.
func TuneSplit(data string) func(ref string) bool {
	if fh, err := os.Open(filepath.Join(data, "ofac-sdn-2021", "sdn.csv")); err == nil {
		defer fh.Close()
		if res, err := importer.Parse("ofac-sdn", "", importer.Files{Main: fh}); err == nil {
			old := map[string]bool{}
			for _, it := range res.Items {
				old[it.Record.SourceRef] = true
			}
			return func(ref string) bool { return old[ref] }
		}
	}
	return func(ref string) bool {
		h := fnv.New32a()
		h.Write([]byte(ref))
		return h.Sum32()%2 == 0
	}
}

// LoadOrdinary reads data/ordinary-names/names.tsv, or the committed
// excerpt when data lacks it.
func LoadOrdinary(data string) ([]Ordinary, string, error) {
	path := filepath.Join(data, "ordinary-names", "names.tsv")
	if b, err := os.ReadFile(path); err == nil && data != "" {
		out, err := ReadOrdinary(bytes.NewReader(b))
		return out, path, err
	}
	out, err := ReadOrdinary(bytes.NewReader(ordinaryFixture))
	return out, "committed excerpt", err
}

// Hit is one result of a screen, as the evaluation sees it.
type Hit struct {
	Ref         string // the entry's source reference
	Matched     string // the name that matched, as listed
	Score       float64
	Explanation string
}

// Searcher screens one name with threshold 0 and returns up to ten hits,
// best first.
type Searcher func(ctx context.Context, name string) ([]Hit, error)

// Quality is the evaluation's result on one split.
type Quality struct {
	Split    string
	Kinds    map[string]*KindQuality
	Ordinary map[string]*OrdinaryQuality
	// Misses are examples of failures (a variant not first, an ordinary
	// name at 0.8 or more), for tuning.
	Misses []string
}

// KindQuality counts one kind of variant: how many queries, how many found
// their entry among the first ten, first, and among the first ten at 0.8
// or more (what an analyst screening at the default threshold sees).
type KindQuality struct{ Queries, InTop10, Top1, At08 int }

// OrdinaryQuality counts one kind of ordinary name: how many screened,
// how many had a result at 0.8 or more and at 0.9 or more, and of those at
// 0.9 how many hold a listed name as written (every word of it: "Martin
// Inc" and a company listed as "MARTIN"), which no matcher can tell from the
// listed party by the name alone.
type OrdinaryQuality struct{ Names, At08, At09, At09Listed int }

// Recall is the share of variants whose entry was among the first ten.
func (k KindQuality) Recall() float64 { return ratio(k.InTop10, k.Queries) }

// At08Share is the share of variants whose entry was among the first ten
// at 0.8 or more.
func (k KindQuality) At08Share() float64 { return ratio(k.At08, k.Queries) }

// Top1Share is the share of variants whose entry came first.
func (k KindQuality) Top1Share() float64 { return ratio(k.Top1, k.Queries) }

// Evaluate screens every query of a split once.
func Evaluate(ctx context.Context, set EvalSet, search Searcher) (Quality, error) {
	q := Quality{Split: set.Split, Kinds: map[string]*KindQuality{}, Ordinary: map[string]*OrdinaryQuality{}}
	for _, v := range set.Variants {
		hits, err := search(ctx, v.Query)
		if err != nil {
			return q, fmt.Errorf("screen %q: %w", v.Query, err)
		}
		right := func(h Hit) bool { return h.Ref == v.Ref || set.sameName[nameKey(v.Source)][h.Ref] }
		k := q.Kinds[v.Kind]
		if k == nil {
			k = &KindQuality{}
			q.Kinds[v.Kind] = k
		}
		k.Queries++
		if slices.ContainsFunc(hits, right) {
			k.InTop10++
		}
		if i := slices.IndexFunc(hits, right); i >= 0 && hits[i].Score >= 0.8 {
			k.At08++
		} else if i >= 0 {
			q.Misses = append(q.Misses, fmt.Sprintf("below 0.8 %s: %q (listed %q, %s): rank %d at %.3f [%s]", v.Kind, v.Query, v.Source, v.Ref, i+1, hits[i].Score, hits[i].Explanation))
		}
		if len(hits) > 0 && (right(hits[0]) || ambiguous[v.Kind] && holds(hits[0].Matched, v.Query) && slices.ContainsFunc(hits, right)) {
			k.Top1++
		} else {
			miss := fmt.Sprintf("%s: %q (listed %q, %s): ", v.Kind, v.Query, v.Source, v.Ref)
			if i := slices.IndexFunc(hits, right); i >= 0 {
				miss += fmt.Sprintf("rank %d at %.3f [%s]; ", i+1, hits[i].Score, hits[i].Explanation)
			}
			if len(hits) > 0 {
				miss += fmt.Sprintf("first %s %.3f [%s]", hits[0].Ref, hits[0].Score, hits[0].Explanation)
			}
			q.Misses = append(q.Misses, miss)
		}
	}
	for _, o := range set.Ordinary {
		hits, err := search(ctx, o.Name)
		if err != nil {
			return q, fmt.Errorf("screen %q: %w", o.Name, err)
		}
		k := q.Ordinary[o.Kind]
		if k == nil {
			k = &OrdinaryQuality{}
			q.Ordinary[o.Kind] = k
		}
		k.Names++
		if len(hits) > 0 && hits[0].Score >= 0.8 {
			k.At08++
			if hits[0].Score >= 0.9 {
				k.At09++
				if holds(o.Name, hits[0].Matched) {
					k.At09Listed++
				}
			}
			q.Misses = append(q.Misses, fmt.Sprintf("ordinary %s %s: %q: %s %.3f [%s]", o.Kind, o.Locale, o.Name, hits[0].Ref, hits[0].Score, hits[0].Explanation))
		}
	}
	sort.Strings(q.Misses)
	return q, nil
}
