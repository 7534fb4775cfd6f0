package bench

import (
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/watchfed/watchfed/node/importer"
	"github.com/watchfed/watchfed/node/names"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Kinds of CrossListOrdinary: the query's given name is a word of the
// indexed lists, or a word they do not have.
const (
	CrossListWord = "cross-list list-word"
	CrossNewWord  = "cross-list new-word"
)

// CrossListOrdinary is a third set of ordinary names the matcher was not
// tuned on, made apart from the lexicon of given names (names.GivenNames)
// and from the ordinary-names file: the given names of persons of other
// real lists than the indexed ones (others: OFAC SDN 2021, OFAC non-SDN
// 2025-12, BIS Denied Persons 2022), each paired with the surname, as
// written, of an indexed person whose first given name is one edit from it
// (a letter changed, added or dropped, or two swapped) but not another
// romanisation of it (the same consonants or romanisation key, as
// RepairedOrdinary): "Jamal" of one list before the surname of a listed
// "Kamal". Each such given name is used once, with a listed person picked at
// random (seed). A given name of a person "SURNAME, Given" is the first word
// after the comma; of a name without a comma, its first word. A name holding
// every word of a listed name is left out. Kind CrossListWord where the
// given name is a word of the indexed lists (the matcher's other_name rules
// may know it as another listed given name), CrossNewWord where it is not;
// locale the list the given name came from (others' key, the first in
// order that has it); Given the listed person's.
func CrossListOrdinary(items []importer.Item, others map[string][]importer.Item, n int, seed uint64) []Ordinary {
	rng := rand.New(rand.NewPCG(seed, 0))
	var listed listedNames
	words := map[string]bool{}
	persons, byGiven := listedPersons(items, func(ws []string) {
		listed.add(ws)
		for _, w := range ws {
			words[w] = true
		}
	})
	listedGivens := slices.Sorted(maps.Keys(byGiven))
	// the other lists' given names, each with the first list it came from
	from := map[string]string{}
	for _, list := range slices.Sorted(maps.Keys(others)) {
		for _, it := range others[list] {
			if it.Record.Subject.Schema != pb.Schema_SCHEMA_PERSON {
				continue
			}
			nm := it.Record.Subject.Name
			if _, given, ok := strings.Cut(nm, ","); ok {
				nm = given
			} else if len(strings.Fields(nm)) < 2 {
				continue
			}
			ws := strings.Fields(names.Normalize(nm))
			if len(ws) == 0 || len(ws[0]) < 3 || names.Particle(ws[0]) || strings.Trim(ws[0], "abcdefghijklmnopqrstuvwxyz") != "" {
				continue
			}
			if _, ok := from[ws[0]]; !ok {
				from[ws[0]] = list
			}
		}
	}
	givens := slices.Sorted(maps.Keys(from))
	title := func(s string) string {
		ws := strings.Fields(strings.ToLower(s))
		for i, w := range ws {
			ws[i] = strings.ToUpper(w[:1]) + w[1:]
		}
		return strings.Join(ws, " ")
	}
	var out []Ordinary
	count := map[string]int{}
	seen := map[string]bool{}
	for _, i := range rng.Perm(len(givens)) {
		g := givens[i]
		kind := CrossNewWord
		if words[g] {
			kind = CrossListWord
		}
		if count[kind] == n {
			continue
		}
		var near []string
		for _, lg := range listedGivens {
			if lg != g && names.TranslitKey(lg) != names.TranslitKey(g) && names.Skeleton(names.TranslitKey(lg)) != names.Skeleton(names.TranslitKey(g)) && oneEditApart(lg, g) {
				near = append(near, lg)
			}
		}
		if len(near) == 0 {
			continue
		}
		ps := byGiven[near[rng.IntN(len(near))]]
		p := persons[ps[rng.IntN(len(ps))]]
		name := title(g) + " " + title(p.surname)
		if seen[name] || listed.holds(strings.Fields(names.Normalize(name))) {
			continue
		}
		seen[name] = true
		count[kind]++
		out = append(out, Ordinary{Kind: kind, Locale: from[g], Name: name, Given: p.given})
	}
	return out
}

// oneEditApart reports whether a and b differ by one edit: a letter
// changed, added or dropped, or two neighbours swapped.
func oneEditApart(a, b string) bool {
	if a == b {
		return false
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	switch len(b) - len(a) {
	case 0:
		i := 0
		for i < len(a) && a[i] == b[i] {
			i++
		}
		if a[i+1:] == b[i+1:] {
			return true
		}
		return i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
	case 1:
		i := 0
		for i < len(a) && a[i] == b[i] {
			i++
		}
		return a[i:] == b[i+1:]
	}
	return false
}

// CrossKinds are the kinds of CrossListOrdinary, in table order, with the
// names SeparateSameName moves out of them.
var CrossKinds = []string{CrossListWord, CrossListWord + sameNameKind, CrossNewWord, CrossNewWord + sameNameKind}

// CrossListSet is the split "cross-list" of 3·perKind names of each kind of
// CrossListOrdinary (seed 20261204), from the other lists of data; false
// where any of them is absent.
func CrossListSet(data string, items []importer.Item, perKind int) (EvalSet, bool) {
	return CrossListSetSeeded(data, items, perKind, DefaultEvalSeeds().Cross)
}

// CrossListSetSeeded is CrossListSet with another seed.
func CrossListSetSeeded(data string, items []importer.Item, perKind int, seed uint64) (EvalSet, bool) {
	others := map[string][]importer.Item{}
	for _, f := range []struct{ label, format, path string }{
		{"ofac-sdn-2021", "ofac-sdn", filepath.Join(data, "ofac-sdn-2021", "sdn.csv")},
		{"ofac-non-sdn-2025-12", "ofac-sdn", filepath.Join(data, "ofac-non-sdn-2025-12", "cons_prim.csv")},
		{"bis-dpl-2022", "bis-dpl", filepath.Join(data, "bis-dpl", "dpl_2022.txt")},
	} {
		fh, err := os.Open(f.path)
		if err != nil {
			return EvalSet{}, false
		}
		res, err := importer.Parse(f.format, "", importer.Files{Main: fh})
		fh.Close()
		if err != nil {
			return EvalSet{}, false
		}
		others[f.label] = res.Items
	}
	return EvalSet{Split: "cross-list", Ordinary: CrossListOrdinary(items, others, 3*perKind, seed)}, true
}
