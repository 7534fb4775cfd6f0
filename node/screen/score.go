package screen

// Scoring one listed name against the query: pairing runs of words (one
// with one, joined or split particles, initials) and the coverage score.

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/watchfed/watchfed/node/names"
)

// match pairs a run of query words with a run of listed words: one with
// one, or one with two or three written apart (particles joined or split,
// several initials in one word).
type match struct {
	qi, qn, ni, nn int
	sim            float64
	how            string
}

// query is what a search knows of its query once, whatever listed name it
// scores: the words with their keys, the runs of words across particles, and
// buffers reused from one listed name to the next.
type query struct {
	ws       []qword
	runs     []qrun // query words written apart around a particle ("abd ullah")
	initials bool   // a word of two or three letters: perhaps initials written together
	cache    map[uint64]pairSim
	ps       []match
	ps2      []match // pairs two edits apart (typo2), taken after the others
	qUsed    []int
	nUsed    []bool
	nWeight  []float64
}

type qword struct {
	names.Word
	skel, tkey string
	ascii      bool
	// w is the word's weight when no listed word matches it: as a rare word
	// unless the dictionary knows it.
	w float64
	// known: some listed name has the word as written; given: as a
	// listed person's given name; lexicon: a given name of the index's
	// lexicon (UseGivenNames).
	known, given, lexicon bool
}

// qrun is a run of two or three query words with a particle, written as one.
type qrun struct {
	qi, qn             int
	joined, skel, tkey string
	abjad, ascii       bool
}

func (x *Index) newQuery(qt []names.Word) *query {
	q := &query{ws: make([]qword, len(qt)), cache: make(map[uint64]pairSim, 64)}
	for i, t := range qt {
		w := qword{Word: t, skel: names.Skeleton(t.Text), tkey: names.TranslitKey(t.Text), ascii: isASCII(t.Text), w: x.idf(0)}
		if id, ok := x.tokID[t.Text]; ok && len(x.toks[id].post) > 0 {
			w.w = x.idf(len(x.toks[id].post))
			w.known = true
			w.given = x.meta[id].flags&metaGiven != 0
		}
		w.lexicon = x.given != nil && x.given.Known(t.Text)
		q.ws[i] = w
		q.initials = q.initials || len(t.Text) == 2 || len(t.Text) == 3
	}
	if slices.ContainsFunc(qt, func(t names.Word) bool { return names.Particle(t.Text) }) {
		for nn := 2; nn <= 3; nn++ {
			for qi := 0; qi+nn <= len(qt); qi++ {
				if !particleRun(nn, func(k int) bool { return names.Particle(qt[qi+k].Text) }) {
					continue
				}
				r := qrun{qi: qi, qn: nn}
				for _, t := range qt[qi : qi+nn] {
					r.joined += t.Text
					r.abjad = r.abjad || t.Abjad
				}
				r.skel, r.tkey, r.ascii = names.Skeleton(r.joined), names.TranslitKey(r.joined), isASCII(r.joined)
				q.runs = append(q.runs, r)
			}
		}
	}
	return q
}

// particleRun reports whether a run of nn words, of which particle tells
// which are particles, may be one word written apart: a particle before
// its last word, or a connective in the middle ("zia ul haq").
func particleRun(nn int, particle func(k int) bool) bool {
	for k := range nn - 1 {
		if particle(k) {
			return true
		}
	}
	return nn == 3 && particle(nn-1)
}

// nameScore compares the query words with a listed name's words: runs of
// words are paired, most similar first, each word used once, and the score
// combines how much of the query's weight and how much of the name's weight
// is covered: qcov^0.6 · ncov^0.4. A pair weighs what its listed words weigh.
// Words left over on both sides two edits apart are paired last (typo2Pair).
//
// other is the index in words of the least similar pair of single words
// judged another name (otherName), -1 when there is none; alike, of the
// least similar pair of a given name of the name with a query word only
// alike (alikeGiven), -1 when there is none.
func (x *Index) nameScore(q *query, n *nameRec) (score float64, words []WordMatch, other, alike int) {
	ps, ps2 := q.ps[:0], q.ps2[:0]
	for qi := range q.ws {
		t := &q.ws[qi]
		for ni, tid := range n.toks {
			// The listed word is written without vowels if it is so in
			// this name, not only in another ("star" of GOLDEN STAR and
			// ستار: their vowels tell "stroy" from "star").
			abjad := abjadOf(t.Abjad, x.listedAbjad(n, ni))
			key := uint64(qi)<<32 | uint64(tid) | uint64(abjad)<<62
			c, ok := q.cache[key]
			if !ok {
				c = x.pairOf(t, tid, abjad)
				q.cache[key] = c
			}
			sim, how := c.sim, c.how
			if mark := how[:min(len(how), 1)]; mark == lexSameMark || mark == lexOtherMark {
				how = how[1:]
				if ni < 32 && n.given&(1<<ni) != 0 {
					// a given name of this name (not a surname that is
					// another person's given name: "ANDRE, Johnson")
					if mark == lexSameMark {
						sim, how = max(sim, sameNameSim), "equivalent"
					} else {
						how = "other-given"
					}
				}
			}
			switch {
			case sim > 0:
				ps = append(ps, match{qi, 1, ni, 1, sim, how})
			case how == "typo2":
				ps2 = append(ps2, match{qi, 1, ni, 1, typo2Sim, how})
			}
		}
	}
	ps = x.runs(q, n, ps)
	// Most similar first; on a tie the longer run, so that the "al" of
	// "alhaq~al haq" is not taken by another "al" of the query.
	slices.SortStableFunc(ps, func(a, b match) int {
		if a.sim != b.sim {
			return cmp.Compare(b.sim, a.sim)
		}
		return cmp.Compare(b.qn+b.nn, a.qn+a.nn)
	})
	qUsed := grow(&q.qUsed, len(q.ws))
	nUsed := grow(&q.nUsed, len(n.toks))
	nWeight := grow(&q.nWeight, len(n.toks))
	for i := range qUsed {
		qUsed[i] = -1
	}
	clear(nUsed)
	words = make([]WordMatch, 0, len(q.ws)+len(n.toks))
	other, alike = -1, -1
	var qw, qm, nw, nm float64
	// typo2Given: a given name of the name was paired two edits apart;
	// dqw, dm: what such pairs changed in qw and in qm and nm.
	typo2Given, dqw, dm := false, 0.0, 0.0
	for ni, tid := range n.toks {
		nWeight[ni] = x.idf(len(x.toks[tid].post))
		nw += nWeight[ni]
	}
	free := func(p match) bool {
		for k := p.qi; k < p.qi+p.qn; k++ {
			if qUsed[k] >= 0 {
				return false
			}
		}
		for k := p.ni; k < p.ni+p.nn; k++ {
			if nUsed[k] {
				return false
			}
		}
		return true
	}
	// Words left over on both sides two edits apart (typo2) are paired
	// last, in the order of the query's words: none of them is more alike
	// than the others.
	ps = append(ps, ps2...)
	q.ps, q.ps2 = ps, ps2
	for pi, p := range ps {
		if !free(p) {
			continue
		}
		for k := p.qi; k < p.qi+p.qn; k++ {
			qUsed[k] = pi
		}
		for k := p.ni; k < p.ni+p.nn; k++ {
			nUsed[k] = true
		}
	}
	for qi := range q.ws {
		t := &q.ws[qi]
		if pi := qUsed[qi]; pi >= 0 {
			p := ps[pi]
			if p.qi != qi {
				continue // the rest of a run, counted with its first word
			}
			var w float64
			for k := p.ni; k < p.ni+p.nn; k++ {
				w += nWeight[k]
			}
			if p.how == "typo2" {
				typo2Given = typo2Given || p.ni < 32 && n.given&(1<<p.ni) != 0
				dqw += t.w - w
				dm += w * p.sim
			}
			qw += w
			qm += w * p.sim
			nm += w * p.sim
			if p.qn == 1 && p.nn == 1 && otherName(t, &x.toks[n.toks[p.ni]], p.how) && (other < 0 || p.sim < words[other].Similarity) {
				other = len(words)
			}
			if p.qn == 1 && p.nn == 1 && p.ni < 32 && n.given&(1<<p.ni) != 0 && alikeGiven(p.how) && (alike < 0 || p.sim < words[alike].Similarity) {
				alike = len(words)
			}
			words = append(words, WordMatch{Query: q.runText(p), Listed: x.listedText(n, p), Similarity: round(p.sim), How: p.how})
			continue
		}
		qw += t.w
		words = append(words, WordMatch{Query: t.Text, How: "extra"})
	}
	for ni, used := range nUsed {
		if used {
			continue
		}
		// A particle repeated in a chain of names ("BIN LADIN, Usama bin
		// Muhammad bin Awad") is not missing again once matched.
		if tid := n.toks[ni]; x.toks[tid].particle && particleMatched(n.toks, nUsed, tid) {
			nw -= nWeight[ni]
			continue
		}
		words = append(words, WordMatch{Listed: x.toks[n.toks[ni]].text, How: "missing"})
	}
	if qw == 0 || nw == 0 {
		return 0, words, other, alike
	}
	score = math.Pow(qm/qw, 0.6) * math.Pow(nm/nw, 0.4)
	if len(n.toks) == 1 && score < 1 {
		// A name of one word, not written the same: nothing else in the
		// name tells a typo ("Salina" for "Salinas") from another name.
		score *= score
	}
	if typo2Given {
		// A person's given name two edits from the query word is as
		// often another person's given name as a typo (a listed surname
		// with another first name: "maite~jaime", "lovre~leire"): the
		// pair ranks the name, but lifts it no higher than under
		// DefaultThreshold, and never lower than the name scores with
		// the two words left unpaired.
		s0 := math.Pow((qm-dm)/(qw+dqw), 0.6) * math.Pow((nm-dm)/nw, 0.4)
		if len(n.toks) == 1 {
			s0 *= s0
		}
		score = max(s0, press(score, otherNameFrom, otherNameTo))
	}
	return score, words, other, alike
}

// typo2Sim is what a query word counts paired with a listed word two
// edits apart (typo2Pair): less than a short word one letter off
// (shortTypo). Measured on the development draws: 0.3 ranks fewer
// two-typo variants first, 0.5 no more than 0.4 and lifts more ordinary
// names.
const typo2Sim = 0.4

// typo2Pair reports whether query word t and listed word l, which no other
// rule of tokenSimK pairs, are one or two edits apart (editsWithin2: a
// swap of neighbours is one) as a typo of two letters leaves them
// ("pohtoz", "photon"; "haubt", "htut"; "sotn", "soft"). nameScore pairs
// such words only when both are left over once every other pair is
// taken, so that the name with the typo ranks above names that merely
// share the other words. Not:
//
//   - a word written without short vowels (pairOf's abjad): it is
//     letters away from the same name written with them ("hsyn",
//     "hisn"), which tokenSimK tells by its consonants;
//   - words of fewer than three letters, or of three against three: two
//     edits leave a letter or none of them;
//   - a query word some listed name has as written or a given name of the
//     lexicon: a typo seldom makes one (see pairOf);
//   - a particle on either side ("abd", "abahd"): a chain of names
//     repeats them, and nameScore does not count one repeated;
//   - words not ASCII: the distance counts bytes.
func typo2Pair(t *qword, l *tokInfo) bool {
	a, b := t.Text, l.text
	if min(len(a), len(b)) < 3 || max(len(a), len(b)) < 4 || t.known || t.lexicon || !t.ascii || !l.ascii {
		return false
	}
	return !l.particle && !names.Particle(a) && editsWithin2(a, b)
}

// pairOf is the similarity of query word t and listed word tid (abjad:
// which are words written without vowels, see tokenSimK), with what the query word's being known to
// the list and the lexicon tell (see nameScore).
func (x *Index) pairOf(t *qword, tid uint32, abjad uint8) (c pairSim) {
	ti := &x.toks[tid]
	c.sim, c.how = tokenSimK(t.Text, ti.text, t.skel, ti.skel, t.tkey, ti.tkey, abjad, ti.ascii && t.ascii)
	if c.how == "similar" && t.known && t.skel != ti.skel {
		// A typo seldom makes a word some listed name has: a
		// query word the list knows, with other consonants
		// than the listed word, is another name ("farhad",
		// "farshad"), not a misspelling of it.
		c.sim, c.how = min(c.sim, endingSim), "another"
	}
	if c.sim < typo2Sim && abjad == 0 && typo2Pair(t, ti) {
		if c.sim == 0 {
			// paired only if both words are left over (nameScore)
			c.how = "typo2"
		} else {
			// words within two edits that Jaro-Winkler finds little
			// alike ("81555", "85155") count no less than two edits
			c.sim = typo2Sim
		}
	}
	// (a word in -a the lexicon lacks may be a woman's form
	// of a man's name it has: see lexicon)
	if (t.lexicon || t.given || strings.HasSuffix(t.Text, "a")) && x.meta[tid].flags&metaGiven != 0 {
		// what the lexicon (or a w before a given name: see
		// lexicon) tells, marked before how (a byte more in
		// the cache would make each entry 32 bytes)
		switch x.lexicon(t, ti, c.how) {
		case lexSame:
			c.how = lexSameMark + c.how
		case lexOther:
			c.how = lexOtherMark + c.how
		}
	}
	return c
}

// listedAbjad reports whether word ni of name n is written without short
// vowels there (n.abjad; for words past the 32nd, in some name).
func (x *Index) listedAbjad(n *nameRec, ni int) bool {
	if ni < 32 {
		return n.abjad&(1<<ni) != 0
	}
	return x.toks[n.toks[ni]].abjad
}

// grow returns *b resized to n, reallocated only when too small.
func grow[T any](b *[]T, n int) []T {
	if cap(*b) < n {
		*b = make([]T, n)
	}
	*b = (*b)[:n]
	return *b
}

// particleMatched reports whether an occurrence of a word of a name was matched.
func particleMatched(toks []uint32, used []bool, tid uint32) bool {
	for i, t := range toks {
		if t == tid && used[i] {
			return true
		}
	}
	return false
}

// runs adds to ps the pairs of one word with a run of two or three words
// on the other side: a query word with listed words written apart around a
// particle ("alhaq" with "al haq": joined), query words written apart with
// one listed word ("abd ullah" with "abdullah": split), and a short query
// word of initials with listed words having those first letters ("jr" from
// "J.R." with "john robert": initials).
func (x *Index) runs(q *query, n *nameRec, ps []match) []match {
	lt := func(ni int) *tokInfo { return &x.toks[n.toks[ni]] }
	// Most names have no particle and most queries no initials: nothing
	// to pair across words then.
	listedParticle := slices.ContainsFunc(n.toks, func(tid uint32) bool { return x.toks[tid].particle })
	for nn := 2; nn <= 3; nn++ {
		// listed runs against single query words
		for ni := 0; ni+nn <= len(n.toks) && (listedParticle || q.initials); ni++ {
			run := listedParticle && particleRun(nn, func(k int) bool { return lt(ni + k).particle })
			var joined, skel, tkey string
			var abjad, ascii bool
			for qi := range q.ws {
				t := &q.ws[qi]
				switch {
				case run && len(t.Text) >= 3 && t.Text[0] == lt(ni).text[0]:
					if joined == "" {
						ascii = true
						for k := range nn {
							joined += lt(ni + k).text
							abjad = abjad || x.listedAbjad(n, ni+k)
							ascii = ascii && lt(ni+k).ascii
						}
						skel, tkey = names.Skeleton(joined), names.TranslitKey(joined)
					}
					if sim, _ := tokenSimK(t.Text, joined, t.skel, skel, t.tkey, tkey, abjadOf(t.Abjad, abjad), t.ascii && ascii); sim >= 0.6 {
						ps = append(ps, match{qi, 1, ni, nn, sim, "joined"})
					}
				case len(t.Text) == nn && x.initialsOf(t.Text, n.toks[ni:ni+nn]):
					ps = append(ps, match{qi, 1, ni, nn, 0.85, "initials"})
				}
			}
		}
		// query runs against single listed words
		for _, r := range q.runs {
			if r.qn != nn {
				continue
			}
			for ni := range n.toks {
				if l := lt(ni); l.text[0] == r.joined[0] {
					if sim, _ := tokenSimK(r.joined, l.text, r.skel, l.skel, r.tkey, l.tkey, abjadOf(r.abjad, x.listedAbjad(n, ni)), r.ascii && l.ascii); sim >= 0.6 {
						ps = append(ps, match{r.qi, nn, ni, 1, sim, "split"})
					}
				}
			}
		}
	}
	return ps
}

// initialsOf reports whether the letters of w are the first letters of the
// words toks, each of two letters or more.
func (x *Index) initialsOf(w string, toks []uint32) bool {
	for i, tid := range toks {
		if l := x.toks[tid].text; l[0] != w[i] || len(l) < 2 {
			return false
		}
	}
	return true
}

func (q *query) runText(p match) string {
	if p.qn == 1 {
		return q.ws[p.qi].Text
	}
	ws := make([]string, p.qn)
	for k := range ws {
		ws[k] = q.ws[p.qi+k].Text
	}
	return strings.Join(ws, " ")
}

func (x *Index) listedText(n *nameRec, p match) string {
	if p.nn == 1 {
		return x.toks[n.toks[p.ni]].text
	}
	ws := make([]string, p.nn)
	for k := range ws {
		ws[k] = x.toks[n.toks[p.ni+k]].text
	}
	return strings.Join(ws, " ")
}

// otherName reports whether a pair of single words, a query word t and a
// listed word l matched as how, was judged another name rather than a
// misspelling of it, in a way that a typo seldom gives:
//
//   - another: a query word the list knows, of other consonants, and one
//     that is a listed person's given name or more than one edit from the
//     listed word (a typo of one letter makes a short word of the list
//     often enough: "malt", "mat");
//   - ending: another ending, but for a listed word with its last letter
//     dropped to a word no list has ("husayn", "husay"), as often a typo;
//   - similar: other consonants (phonetic key) and more than one edit
//     apart, as written and romanised ("sergio", "sergey"; "vadim",
//     "vladimir"): most typos change one letter of a word, and another
//     romanisation keeps the consonants ("muhammad", "mohamed");
//   - other-given: a listed person's given name and another given name of
//     the index's lexicon, not the same name in another form ("karin",
//     "karim"; UseGivenNames), one with a w before it ("wasim", "asim"), or
//     a given name of the lexicon or of a listed person one or two letters
//     from it with other consonants ("saud", "saul"; "lucia", "luqian").
//
// Without a lexicon, a word one letter from the listed word with no other
// sign ("karin", "karim") is left a typo: nothing in the name tells them
// apart.
func otherName(t *qword, l *tokInfo, how string) bool {
	switch how {
	case "other-given":
		return true
	case "another":
		return t.given || !oneEdit(t.Text, l.text)
	case "ending":
		return t.known || len(t.tkey)+1 != len(l.tkey) || !strings.HasPrefix(l.tkey, t.tkey)
	case "similar":
		return t.skel != l.skel && !oneEdit(t.Text, l.text) && !oneEdit(t.tkey, l.tkey)
	}
	return false
}

// otherNameCap is a person's name score when one of its words was judged
// another name (otherName): however rare and alike the other words (a
// surname written the same), the name is another person's, under
// DefaultThreshold. Scores above otherNameFrom are pressed into
// otherNameFrom..otherNameTo, keeping their order, so that the right entry
// still ranks first when a typo was taken for another name.
func otherNameCap(s float64) float64 { return press(s, otherNameFrom, otherNameTo) }

const otherNameFrom, otherNameTo = 0.75, 0.79

// alikeGiven reports whether a query word paired as how with a given name
// of a person's name is only alike: neither the name as written, nor
// another romanisation of it (one transliteration key), nor the same name in
// another form by the lexicon (equivalent), nor an initial, but a word a
// few letters off (similar, ending, typo, phonetic) or of the same
// consonants written without vowels (consonants: "hmyd" is Hamid as much as
// Ahmad). Such a pair cannot tell a typo from another person's name
// ("maristella", "marisela"; "chiara", "chikara"), and a given name weighs
// little against a rare surname, so it would hardly lower the name's score:
// alikeCap keeps the name under 0.9.
func alikeGiven(how string) bool {
	switch how {
	case "similar", "ending", "typo", "phonetic", "consonants":
		return true
	}
	return false
}

// alikeCap is a person's name score when one of its given names was only
// alike (alikeGiven): a possible match, never a sure one. Scores above
// alikeFrom are pressed into alikeFrom..alikeTo, keeping their order, so that
// a name at DefaultThreshold or more stays there (a one-letter typo in a given
// name is still found) and the right entry still ranks first among those
// pressed alike.
func alikeCap(s float64) float64 { return press(s, alikeFrom, alikeTo) }

const alikeFrom, alikeTo = 0.85, 0.89

// press maps a score s in from..1 linearly onto from..to, keeping order;
// a score at or under from is left as it is.
func press(s, from, to float64) float64 {
	if s <= from {
		return s
	}
	return from + (s-from)*(to-from)/(1-from)
}

// lexicon tells what the index's lexicon of given names makes of a query
// word t paired with a listed word l that some listed person has as a given
// name, where the matcher saw how: lexSame, the same name in another form
// ("edward", "eduardo"); lexOther, another person's name however alike
// ("karin", "karim"); 0, nothing to tell. It applies where l is a given name
// of the name being scored (nameRec.given), and t is a given name of the
// lexicon or of a listed person.
//
//   - Two names of a lexicon with form groups (ParseLexicon, the project's)
//     that no group joins are other names even with the same consonants
//     ("bilawal", "bilal"; "edwin", "edin"): the groups say which forms are
//     one name. Of a lexicon without groups, only with other consonants
//     ("yusuf", "yousef" are one name there).
//   - A word the lexicon lacks that is, in -a, the woman's form of a man's
//     name of it, six letters or more ("eduarda" against "edward"), is
//     another person's name (names.OtherGender): shorter ones are as often
//     a typo ("josa", "jose").
//   - A w written before one of two given names is another name
//     ("wasim", "asim"; "waldemar", "aldemar"; "wanas", "anas"), with or
//     without the lexicon: the consonant key leaves a w out, and a typo
//     seldom adds one at a word's start. Not an h: "heriberto" and
//     "eriberto", "helena" and "elena" are one name.
//   - A given name of the lexicon or of a listed person that the lexicon
//     cannot relate to l, one or two letters from it with other
//     consonants, is another name ("saud", "saul"; "mai", "mani"; "lucia",
//     "luqian"), with or without the lexicon: a typo seldom makes a given
//     name. One consonant key keeps
//     the pair a typo or a romanisation ("jamil", "jamal"), and so does a
//     final h or e ("rabi", "rabie").
func (x *Index) lexicon(t *qword, l *tokInfo, how string) uint8 {
	switch rel := x.given.Relate(t.Text, l.text); rel {
	case names.SameName:
		return lexSame
	case names.OtherName, names.OtherGender:
		// only where the matcher saw a misspelling or another name, never
		// another romanisation ("muhammad", "mohamed") or an initial
		switch how {
		case "similar", "ending", "another", "typo", "phonetic":
			if t.skel != l.skel || rel == names.OtherGender || x.given.Grouped() {
				return lexOther
			}
		}
	case names.Unknown:
		if !(t.lexicon || t.given) || names.Particle(t.Text) || names.Particle(l.text) {
			return 0
		}
		if initialW(t.Text, l.text) {
			return lexOther
		}
		// A given name (of the lexicon or of a listed person) one or two
		// letters from a listed given name with other consonants is
		// another name ("saud", "saul"; "lucia", "luqian"): a typo seldom
		// makes a given name. Of random edits of the listed persons' first
		// given names, 2.1 % of one-edit and 1.8 % of two-edit ones make
		// another given name of the lexicon or of the lists with other
		// consonants (TestScreenTypoCost's given-typo and given-typo2 rows
		// measure what it costs): two edits land on a name no more often
		// than one. A final h or e comes and goes in romanisations ("rabi",
		// "rabie"; see otherEnding).
		switch how {
		case "similar", "ending", "another", "typo", "phonetic":
			if t.skel != l.skel && editsWithin2(t.Text, l.text) && !finalHE(t.Text, l.text) {
				return lexOther
			}
		}
	}
	return 0
}

// editsWithin2 reports whether a and b, other words, are one or two edits
// apart (letters changed, added or dropped, neighbours swapped: the optimal
// string alignment distance), for words of up to 32 letters.
func editsWithin2(a, b string) bool {
	if d := len(a) - len(b); d > 2 || d < -2 || len(b) > 32 {
		return false
	}
	var rows [3][33]int8
	prev2, prev, cur := &rows[0], &rows[1], &rows[2]
	for j := 0; j <= len(b); j++ {
		prev[j] = int8(j)
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = int8(i)
		low := cur[0]
		for j := 1; j <= len(b); j++ {
			c := int8(1)
			if a[i-1] == b[j-1] {
				c = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			low = min(low, v)
		}
		if low > 2 {
			return false
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)] <= 2
}

// finalHE reports whether one of a and b is the other with an h or an e
// written after it ("rabi", "rabie"; "abdulla", "abdullah").
func finalHE(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	return len(b) == len(a)+1 && b[:len(a)] == a && (b[len(a)] == 'h' || b[len(a)] == 'e')
}

// initialW reports whether a and b differ by a w written before one of them
// ("wanas", "anas").
func initialW(a, b string) bool {
	if len(a) < len(b) {
		a, b = b, a
	}
	return len(a) == len(b)+1 && len(b) > 0 && a[0] == 'w' && a[1:] == b
}

const (
	lexSame uint8 = 1 + iota
	lexOther
)

// lexSameMark and lexOtherMark mark a cached pair's how with what the
// lexicon tells (lexSame, lexOther), for nameScore to apply where the listed
// word is a given name of the name.
const lexSameMark, lexOtherMark = "=", "!"

// sameNameSim is what the same given name in another language or
// romanisation counts ("edward", "eduardo"), as another romanisation does.
const sameNameSim = 0.9
