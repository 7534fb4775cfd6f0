// Package screen matches names and identifiers against the records an agency
// holds: its own and those partners shared with it. Names (normalised by
// node/names) are indexed by word, character trigram and phonetic key, and
// candidates from the index are scored with an explanation.
package screen

import (
	"math"
	"math/bits"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/watchfed/watchfed/node/names"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Entry is what the index keeps of a record: enough to find and score it.
// The record itself stays in the store; results name it by ID.
type Entry struct {
	ID string
	// Version of the record; a write older than what the index holds is
	// ignored, so concurrent writers cannot leave a stale version behind.
	Version     uint64
	Origin      string
	Kind        pb.Kind
	Schema      pb.Schema
	Names       []Name
	BirthDates  []string
	Countries   []string
	Identifiers []Identifier
	// Shared is true for an entry a partner shared with this agency.
	Shared bool
}

// Name is one name of an entry.
type Name struct {
	Text string
	Weak bool
	// Party is set for the name of a denied party other than the subject.
	Party bool
}

// Identifier is one identifier of an entry, as listed.
type Identifier struct {
	Type  pb.IdentifierType
	Value string
}

// EntryOf extracts what screening needs from a record: the subject's name,
// aliases and identifiers, and for a denial the names of its parties.
func EntryOf(rec *pb.Record, shared bool) *Entry {
	e := &Entry{ID: rec.GetId(), Version: rec.GetVersion(), Origin: rec.GetOrigin(), Kind: rec.GetKind(), Shared: shared}
	if s := rec.GetSubject(); s != nil {
		e.Schema = s.Schema
		if s.Name != "" {
			e.Names = append(e.Names, Name{Text: s.Name})
		}
		for _, a := range s.Aliases {
			e.Names = append(e.Names, Name{Text: a.Name, Weak: a.Strength == pb.NameStrength_NAME_STRENGTH_WEAK})
		}
		for _, id := range s.Identifiers {
			e.Identifiers = append(e.Identifiers, Identifier{Type: id.Type, Value: id.Value})
		}
		e.BirthDates = s.BirthDates
		e.Countries = append(append(e.Countries, s.Nationalities...), s.Countries...)
		for _, a := range s.Addresses {
			if a.Country != "" {
				e.Countries = append(e.Countries, a.Country)
			}
		}
	}
	if d := rec.GetDenial(); d != nil {
		for _, p := range d.Parties {
			if !slices.ContainsFunc(e.Names, func(n Name) bool { return n.Text == p.Name }) {
				e.Names = append(e.Names, Name{Text: p.Name, Party: true})
			}
			if p.Country != "" {
				e.Countries = append(e.Countries, p.Country)
			}
		}
	}
	slices.Sort(e.Countries)
	e.Countries = slices.Compact(e.Countries)
	return e
}

type tokInfo struct {
	text  string
	skel  string // phonetic key, computed once
	tkey  string // romanisation key (names.TranslitKey), computed once
	abjad bool
	ascii bool
	// particle: a word that may be written joined to its neighbour (names.Particle)
	particle bool
	bag      uint32   // letters present (a-z, digits folded), for a cheap pre-check
	post     []uint32 // ids of the live names holding the token, ascending
}

// tokMeta is what the candidate lookup checks of a dictionary word before
// reading the word itself: a query word's trigrams bring thousands of
// words, most of them too different, so this is kept compact and apart
// (one cache line holds four) and settles most of them.
type tokMeta struct {
	bag, kbag uint32 // letters of the word and of its romanisation key (letterBag)
	n, kn     uint16 // lengths of the word and of its key
	k0        byte   // first letter of the key
	flags     uint8  // metaLive | metaAbjad | metaASCII
}

const (
	metaLive  = 1 << iota // some live name holds the word
	metaAbjad             // written in a script without short vowels somewhere
	metaASCII
	metaGiven // a given name of some listed person
)

type nameRec struct {
	entry uint32
	// abjad has a bit for each of the first 32 words written in this name
	// without vowels (names.Word.Abjad; a word's tokInfo.abjad is set if any
	// name writes it so)
	abjad uint32
	// toks are the name's words in order, a repeated word as often as it
	// occurs ("KARIM AHMED KARIM"): order finds particles written apart,
	// repeats must be matched each time.
	toks []uint32
	// inits has a bit for the first letter of each word, so that a query
	// with initials can rank names having words with those letters.
	inits uint32
	// given has a bit for each of the first 32 words that is a given name
	// of the name (a person's: markGiven)
	given uint32
	text  string
	weak  bool
	live  bool
}

// Index is an in-memory inverted index over entries' names and identifiers.
// It is safe for concurrent use; Put and Remove follow record writes without a
// rebuild.
type Index struct {
	mu      sync.RWMutex
	tokID   map[string]uint32
	toks    []tokInfo
	meta    []tokMeta           // by token id, beside toks
	grams   map[uint32][]uint32 // gramKey(trigram, word length) → token ids
	skels   map[string][]uint32 // phonetic key → token ids
	names   []nameRec
	nameW   []float32 // by name id, beside names: its word weight, read for every candidate
	live    int       // live names
	entries []*Entry
	enames  [][]uint32 // entry → its name ids
	byID    map[string]uint32
	free    []uint32            // entry slots to reuse
	ids     map[string][]uint32 // normalised identifier → entries
	vers    map[string]uint64   // record id → latest version seen, removed ones too
	// given tells the same given name in another form from another given
	// name (nil: nothing tells them): names.DefaultGivenNames unless
	// UseGivenNames set another before searching.
	given *names.GivenNames

	// scratch holds one working set per concurrent search, sized to the
	// index (a few bytes per name and word). There are as many as CPUs:
	// searches are CPU-bound, so more at once would only add memory and GC
	// work; a search waits for a free one.
	scratch chan *scratch
}

// UseGivenNames has the index tell given names apart with a lexicon: a
// listed person's given name paired with another given name of the lexicon
// is another person's name (other_name); with the same name in another
// language or romanisation, the same name ("edward~eduardo(equivalent)").
// A new index uses names.DefaultGivenNames, the lexicon written for the
// project; call this before the first search to use another, or nil to
// tell no given names apart.
func (x *Index) UseGivenNames(g *names.GivenNames) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.given = g
}

// GivenNames is the lexicon of given names the index uses (nil: none).
func (x *Index) GivenNames() *names.GivenNames {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.given
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{
		tokID: map[string]uint32{},
		grams: map[uint32][]uint32{},
		skels: map[string][]uint32{},
		byID:  map[string]uint32{},
		ids:   map[string][]uint32{},
		vers:  map[string]uint64{},
		given: names.DefaultGivenNames(),
		scratch: func() chan *scratch {
			c := make(chan *scratch, runtime.GOMAXPROCS(0))
			for range cap(c) {
				c <- &scratch{}
			}
			return c
		}(),
	}
}

// Len returns the number of entries and of names indexed.
func (x *Index) Len() (entries, names int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byID), x.live
}

// Put adds an entry or replaces the entry with the same ID, unless the index
// already saw a later version.
func (x *Index) Put(e *Entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stale(e.ID, e.Version) {
		return
	}
	x.remove(e.ID)
	var slot uint32
	if n := len(x.free); n > 0 {
		slot = x.free[n-1]
		x.free = x.free[:n-1]
		x.entries[slot] = e
	} else {
		slot = uint32(len(x.entries))
		x.entries = append(x.entries, e)
		x.enames = append(x.enames, nil)
	}
	x.byID[e.ID] = slot
	var nids []uint32
	for _, n := range e.Names {
		ts := names.Words(n.Text)
		if len(ts) == 0 {
			continue
		}
		nid := uint32(len(x.names))
		rec := nameRec{entry: slot, text: n.Text, weak: n.Weak, live: true, toks: make([]uint32, 0, len(ts))}
		for i, t := range ts {
			tid := x.token(t)
			rec.inits |= letterBag(t.Text[:1])
			if t.Abjad && i < 32 {
				rec.abjad |= 1 << i
			}
			if !slices.Contains(rec.toks, tid) {
				x.toks[tid].post = append(x.toks[tid].post, nid)
				x.meta[tid].flags |= metaLive
			}
			rec.toks = append(rec.toks, tid)
		}
		// The name's word weight when it was indexed: for ranking
		// candidates only (scores use current weights).
		var w float32
		for i, tid := range rec.toks {
			if slices.Index(rec.toks, tid) < i {
				continue // a repeated word weighs once in the ranking estimate
			}
			w += float32(x.idf(len(x.toks[tid].post)))
		}
		if e.Schema == pb.Schema_SCHEMA_PERSON {
			rec.given = x.markGiven(n.Text, rec.toks)
		}
		x.names = append(x.names, rec)
		x.nameW = append(x.nameW, w)
		x.live++
		nids = append(nids, nid)
	}
	x.enames[slot] = nids
	for _, id := range e.Identifiers {
		if k := names.ID(id.Value); k != "" {
			x.ids[k] = append(x.ids[k], slot)
		}
	}
}

// Remove takes an entry out of the index (a delisting, a revoked denial),
// unless the index already saw a later version.
func (x *Index) Remove(id string, version uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stale(id, version) {
		return
	}
	x.remove(id)
}

// stale records version as the latest of id, or reports that a later one
// was seen. Version 0 (unversioned) always applies.
func (x *Index) stale(id string, version uint64) bool {
	if version == 0 {
		return false
	}
	if version < x.vers[id] {
		return true
	}
	x.vers[id] = version
	return false
}

func (x *Index) remove(id string) {
	slot, ok := x.byID[id]
	if !ok {
		return
	}
	e := x.entries[slot]
	for _, nid := range x.enames[slot] {
		n := &x.names[nid]
		for _, tid := range n.toks {
			p := x.toks[tid].post
			if i, found := slices.BinarySearch(p, nid); found { // a repeated word: once
				x.toks[tid].post = slices.Delete(p, i, i+1)
				if len(p) == 1 {
					x.meta[tid].flags &^= metaLive
				}
			}
		}
		*n = nameRec{}
		x.nameW[nid] = 0
		x.live--
	}
	for _, ident := range e.Identifiers {
		k := names.ID(ident.Value)
		x.ids[k] = slices.DeleteFunc(x.ids[k], func(s uint32) bool { return s == slot })
		if len(x.ids[k]) == 0 {
			delete(x.ids, k)
		}
	}
	x.entries[slot], x.enames[slot] = nil, nil
	delete(x.byID, id)
	x.free = append(x.free, slot)
}

// token returns the id of a word, adding it to the dictionary and its
// trigrams and phonetic key to the lookup tables when new.
func (x *Index) token(t names.Word) uint32 {
	if id, ok := x.tokID[t.Text]; ok {
		if t.Abjad {
			x.toks[id].abjad = true
			x.meta[id].flags |= metaAbjad
		}
		return id
	}
	id := uint32(len(x.toks))
	x.tokID[t.Text] = id
	k := names.Skeleton(t.Text)
	tk := names.TranslitKey(t.Text)
	if tk == t.Text {
		tk = t.Text // most words are their own key: no second copy
	}
	x.toks = append(x.toks, tokInfo{text: t.Text, skel: k, tkey: tk, abjad: t.Abjad, ascii: isASCII(t.Text),
		particle: names.Particle(t.Text), bag: letterBag(t.Text)})
	m := tokMeta{bag: letterBag(t.Text), kbag: letterBag(tk), n: uint16(min(len(t.Text), math.MaxUint16)),
		kn: uint16(min(len(tk), math.MaxUint16)), k0: tk[0]}
	if t.Abjad {
		m.flags |= metaAbjad
	}
	if isASCII(t.Text) {
		m.flags |= metaASCII
	}
	x.meta = append(x.meta, m)
	for _, g := range trigrams(t.Text) {
		k := gramKey(g, len(t.Text))
		x.grams[k] = append(x.grams[k], id)
	}
	if len(k) >= 2 {
		x.skels[k] = append(x.skels[k], id)
	}
	return id
}

// markGiven flags the given names of a person's name (words in order,
// toks): the words after the comma of "SURNAME, Given Names", else the
// first word. The flag stays when the name is removed: it says what a
// given name may be, not who is listed. It returns the positions of the
// given names in toks, a bit each (the first 32 words).
func (x *Index) markGiven(name string, toks []uint32) (at uint32) {
	if surname, given, ok := strings.Cut(name, ","); ok {
		for _, t := range names.Words(given) {
			if id, ok := x.tokID[t.Text]; ok {
				x.meta[id].flags |= metaGiven
			}
		}
		for i := len(names.Words(surname)); i < min(len(toks), 32); i++ {
			at |= 1 << i
		}
		return at
	}
	if len(toks) >= 2 {
		x.meta[toks[0]].flags |= metaGiven
		at = 1
	}
	return at
}

// letterBag is the set of letters of a word as bits: two words within two
// typos differ by at most two letters each way.
func letterBag(w string) uint32 {
	var b uint32
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case 'a' <= c && c <= 'z':
			b |= 1 << (c - 'a')
		case '0' <= c && c <= '9':
			b |= digitBag
		default:
			b |= 1 << 27
		}
	}
	return b
}

// digitBag is the bit of letterBag for digits.
const digitBag = 1 << 26

func hasDigit(w string) bool {
	for i := 0; i < len(w); i++ {
		if '0' <= w[i] && w[i] <= '9' {
			return true
		}
	}
	return false
}

// jwBound is an upper bound of the Jaro-Winkler similarity of two words
// given their lengths, letter sets (letterBag) and first letters: a letter
// class of one word that the other lacks matches nothing, and only the
// same first letter can earn the prefix bonus.
func jwBound(la int, bagA uint32, a0 byte, lb int, bagB uint32, b0 byte) float64 {
	m := min(la-bits.OnesCount32(bagA&^bagB), lb-bits.OnesCount32(bagB&^bagA))
	if m <= 0 {
		return 0
	}
	j := (float64(m)/float64(la) + float64(m)/float64(lb) + 1) / 3
	if a0 != b0 {
		return j
	}
	return j + float64(min(4, la, lb))*0.1*(1-j)
}

// gramKey files a trigram under the length of its word (capped), so that a
// lookup reads only words of about the query word's length.
func gramKey(g uint32, length int) uint32 {
	return uint32(min(length, 255))<<24 | g
}

// trigrams returns the byte trigrams of a word padded at both ends, so that
// short words have some and the first and last letters count.
func trigrams(w string) []uint32 {
	p := "\x01" + w + "\x02"
	out := make([]uint32, 0, len(p)-2)
	for i := 0; i+3 <= len(p); i++ {
		g := uint32(p[i])<<16 | uint32(p[i+1])<<8 | uint32(p[i+2])
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// idf weighs a word by how rare it is among the names: a word on many names
// ("mohammed", "trading") identifies less than a rare one.
func (x *Index) idf(df int) float64 {
	return math.Log(1 + float64(x.live+1)/float64(df+1))
}

// tokenSim is the similarity of two words in 0..1 and how they matched.
func tokenSim(q, l string, abjad uint8) (float64, string) {
	return tokenSimK(q, l, names.Skeleton(q), names.Skeleton(l), names.TranslitKey(q), names.TranslitKey(l), abjad, isASCII(q) && isASCII(l))
}

// tokenSimK is the similarity of a query word q and a listed word l, given
// their phonetic and romanisation keys and whether both are ASCII, and how
// they matched; 0
// means different words.
//
// Jaro-Winkler finds typos, but a one-letter difference is as often another
// name ("Martin", "Martini"; "Jones", "Jonas") as a typo, so its similarity
// s counts as 1 − 4·(1 − s): 0.97 gives 0.88, 0.9 gives 0.6. Spellings that
// sound alike (the same phonetic key) count at least 0.75, another
// romanisation of the same letters ("jawhar", "dzhavkhar") 0.9, and a word from a
// script without short vowels (abjad: which of q and l, abjadQ and abjadL)
// that has the consonants of the other, and its long vowels where the
// other has vowels (abjadFit), at least 0.9 (0.85 for two consonants or
// when that says little): "mhmd" is "muhammad".
func tokenSimK(q, l, kq, kl, tq, tl string, abjad uint8, ascii bool) (float64, string) {
	if q == l {
		return 1, "exact"
	}
	if len(q) == 1 || len(l) == 1 {
		switch {
		case q[0] != l[0]:
			return 0, ""
		case len(q) == 1:
			return 0.85, "initial"
		default:
			// A listed single letter is as often a letter of a company's
			// name ("GRUPO W") as an initial.
			return 0.7, "initial"
		}
	}
	number := ascii && (hasDigit(q) || hasDigit(l))
	if number {
		// A number (a vessel's, an aircraft's) is compared as written:
		// romanisation and phonetic keys fold its doubled digits
		// ("7611" would be "761", then "761q" another ending of it), and a
		// digit changed or added at its end is another number, no
		// ending of a name.
		tq, tl, kq, kl = q, l, q, l
	}
	var s float64
	switch {
	case ascii && tq == tl:
		// Another romanisation of the same name: "dzhavkhar" for "jawhar".
		return 0.9, "transliteration"
	case ascii:
		// Typos are counted between the romanisation keys, so that
		// "mukhammad" is one letter from "muhammad"'s key, not three.
		s = jwASCII(tq, tl)
	default:
		s = jaroWinkler(q, l)
	}
	if number && oneEdit(q, l) {
		// One edit wherever it is after the first character: "761q"
		// is as near "7619" as "7611"; a first one added, dropped or
		// changed ("7886", "886") less near, as among short words.
		switch {
		case q[0] != l[0]:
			return shortTypo, "typo"
		case typoSim(s) < numberTypo:
			return numberTypo, "typo"
		}
	}
	phonetic := 0.75 // what a word that sounds alike counts at least
	if abjad != 0 {
		if aq, al := names.AbjadKey(q), names.AbjadKey(l); aq == al && len(aq) >= 2 {
			switch fit, weak := abjadFit(q, l, abjad); {
			case !fit:
				// the same consonants, other long vowels: as often
				// other words ("krymy", "karami") as a spelling of one
				phonetic = endingSim
			case len(aq) >= 3 && !weak:
				return max(0.9, typoSim(s)), "consonants"
			case len(aq) >= 3 || q[0] == l[0] || vowel(q[0]) && vowel(l[0]):
				return max(0.85, typoSim(s)), "consonants"
			}
		}
	}
	if min(len(q), len(l)) <= 4 && s < 0.9 {
		// Short words: one letter off is as often a different word
		// ("bank", "band") as a typo, so it counts for little; enough to
		// rank "industrial banp" with "INDUSTRIAL BANK" before "YI-BAN",
		// never enough to make a match of it alone.
		if min(len(q), len(l)) >= 3 && q[0] == l[0] && oneEdit(q, l) {
			return shortTypo, "typo"
		}
		return 0, ""
	}
	if s < minTokenSim {
		return 0, ""
	}
	if ascii && !number && otherEnding(tq, tl) {
		// Names that differ in their ending only are as often other names
		// of a family or language as typos: "andrew", "andre"; "evgenia",
		// "evgeni"; "ivanova", "ivanov"; "abdullahi", "abdullah". The
		// shared beginning would earn them Winkler's prefix bonus.
		return min(typoSim(s), endingSim), "ending"
	}
	if kq == kl && len(kq) >= 3 && typoSim(s) < phonetic {
		return phonetic, "phonetic"
	}
	return typoSim(s), "similar"
}

// Which of two words compared is written without short vowels (tokenSimK).
const (
	abjadQ uint8 = 1 << iota // the query word
	abjadL                   // the listed word
)

// abjadOf is the abjad argument of tokenSimK for words that are (q, l) or
// are not written without short vowels.
func abjadOf(q, l bool) uint8 {
	var a uint8
	if q {
		a |= abjadQ
	}
	if l {
		a |= abjadL
	}
	return a
}

// abjadFit tells whether two words of the same consonants (names.AbjadKey)
// have their vowels where they may be one name, and whether what they
// share says little (weak).
//
// A word written without short vowels writes its long vowels (ا, و, ي):
// where it has one, the other word, written in Latin letters, has a vowel
// of that kind (a for ا; o, u, w for و; i, e, y for ي; e for ا too):
// "hsyn" (حسين) is "husayn", "hussein", not "hisn" or "hasan"; "alhjar"
// (الحجار) is not "al hijra". A vowel letter at the start carries any
// vowel, but one (أ of "أسامة" is "usama", "osama"; اشرفی is not "sharifi").
// Two words both written so
// write the same long vowels, or they are other words ("alansary",
// "alansar"). The Latin word's vowels where the other has none are the
// short vowels it does not write.
//
// It says little (weak) when the consonants are three or fewer and the
// Latin word has a vowel at the start or at the end where the other has
// none: Arabic writes a vowel that begins or ends a word (ا, ة, ى, و, ي),
// so "bkr" and "abukar", "gld" and "gilda", "shrf" and "ashraf" are as
// often other words with those consonants (but for an ع at the start,
// which transliteration drops: "thman", "othman").
func abjadFit(q, l string, abjad uint8) (fit, weak bool) {
	vq, vl := names.AbjadVowels(q), names.AbjadVowels(l)
	if abjad == abjadQ|abjadL {
		carrier(q, vq)
		carrier(l, vl)
		return slices.Equal(vq, vl), false
	}
	a, b, aw := vq, vl, q // a written without short vowels, b in Latin letters
	if abjad == abjadL {
		a, b, aw = vl, vq, l
	}
	carrier(aw, a)
	// A vowel letter that starts the word (or follows a joined al) is
	// pronounced: the other word has a vowel there too (اشرفی is not SHARIFI).
	if len(aw) > 0 && len(b) > 0 && vowel(aw[0]) && b[0] == 0 || len(aw) > 2 && aw[:2] == "al" && vowel(aw[2]) && len(b) > 1 && b[1] == 0 {
		return false, false
	}
	for k := range a {
		lat := b[k]
		if lat&names.VowelE != 0 {
			lat |= names.VowelA | names.VowelI
		}
		if a[k]&^lat != 0 {
			return false, false
		}
	}
	n := len(a) - 1
	return true, n <= 3 && (b[0] != 0 && !vowel(aw[0]) || b[n] != 0 && a[n] == 0)
}

// carrier takes out of the vowels before the first consonant (vs[0]) the
// vowel letter w starts with: at the start of a word it carries any vowel,
// and so after the article al joined to it (الأستاذ, "alastadh", is
// "al ustadh").
func carrier(w string, vs []uint8) {
	if len(w) > 0 && len(vs) > 0 && vowel(w[0]) {
		vs[0] &^= names.AbjadVowels(w[:1])[0]
	}
	if len(w) > 2 && len(vs) > 1 && w[:2] == "al" && vowel(w[2]) {
		vs[1] &^= names.AbjadVowels(w[2:3])[0]
	}
}

// otherEnding reports whether two romanisation keys differ in their ending
// only: one is the other with one to three letters added (a final h or e
// alone comes and goes in romanisations: "abdulla", "abdullah"; "rabi",
// "rabie"), or the last letter, a vowel, is another vowel ("mario", "maria").
func otherEnding(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	switch d := len(b) - len(a); {
	case len(a) < 3 || d > 3:
		return false
	case d == 0:
		n := len(a) - 1
		return n >= 3 && a[:n] == b[:n] && a[n] != b[n] && vowel(a[n]) && vowel(b[n])
	default:
		return b[:len(a)] == a && b[len(a):] != "h" && b[len(a):] != "e"
	}
}

// endingSim is what a word whose ending differs counts at most.
const endingSim = 0.7

func vowel(c byte) bool { return strings.IndexByte("aeiou", c) >= 0 }

// typoSim is what a Jaro-Winkler similarity counts for; see tokenSimK.
func typoSim(s float64) float64 { return max(0, 1-4*(1-s)) }

const minTokenSim = 0.82

// numberTypo is what a word holding digits one edit from the other counts
// at least (tokenSimK).
const numberTypo = 0.6

// shortTypo is what a word of four letters or fewer one letter off counts.
const shortTypo = 0.5

// oneEdit reports whether a and b differ by one letter changed, added,
// dropped, or two neighbours swapped.
func oneEdit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if i == len(a) {
		return len(b)-len(a) <= 1
	}
	switch len(b) - len(a) {
	case 0:
		if a[i+1:] == b[i+1:] {
			return true
		}
		return i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
	case 1:
		return a[i:] == b[i+1:]
	}
	return false
}
