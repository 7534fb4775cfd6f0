package screen

// Scoring one listed name against the query: pairing runs of words (one
// with one, joined or split particles, initials) and the coverage score.

import (
	"math"
	"slices"
	"sort"
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

// nameScore compares the query words with a listed name's words: runs of
// words are paired, most similar first, each word used once, and the score
// combines how much of the query's weight and how much of the name's weight
// is covered: qcov^0.6 · ncov^0.4. A pair weighs what its listed words weigh.
func (x *Index) nameScore(qt []names.Word, qk, qtk []string, n *nameRec, cache map[uint64]pairSim) (float64, []WordMatch) {
	var ps []match
	for qi, t := range qt {
		for ni, tid := range n.toks {
			key := uint64(qi)<<32 | uint64(tid)
			c, ok := cache[key]
			if !ok {
				ti := &x.toks[tid]
				c.sim, c.how = tokenSimK(t.Text, ti.text, qk[qi], ti.skel, qtk[qi], ti.tkey, t.Abjad || ti.abjad, ti.ascii && isASCII(t.Text))
				cache[key] = c
			}
			if c.sim > 0 {
				ps = append(ps, match{qi, 1, ni, 1, c.sim, c.how})
			}
		}
	}
	ps = x.runs(qt, n, ps)
	// Most similar first; on a tie the longer run, so that the "al" of
	// "alhaq~al haq" is not taken by another "al" of the query.
	sort.SliceStable(ps, func(a, b int) bool {
		if ps[a].sim != ps[b].sim {
			return ps[a].sim > ps[b].sim
		}
		return ps[a].qn+ps[a].nn > ps[b].qn+ps[b].nn
	})
	qUsed := make([]int, len(qt))
	nUsed := make([]bool, len(n.toks))
	for i := range qUsed {
		qUsed[i] = -1
	}
	var words []WordMatch
	var qw, qm, nw, nm float64
	nWeight := make([]float64, len(n.toks))
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
	for qi, t := range qt {
		if pi := qUsed[qi]; pi >= 0 {
			p := ps[pi]
			if p.qi != qi {
				continue // the rest of a run, counted with its first word
			}
			var w float64
			for k := p.ni; k < p.ni+p.nn; k++ {
				w += nWeight[k]
			}
			qw += w
			qm += w * p.sim
			nm += w * p.sim
			words = append(words, WordMatch{Query: x.runText(qt, p), Listed: x.listedText(n, p), Similarity: round(p.sim), How: p.how})
			continue
		}
		// An unmatched query word weighs as a rare word unless the
		// dictionary knows it.
		w := x.idf(0)
		if id, ok := x.tokID[t.Text]; ok {
			w = x.idf(len(x.toks[id].post))
		}
		qw += w
		words = append(words, WordMatch{Query: t.Text, How: "extra"})
	}
	for ni, used := range nUsed {
		if used {
			continue
		}
		// A particle repeated in a chain of names ("BIN LADIN, Usama bin
		// Muhammad bin Awad") is not missing again once matched.
		if tid := n.toks[ni]; names.Particle(x.toks[tid].text) && particleMatched(n.toks, nUsed, tid) {
			nw -= nWeight[ni]
			continue
		}
		words = append(words, WordMatch{Listed: x.toks[n.toks[ni]].text, How: "missing"})
	}
	if qw == 0 || nw == 0 {
		return 0, words
	}
	score := math.Pow(qm/qw, 0.6) * math.Pow(nm/nw, 0.4)
	if len(n.toks) == 1 && score < 1 {
		// A name of one word, not written the same: nothing else in the
		// name tells a typo ("Salina" for "Salinas") from another name.
		score *= score
	}
	return score, words
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
func (x *Index) runs(qt []names.Word, n *nameRec, ps []match) []match {
	lt := func(ni int) *tokInfo { return &x.toks[n.toks[ni]] }
	particleRun := func(ws []string) bool {
		for _, w := range ws[:len(ws)-1] {
			if names.Particle(w) {
				return true
			}
		}
		return names.Particle(ws[len(ws)-1]) && len(ws) == 3 // "zia ul haq"
	}
	// Most names have no particle and most queries no initials: nothing
	// to pair across words then.
	listedParticle := slices.ContainsFunc(n.toks, func(tid uint32) bool { return names.Particle(x.toks[tid].text) })
	queryParticle := slices.ContainsFunc(qt, func(t names.Word) bool { return names.Particle(t.Text) })
	queryInitials := slices.ContainsFunc(qt, func(t names.Word) bool { return len(t.Text) == 2 || len(t.Text) == 3 })
	for nn := 2; nn <= 3; nn++ {
		// listed runs against single query words
		for ni := 0; ni+nn <= len(n.toks) && (listedParticle || queryInitials); ni++ {
			ws := make([]string, nn)
			abjad := false
			for k := range ws {
				ws[k] = lt(ni + k).text
				abjad = abjad || lt(ni+k).abjad
			}
			joined := strings.Join(ws, "")
			run := particleRun(ws)
			for qi, t := range qt {
				switch {
				case run && len(t.Text) >= 3 && t.Text[0] == joined[0]:
					if sim, _ := tokenSim(t.Text, joined, abjad || t.Abjad); sim >= 0.6 {
						ps = append(ps, match{qi, 1, ni, nn, sim, "joined"})
					}
				case len(t.Text) == nn && initialsOf(t.Text, ws):
					ps = append(ps, match{qi, 1, ni, nn, 0.85, "initials"})
				}
			}
		}
		// query runs against single listed words
		for qi := 0; qi+nn <= len(qt) && queryParticle; qi++ {
			ws := make([]string, nn)
			abjad := false
			for k := range ws {
				ws[k] = qt[qi+k].Text
				abjad = abjad || qt[qi+k].Abjad
			}
			if !particleRun(ws) {
				continue
			}
			joined := strings.Join(ws, "")
			for ni := range n.toks {
				if l := lt(ni); l.text[0] == joined[0] {
					if sim, _ := tokenSim(joined, l.text, abjad || l.abjad); sim >= 0.6 {
						ps = append(ps, match{qi, nn, ni, 1, sim, "split"})
					}
				}
			}
		}
	}
	return ps
}

// initialsOf reports whether the letters of w are the first letters of ws.
func initialsOf(w string, ws []string) bool {
	for i := range ws {
		if ws[i][0] != w[i] || len(ws[i]) < 2 {
			return false
		}
	}
	return true
}

func (x *Index) runText(qt []names.Word, p match) string {
	ws := make([]string, p.qn)
	for k := range ws {
		ws[k] = qt[p.qi+k].Text
	}
	return strings.Join(ws, " ")
}

func (x *Index) listedText(n *nameRec, p match) string {
	ws := make([]string, p.nn)
	for k := range ws {
		ws[k] = x.toks[n.toks[p.ni+k]].text
	}
	return strings.Join(ws, " ")
}
