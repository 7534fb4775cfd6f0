package screen

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/watchfed/watchfed/node/names"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// DefaultThreshold is the score from which a result is a likely match; see Score.
const DefaultThreshold = 0.8

// Query is what to screen: a name, and optionally identifiers and features
// that raise or lower the score.
type Query struct {
	Name       string
	Schema     pb.Schema // unspecified: any
	Countries  []string
	BirthDate  string // "1965", "1965-03" or "1965-03-14"
	IDs        []string
	Threshold  float64 // results from this score on; DefaultThreshold unless asked otherwise
	Limit      int     // 0: 10
	Filter     func(*Entry) bool
	Candidates int // names scored in full (three times as many for a query with initials); 0: 60
}

// Result is one entry that matched, with its score and why.
//
// Score is in 0..1. 1 means an identifier matched exactly, or every
// identifying word of the query and of a listed name is the same after
// normalisation (case, diacritics, script, word order, legal forms and
// honorifics do not count). Each word that differs by a typo or a
// transliteration variant lowers it a little (a word that is 90% similar by
// Jaro-Winkler costs about its share of the name's weight times 0.1); a word
// missing on either side lowers it by its weight, where rare words weigh more
// than common ones (inverse document frequency), so a common first name alone
// scores low against a full listed name. Features then adjust it: a different
// schema −0.2, a birth year more than a year apart −0.25 (one year −0.05), the
// same birth year +0.03 (full date +0.05), a shared country +0.03 and no
// shared country −0.1. A person's name with a word judged another name
// rather than a typo (another given name of the list, another ending:
// "andrew~andre") is pressed under 0.8 however alike the rest
// (other_name). From DefaultThreshold (0.8) up a result is a likely
// match to review; above 0.9 the names differ by little more than spelling.
type Result struct {
	Entry       *Entry
	Score       float64
	Explanation Explanation
}

// Explanation says which query name matched which listed name and which
// features agreed or disagreed.
type Explanation struct {
	Query     string // the query name, normalised
	Matched   string // the listed name that scored best, as listed
	NameScore float64
	Words     []WordMatch
	Features  []Feature
}

// WordMatch pairs a query word with a listed word (either may be empty when
// the other side has no counterpart).
type WordMatch struct {
	Query, Listed string
	Similarity    float64
	How           string // exact, initial, similar, phonetic, consonants, missing, extra
}

// Feature is one fact compared between query and entry.
type Feature struct {
	Name   string  // identifier, schema, birth_date, country, alias, other_name
	Agrees bool    // false: disagrees
	Effect float64 // what it added to the score
	Detail string
}

// String gives the explanation in one line, for tables.
func (e Explanation) String() string {
	var parts []string
	if e.Matched != "" {
		var ws []string
		for _, w := range e.Words {
			switch w.How {
			case "missing":
				ws = append(ws, "-"+w.Listed)
			case "extra":
				ws = append(ws, "+"+w.Query)
			case "exact":
				ws = append(ws, w.Query)
			default:
				ws = append(ws, fmt.Sprintf("%s~%s(%s %.2f)", w.Query, w.Listed, w.How, w.Similarity))
			}
		}
		parts = append(parts, fmt.Sprintf("name %q %.2f [%s]", e.Matched, e.NameScore, strings.Join(ws, " ")))
	}
	for _, f := range e.Features {
		verb := "agrees"
		if !f.Agrees {
			verb = "differs"
		}
		parts = append(parts, fmt.Sprintf("%s %s %+.2f (%s)", f.Name, verb, f.Effect, f.Detail))
	}
	return strings.Join(parts, "; ")
}

type scratch struct {
	acc   []accum // by name
	cands []cand
	seen  []uint32 // names touched
	gram  []uint8  // token → shared trigrams
	gseen []uint32
	lists []gramLists // a query word's trigrams and their lists
	mark  []uint32    // token → the similar() call that already looked at it
	typos []simTok    // a query word's short neighbours one letter off (similar)
	gen   uint32
}

// Search returns the entries whose names or identifiers match the query,
// best first, at or above the threshold.
func (x *Index) Search(q Query) []Result {
	if q.Limit <= 0 {
		q.Limit = 10
	}
	if q.Candidates <= 0 {
		q.Candidates = 60
	}
	x.mu.RLock()
	defer x.mu.RUnlock()

	best := map[uint32]Result{}
	// Identifiers match exactly, whatever the name.
	for _, v := range q.IDs {
		k := names.ID(v)
		for _, slot := range x.ids[k] {
			e := x.entries[slot]
			if q.Filter != nil && !q.Filter(e) {
				continue
			}
			var listed Identifier
			for _, id := range e.Identifiers {
				if names.ID(id.Value) == k {
					listed = id
				}
			}
			r := Result{Entry: e, Score: 1}
			r.Explanation.Features = append(r.Explanation.Features, Feature{Name: "identifier", Agrees: true, Effect: 1,
				Detail: fmt.Sprintf("%s %s", strings.TrimPrefix(strings.ToLower(listed.Type.String()), "identifier_type_"), listed.Value)})
			best[slot] = r
		}
	}

	qt := names.Words(q.Name)
	if len(qt) > 0 && len(qt) < 250 {
		qq := x.newQuery(qt)
		normQuery := names.Normalize(q.Name)
		for _, nid := range x.candidates(qt, q) {
			n := &x.names[nid]
			e := x.entries[n.entry]
			ns, words, other, alike := x.nameScore(qq, n)
			if n.weak {
				ns *= 0.95
			}
			var capF []Feature
			if other >= 0 && e.Schema == pb.Schema_SCHEMA_PERSON {
				if c := otherNameCap(ns); c < ns {
					w := words[other]
					capF = []Feature{{Name: "other_name", Effect: round(c - ns),
						Detail: fmt.Sprintf("%s~%s: another person's name, under %.2f", w.Query, w.Listed, DefaultThreshold)}}
				}
			} else if alike >= 0 && e.Schema == pb.Schema_SCHEMA_PERSON {
				if c := alikeCap(ns); c < ns {
					w := words[alike]
					capF = []Feature{{Name: "alike_given", Effect: round(c - ns),
						Detail: fmt.Sprintf("%s~%s: a given name alike, not the same: under %.2f", w.Query, w.Listed, alikeTo+0.01)}}
				}
			}
			score, feats := features(ns, e, q)
			if capF != nil {
				score = max(0, min(1, score+capF[0].Effect))
				feats = append(capF, feats...)
			}
			if prev, ok := best[n.entry]; ok && prev.Score >= score {
				continue
			}
			best[n.entry] = Result{Entry: e, Score: score, Explanation: Explanation{
				Query: normQuery, Matched: n.text, NameScore: round(ns), Words: words, Features: feats}}
		}
	}

	out := make([]Result, 0, len(best))
	for _, r := range best {
		if r.Score >= q.Threshold {
			r.Score = round(r.Score)
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Result) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return strings.Compare(a.Entry.ID, b.Entry.ID)
	})
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out
}

func round(f float64) float64 { return math.Round(f*1000) / 1000 }

// pairSim is the similarity of a query word and a dictionary word, cached
// for the query: candidates share many words.
type pairSim struct {
	sim float64
	how string // marked with what the lexicon of given names tells (lexSameMark)
}

type simTok struct {
	id  uint32
	sim float64
}

// lookup is how far similar looks for a word.
type lookup uint8

const (
	byKey      lookup = iota // the word as written and its phonetic key
	asWritten                // the word as written only
	byTrigrams               // as written, by phonetic key and by trigrams
)

// similar returns the dictionary words close to a query word: the same word,
// words sharing its phonetic key, and words sharing enough trigrams that are
// similar by Jaro-Winkler.
func (x *Index) similar(t names.Word, s *scratch, how lookup) []simTok {
	var out []simTok
	tk, tt, tASCII, tBag := names.Skeleton(t.Text), names.TranslitKey(t.Text), isASCII(t.Text), letterBag(t.Text)
	if cap(s.mark) < len(x.toks) {
		s.mark = make([]uint32, len(x.toks))
	}
	s.mark = s.mark[:len(x.toks)]
	s.gen++
	tkBag, tk0 := letterBag(tt), tt[0]
	tNum := tBag&digitBag != 0
	typos := s.typos[:0]
	add := func(id uint32) {
		m := &x.meta[id]
		if d := int(m.n) - len(t.Text); m.flags&metaLive == 0 || d < -3 || d > 3 {
			return
		}
		abjad := t.Abjad || m.flags&metaAbjad != 0
		// Spelling variants and typos change few letters; transliterations
		// from abjads drop vowels, so the check only applies among Latin words.
		if !abjad && (bits.OnesCount32(tBag&^m.bag) > 2 || bits.OnesCount32(m.bag&^tBag) > 2) {
			return
		}
		// Latin words are compared by their romanisation keys; tokenSimK
		// keeps a pair from 0.82 (0.9 when a word has four letters or
		// fewer: a short word one letter off is left to the score), so a
		// word whose letters cannot reach that is not read at all.
		if !abjad && tASCII && m.flags&metaASCII != 0 && len(t.Text) > 1 && m.n > 1 {
			th := minTokenSim
			if min(len(t.Text), int(m.n)) <= 4 {
				th = 0.9
			}
			if tNum || m.bag&digitBag != 0 {
				// Numbers are compared as written (tokenSimK), the
				// first letters unknown here.
				if jwBound(len(t.Text), tBag, t.Text[0], int(m.n), m.bag, t.Text[0]) < th-1e-9 {
					return
				}
			} else if jwBound(len(tt), tkBag, tk0, int(m.kn), m.kbag, m.k0) < th-1e-9 {
				return
			}
		}
		if s.mark[id] == s.gen {
			return
		}
		s.mark[id] = s.gen
		ti := &x.toks[id]
		// A short word one letter off counts in a name's score, and in
		// finding candidates only when few such neighbours (typos).
		// (A query word written without vowels is compared with a word
		// some name writes so as if that were in Latin letters: the
		// looser test, the name's score tells.)
		switch sim, how := tokenSimK(t.Text, ti.text, tk, ti.skel, tt, ti.tkey, abjadOf(t.Abjad, ti.abjad && !t.Abjad), tASCII && ti.ascii); {
		case sim <= 0:
		case how != "typo":
			out = append(out, simTok{id, sim})
		case len(typos) < 4*maxTypos:
			typos = append(typos, simTok{id, sim})
		}
	}
	// A short word one letter off a listed word is a typo as often as
	// another word (band, bank), and short words have many such
	// neighbours: they find candidates only for a word the list lacks
	// as written ("jtng": jung, jong), with few of them or holding
	// digits (a number's neighbours are other numbers, few and rare).
	done := func(listed bool) []simTok {
		s.typos = typos
		if !listed && (len(typos) <= maxTypos || tNum) {
			out = append(out, typos...)
		}
		return out
	}
	id, listed := x.tokID[t.Text]
	if listed {
		add(id)
		listed = x.meta[id].flags&metaLive != 0
	}
	if how == asWritten {
		return done(listed)
	}
	// A phonetic key shared by very many words (short keys) says little:
	// those are left to the trigrams.
	if bucket := x.skels[tk]; len(tk) >= 2 && len(bucket) <= 2000 {
		for _, id := range bucket {
			add(id)
		}
	}
	if len(t.Text) < 3 || how != byTrigrams {
		return done(listed)
	}
	// Two edits spoil at most six trigrams (a letter changed or added spoils
	// the three that hold it, a letter dropped the two across the gap), so a
	// word within two edits shares at least one of any seven of the query
	// word's trigrams: count only the seven rarest (the shortest lists) and
	// verify by Jaro-Winkler. Two edits change a word's length by two at most.
	lo, hi := max(1, len(t.Text)-2), len(t.Text)+2
	gs := s.lists[:0]
	p := "\x01" + t.Text + "\x02" // as trigrams() pads
	for i := 0; i+3 <= len(p); i++ {
		g := uint32(p[i])<<16 | uint32(p[i+1])<<8 | uint32(p[i+2])
		at := uint64(1) << min(i, 63)
		if k := slices.IndexFunc(gs, func(l gramLists) bool { return l.g == g }); k >= 0 {
			gs[k].at |= at
			continue
		}
		gl := gramLists{g: g, at: at}
		for l := lo; l <= hi; l++ {
			gl.ls[l-lo] = x.grams[gramKey(g, l)]
			gl.n += len(gl.ls[l-lo])
		}
		gs = append(gs, gl)
	}
	s.lists = gs
	slices.SortFunc(gs, func(a, b gramLists) int { return cmp.Compare(a.n, b.n) })
	gs = gs[:min(len(gs), 7)]
	// A word sharing two of them is verified; one sharing one, where its
	// other counted trigrams lie where two edits can spoil them (spoilable):
	// that keeps the guarantee of one in common. Taking one costs a check of
	// every word on a list, and on a large index the lists of common
	// trigrams are long: it is taken only where those lists hold at most
	// oneMax words in all, and only for a word not listed as written (a
	// listed word is most often meant; its neighbours sharing two trigrams
	// are still found). Words of five trigrams or fewer take one in common
	// whatever it costs, as before.
	short := len(gs) <= 5
	var one [7][5]bool // one in common is enough on this list
	if !short && !listed {
		var all uint64
		for _, g := range gs {
			all |= g.at
		}
		cost := 0
		for i, g := range gs {
			for j, ls := range g.ls {
				if spoilable(all&^g.at, lo+j-len(t.Text)) {
					one[i][j] = true
					cost += len(ls)
				}
			}
		}
		if cost > oneMax {
			one = [7][5]bool{}
		}
	}
	if cap(s.gram) < len(x.toks) {
		s.gram = make([]uint8, len(x.toks))
	}
	s.gram = s.gram[:len(x.toks)]
	s.gseen = s.gseen[:0]
	// s.gram counts the lists a word is on (up to 127), its top bit set
	// when one of them takes one in common.
	for i, g := range gs {
		for j, ls := range g.ls {
			var flag uint8
			if short || one[i][j] {
				flag = 0x80
			}
			for _, id := range ls {
				c := s.gram[id]
				if c == 0 {
					s.gseen = append(s.gseen, id)
				}
				if c&0x7f < 0x7f {
					c++
				}
				s.gram[id] = c | flag
			}
		}
	}
	for _, id := range s.gseen {
		if c := s.gram[id]; c&0x80 != 0 || c >= 2 {
			add(id)
		}
		s.gram[id] = 0
	}
	return done(listed)
}

// maxTypos is how many listed words one letter off a short query word
// (tokenSimK's typo) may be for them to find candidates (similar); a
// number's, four times as many.
const maxTypos = 8

// oneMax is how many words the lists a query word takes one trigram in
// common from may hold in all (similar): on the OFAC and UN lists nine in
// ten words of six letters or more stay under it, on a synthetic index of
// 100,000 names nine in ten are over it.
const oneMax = 500

// gramLists are a query word's trigram, where it stands in the word (a bit
// a position) and its lists of words of about the word's length.
type gramLists struct {
	g  uint32
	at uint64
	n  int
	ls [5][]uint32 // words of length lo..hi (similar)
}

// spoilable tells whether two edits that change a word's length by d can
// spoil the trigrams at the positions set in m: a letter changed or added
// spoils the three trigrams holding it, a letter dropped (the listed word
// one longer) the two across the gap, so m must lie in two runs of three,
// of three and two (d = 1), of two (d = 2).
func spoilable(m uint64, d int) bool {
	run := func(m uint64, n int) uint64 {
		if m == 0 {
			return 0
		}
		return m &^ ((1<<n - 1) << bits.TrailingZeros64(m))
	}
	switch {
	case d <= 0:
		return run(run(m, 3), 3) == 0
	case d == 1:
		return run(run(m, 3), 2) == 0 || run(run(m, 2), 3) == 0
	default:
		return run(run(m, 2), 2) == 0
	}
}

// lookups are the words looked up in the index for a query: its own, and
// the forms its particles may be listed in: a joined word's parts
// ("alhaq" → "haq") and particles joined to the word after them
// ("abu al khayr" → "abualkhayr", "alkhayr"; "zia ul haq" → "ziaulhaq").
func lookups(qt []names.Word) []names.Word {
	out := slices.Clone(qt)
	for i, t := range qt {
		// Another romanisation that changes the word's length ("dzh" for
		// "j", "kh" for "h") escapes the trigram lookup; a letter for a
		// letter does not.
		// (Numbers are compared as written: tokenSimK.)
		if k := names.TranslitKey(t.Text); len(k) != len(t.Text) && isASCII(t.Text) && !hasDigit(t.Text) {
			out = append(out, names.Word{Text: k})
		}
		for _, p := range names.SplitJoined(t.Text) {
			out = append(out, names.Word{Text: p, Abjad: t.Abjad})
		}
		if !names.Particle(t.Text) {
			continue
		}
		j := i
		for j < len(qt) && names.Particle(qt[j].Text) {
			j++
		}
		if j == len(qt) {
			continue
		}
		from := i
		if (t.Text == "ul" || t.Text == "ud" || t.Text == "ur") && i > 0 {
			from = i - 1
		}
		var b strings.Builder
		for _, w := range qt[from : j+1] {
			b.WriteString(w.Text)
		}
		out = append(out, names.Word{Text: b.String(), Abjad: t.Abjad || qt[j].Abjad})
	}
	// Each word once: a repeated query word would count twice towards
	// names that have it once.
	slices.SortStableFunc(out, func(a, b names.Word) int { return strings.Compare(a.Text, b.Text) })
	out = slices.CompactFunc(out, func(a, b names.Word) bool { return a.Text == b.Text })
	return out[:min(len(out), 250)]
}

// candidates accumulates, per name, the weighted similarity of the query
// words found in it, and returns the names with the highest estimate. Very
// common words (on a fifth of all names) only add candidates when the query
// has nothing rarer.
func (x *Index) candidates(qt []names.Word, q Query) []uint32 {
	s := <-x.scratch
	defer func() { x.scratch <- s }()
	n := len(x.names)
	if cap(s.acc) < n {
		s.acc = make([]accum, n)
	}
	s.acc = s.acc[:n]
	s.seen = s.seen[:0]

	type qword struct {
		sims []simTok
		df   int
	}
	look := lookups(qt)
	// The query's words are looked up by trigrams too, and so is another
	// romanisation that changes a word's length by two letters or more
	// ("dzhavkhar", "javhar"); one that changes it by one ("khan", "han";
	// "hussein", "husein") is one edit from the word, whose trigrams find
	// the same words: it is looked up as written only. A particle's form (a
	// joined word's parts, particles joined to the next word) is looked up
	// as written and by phonetic key: a trigram scan for each would double a
	// query's cost.
	how := make(map[string]lookup, 2*len(qt))
	for _, t := range qt {
		k := names.TranslitKey(t.Text)
		if d := len(k) - len(t.Text); d == 1 || d == -1 {
			how[k] = max(how[k], asWritten)
		} else {
			how[k] = byTrigrams
		}
		how[t.Text] = byTrigrams
	}
	qs := make([]qword, len(look))
	minDF := math.MaxInt
	onlyInitials := !slices.ContainsFunc(qt, func(t names.Word) bool { return len(t.Text) > 1 })
	for i, t := range look {
		if len(t.Text) == 1 && !onlyInitials {
			continue // an initial: credited below, not looked up
		}
		h, ok := how[t.Text]
		if !ok {
			h = byKey
		}
		qs[i].sims = x.similar(t, s, h)
		for _, st := range qs[i].sims {
			qs[i].df += len(x.toks[st.id].post)
		}
		if qs[i].df > 0 {
			minDF = min(minDF, qs[i].df)
		}
	}
	common := max(5000, x.live/5)
	for i, w := range qs {
		if w.df > common && minDF <= common {
			continue
		}
		for _, st := range w.sims {
			wt := float32(x.idf(len(x.toks[st.id].post)) * st.sim)
			for _, nid := range x.toks[st.id].post {
				a := &s.acc[nid]
				switch {
				case a.lastQ == 0:
					s.seen = append(s.seen, nid)
					a.acc = wt
				case a.lastQ != uint8(i+1):
					a.acc += wt
				case wt > a.lastS:
					a.acc += wt - a.lastS
				default:
					continue
				}
				a.lastQ, a.lastS = uint8(i+1), wt
			}
		}
	}
	// Initials in the query find nothing in the index; a name with words
	// of those letters is credited as if an average word of it matched.
	var inits uint32
	for _, t := range qt {
		if len(t.Text) == 1 {
			inits |= letterBag(t.Text)
		}
	}
	cs := s.cands[:0]
	for _, nid := range s.seen {
		a := &s.acc[nid]
		w := x.nameW[nid]
		if inits != 0 {
			nr := &x.names[nid]
			a.acc += 0.85 * w / float32(len(nr.toks)) * float32(bits.OnesCount32(inits&nr.inits))
		}
		// Estimate: what matched over the name's own weight, so that a
		// short name matching fully ranks above a long one matching a part.
		cs = append(cs, cand{nid, a.acc * a.acc / max(w, 1e-3)})
		*a = accum{}
	}
	s.cands = cs
	if inits != 0 {
		// Initials rank names loosely: look at more of them.
		q.Candidates *= 3
	}
	out := make([]uint32, 0, min(len(cs), q.Candidates))
	pass := func(nid uint32) bool { return q.Filter == nil || q.Filter(x.entries[x.names[nid].entry]) }
	if len(cs) <= q.Candidates {
		for _, c := range cs {
			if pass(c.nid) {
				out = append(out, c.nid)
			}
		}
		return out
	}
	// The best by estimate, then the filter on those alone (reading each
	// entry costs memory fetches that thousands of candidates would add
	// up): as many more as it refused, until none are left.
	for len(out) < q.Candidates && len(cs) > 0 {
		k := min(q.Candidates-len(out), len(cs))
		for _, c := range topK(cs, k, func(c cand) float32 { return c.est }) {
			if pass(c.nid) {
				out = append(out, c.nid)
			}
		}
		cs = cs[k:]
	}
	return out
}

// accum is what candidates gathers for one name: the weighted similarity
// of the query words found in it, the last query word that added to it
// (1 + its index) and that word's share. One struct, one memory fetch.
type accum struct {
	acc, lastS float32
	lastQ      uint8
}

type cand struct {
	nid uint32
	est float32
}

// topK returns the k elements of s with the highest key, highest first,
// reordering s: a quickselect, then a sort of the k alone (thousands of
// candidates, of which sixty are kept).
func topK[T any](s []T, k int, key func(T) float32) []T {
	lo, hi := 0, len(s)
	for hi-lo > 1 {
		// Median of three as pivot; partition into > pivot, == pivot, < pivot.
		a, b, c := key(s[lo]), key(s[lo+(hi-lo)/2]), key(s[hi-1])
		p := max(min(a, b), min(max(a, b), c))
		lt, i, gt := lo, lo, hi
		for i < gt {
			switch v := key(s[i]); {
			case v > p:
				s[lt], s[i] = s[i], s[lt]
				lt++
				i++
			case v < p:
				gt--
				s[gt], s[i] = s[i], s[gt]
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt
		case k > gt:
			lo = gt
		default:
			lo = hi // s[:k] holds the k highest
		}
	}
	s = s[:k]
	slices.SortFunc(s, func(a, b T) int { return cmp.Compare(key(b), key(a)) })
	return s
}
