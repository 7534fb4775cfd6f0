// Package names holds what the node knows about how names and identifiers
// are written: Unicode folding, transliteration of other scripts to Latin,
// the words that say what kind of party a name is (honorifics, legal forms),
// phonetic keys, and identifier normalisation. Matching (node/screen) and the
// list importers (node/importer) both build on it.
package names

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Word is one normalised word of a name. Abjad marks a word transliterated
// from a script that does not write short vowels (Arabic, Hebrew): it is
// compared by consonant skeleton too.
type Word struct {
	Text  string
	Abjad bool
}

// translit maps letters of non-Latin scripts to Latin, after the usual
// romanisations (BGN/PCGN-like for Cyrillic, ELOT-like for Greek, a
// simplified ALA-LC for Arabic and Persian). Arabic short vowels are not
// written, so only consonants and long vowels come out.
var translit = map[rune]string{
	// Cyrillic (Russian, Ukrainian, Belarusian, Serbian, Bulgarian, Kazakh extras)
	'а': "a", 'б': "b", 'в': "v", 'г': "g", 'д': "d", 'е': "e", 'ё': "yo", 'ж': "zh",
	'з': "z", 'и': "i", 'й': "y", 'к': "k", 'л': "l", 'м': "m", 'н': "n", 'о': "o",
	'п': "p", 'р': "r", 'с': "s", 'т': "t", 'у': "u", 'ф': "f", 'х': "kh", 'ц': "ts",
	'ч': "ch", 'ш': "sh", 'щ': "shch", 'ъ': "", 'ы': "y", 'ь': "", 'э': "e", 'ю': "yu",
	'я': "ya", 'і': "i", 'ї': "yi", 'є': "ye", 'ґ': "g", 'ў': "u", 'ђ': "dj", 'ј': "j",
	'љ': "lj", 'њ': "nj", 'ћ': "c", 'џ': "dz", 'ѓ': "g", 'ќ': "k", 'ѕ': "dz",
	'қ': "k", 'ғ': "g", 'ң': "n", 'ү': "u", 'ұ': "u", 'һ': "h", 'ә': "a", 'ө': "o",
	// Greek
	'α': "a", 'β': "v", 'γ': "g", 'δ': "d", 'ε': "e", 'ζ': "z", 'η': "i", 'θ': "th",
	'ι': "i", 'κ': "k", 'λ': "l", 'μ': "m", 'ν': "n", 'ξ': "x", 'ο': "o", 'π': "p",
	'ρ': "r", 'σ': "s", 'ς': "s", 'τ': "t", 'υ': "y", 'φ': "f", 'χ': "ch", 'ψ': "ps",
	'ω': "o",
	// Arabic and Persian
	'ا': "a", 'أ': "a", 'إ': "i", 'آ': "a", 'ٱ': "a", 'ء': "", 'ؤ': "u", 'ئ': "i",
	'ب': "b", 'ت': "t", 'ث': "th", 'ج': "j", 'ح': "h", 'خ': "kh", 'د': "d", 'ذ': "dh",
	'ر': "r", 'ز': "z", 'س': "s", 'ش': "sh", 'ص': "s", 'ض': "d", 'ط': "t", 'ظ': "z",
	'ع': "", 'غ': "gh", 'ف': "f", 'ق': "q", 'ك': "k", 'ل': "l", 'م': "m", 'ن': "n",
	'ه': "h", 'ة': "a", 'و': "w", 'ي': "y", 'ى': "a", 'پ': "p", 'چ': "ch", 'ژ': "zh",
	'گ': "g", 'ک': "k", 'ی': "y", 'ـ': "",
	// Hebrew
	'א': "a", 'ב': "b", 'ג': "g", 'ד': "d", 'ה': "h", 'ו': "v", 'ז': "z", 'ח': "kh",
	'ט': "t", 'י': "y", 'כ': "k", 'ך': "k", 'ל': "l", 'מ': "m", 'ם': "m", 'נ': "n",
	'ן': "n", 'ס': "s", 'ע': "", 'פ': "p", 'ף': "f", 'צ': "ts", 'ץ': "ts", 'ק': "k",
	'ר': "r", 'ש': "sh", 'ת': "t",
	// Armenian
	'ա': "a", 'բ': "b", 'գ': "g", 'դ': "d", 'ե': "e", 'զ': "z", 'է': "e", 'ը': "y",
	'թ': "t", 'ժ': "zh", 'ի': "i", 'լ': "l", 'խ': "kh", 'ծ': "ts", 'կ': "k", 'հ': "h",
	'ձ': "dz", 'ղ': "gh", 'ճ': "ch", 'մ': "m", 'յ': "y", 'ն': "n", 'շ': "sh", 'ո': "o",
	'չ': "ch", 'պ': "p", 'ջ': "j", 'ռ': "r", 'ս': "s", 'վ': "v", 'տ': "t", 'ր': "r",
	'ց': "ts", 'ւ': "v", 'փ': "p", 'ք': "k", 'օ': "o", 'ֆ': "f",
	// Georgian
	'ა': "a", 'ბ': "b", 'გ': "g", 'დ': "d", 'ე': "e", 'ვ': "v", 'ზ': "z", 'თ': "t",
	'ი': "i", 'კ': "k", 'ლ': "l", 'მ': "m", 'ნ': "n", 'ო': "o", 'პ': "p", 'ჟ': "zh",
	'რ': "r", 'ს': "s", 'ტ': "t", 'უ': "u", 'ფ': "p", 'ქ': "k", 'ღ': "gh", 'ყ': "q",
	'შ': "sh", 'ჩ': "ch", 'ც': "ts", 'ძ': "dz", 'წ': "ts", 'ჭ': "ch", 'ხ': "kh", 'ჯ': "j",
	'ჰ': "h",
	// Latin letters that do not decompose
	'ß': "ss", 'æ': "ae", 'ø': "o", 'đ': "d", 'ł': "l", 'ı': "i", 'þ': "th", 'œ': "oe",
	'ð': "d", 'ħ': "h",
}

// abjadScript reports a letter of a script written without short vowels.
func abjadScript(r rune) bool {
	return unicode.Is(unicode.Arabic, r) || unicode.Is(unicode.Hebrew, r)
}

// ayin reports the letter ayin (Arabic ع, Hebrew ע), a consonant Latin
// spellings do not write: inside a word transliteration drops it, but at the
// start of a word (or after the article ال joined to it) it stands for the
// vowel Latin writes there, as an alif does (علي is "aly", "ali"; عمر "amr",
// "omar"; عثمان "athman", "uthman"), and matching takes a vowel letter that
// starts a word as the carrier of any vowel (node/screen abjadFit).
func ayin(r rune) bool {
	return r == 'ع' || r == 'ע'
}

// joiners vanish inside a word ("S.A." is "sa", "O'Brien" is "obrien");
// every other non-letter, non-digit separates words.
func joiner(r rune) bool {
	switch r {
	case '.', '\'', '’', 'ʼ', 'ʻ', '`', '´':
		return true
	}
	return false
}

// Fold returns the words of s in normal form: NFKC, lower case, diacritics
// removed, other scripts transliterated to Latin.
func Fold(s string) []Word {
	s = norm.NFKC.String(s)
	var (
		out   []Word
		b     strings.Builder
		abjad bool
	)
	flush := func() {
		if b.Len() > 0 {
			out = append(out, Word{Text: b.String(), Abjad: abjad})
		}
		b.Reset()
		abjad = false
	}
	for _, r := range s {
		if r < utf8.RuneSelf {
			switch {
			case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
				b.WriteRune(r)
			case 'A' <= r && r <= 'Z':
				b.WriteRune(r + 'a' - 'A')
			case joiner(r):
			default:
				flush()
			}
			continue
		}
		lr := unicode.ToLower(r)
		if t, ok := translit[lr]; ok {
			if abjadScript(lr) {
				if ayin(lr) && (b.Len() == 0 || abjad && b.Len() == 2 && b.String() == "al") {
					t = "a" // a vowel carrier, like the alif (see ayin)
				}
				abjad = true
			}
			b.WriteString(t)
			continue
		}
		switch {
		case joiner(r):
		case unicode.Is(unicode.Mn, r):
			// a combining mark left by NFKC: drop it
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			// Decompose to strip diacritics (é → e); letters of scripts
			// without a table stay as they are.
			for _, d := range norm.NFD.String(string(lr)) {
				if !unicode.Is(unicode.Mn, d) {
					if t, ok := translit[d]; ok {
						b.WriteString(t)
					} else {
						b.WriteRune(d)
					}
				}
			}
		default:
			flush()
		}
	}
	flush()
	return out
}

// noise are words that say what kind of party a name is, not which one:
// honorifics, titles and legal forms. They are dropped before matching so that
// "Tech Trade LLC" and "Tech Trade GmbH" are the same name and no score comes
// from "CORP" alone.
var noise = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`
		mr mrs ms miss mme mlle dr prof sir dame lord lady herr frau sr sra srta don dona
		sheikh shaikh shaykh sheik haji hajji hadji al-haj alhaj mullah mulla maulana maulvi mawlawi
		general gen colonel col major maj captain capt lieutenant lt admiral adm
		llc ooo oao zao pao ao jsc ojsc cjsc pjsc tov pat pp chp ip
		gmbh mbh ag kg ohg ug gbr ev
		sa sas sarl sasu eurl sca snc srl spa sapa
		bv nv cv vof
		ltd limited inc incorporated corp corporation co company cie plc llp lp lllp pllc
		fze fzco fzc fzllc dmcc est establishment
		pte pty sdn bhd tbk pt cv kft zrt nyrt doo dd ood ead ad as asa ab oy oyj aps
		sro spol zoo sp
		obshchestvo ogranichennoy ogranichennoi otvetstvennostyu aktsionernoe zakrytoe otkrytoe publichnoe
		tovarystvo sirket sti anonim
		the of and`) {
		m[w] = true
	}
	return m
}()

// Words returns the words of a name that identify it: folded, without
// noise words (unless nothing else is left).
func Words(name string) []Word {
	all := Fold(name)
	out := all[:0:0]
	// In "SURNAME, Given names" what stands before the comma is the
	// surname, even when it is a word that is elsewhere an honorific
	// ("HAJJI, Muhammad", "SHEIKH, Umair").
	keep := 0
	if i := strings.IndexByte(name, ','); i > 0 {
		head := Fold(name[:i])
		if !slices.ContainsFunc(head, func(w Word) bool { return !noise[w.Text] || legalForms[w.Text] }) {
			keep = len(head)
		}
	}
	out = append(out, all[:keep]...)
	for i, t := range all[keep:] {
		i += keep
		// The "s" of "obshchestvo s ogranichennoy ..." (a company with
		// limited liability) is a preposition, not an initial.
		if !noise[t.Text] && (t.Text != "s" || i == 0 || all[i-1].Text != "obshchestvo") {
			out = append(out, t)
		}
	}
	// Nothing but initials left ("Y. Y. PAO"): the noise word is the name.
	if !slices.ContainsFunc(out, func(w Word) bool { return len(w.Text) > 1 }) {
		return all
	}
	return out
}

// Normalize returns a name as the matcher sees it: its identifying words,
// space-separated.
func Normalize(name string) string {
	ts := Words(name)
	ws := make([]string, len(ts))
	for i, t := range ts {
		ws[i] = t.Text
	}
	return strings.Join(ws, " ")
}

// Skeleton is a coarse phonetic key: the consonants of a word with similar
// sounds merged and repeats collapsed, so "Muhammad", "Mohammed" and the
// transliterated Arabic "mhmd" share the key "mhmt". It serves both for
// candidate lookup and to compare vowel-less transliterations.
func Skeleton(w string) string {
	var b []byte
	var last byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch c {
		case 'a', 'e', 'i', 'o', 'u', 'y', 'w', 'h':
			last = 0 // only letters written side by side collapse
			continue
		case 'c', 'q', 'g':
			c = 'k'
		case 'z':
			c = 's'
		case 'v':
			c = 'f'
		case 'p':
			if i+1 < len(w) && w[i+1] == 'h' {
				c = 'f'
			}
		case 'd':
			c = 't'
		}
		if c == last {
			continue
		}
		b = append(b, c)
		last = c
	}
	// A final i or y (the Arabic nisba, "husseini", "hsyny") is kept as
	// one mark: "hsyny" is not "hisn".
	if n := len(w); n > 1 && (w[n-1] == 'i' || w[n-1] == 'y') {
		b = append(b, 'Y')
	}
	return string(b)
}

// idWords are the words lists and analysts write before an identifier to
// say what it is ("Passport 515731854", "National ID No. 1234", "IMO
// 9187629", "SWIFT/BIC BKCHCNBJ"): they are not part of the number.
var idWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`passport passeport pasaporte no nr num number numero n id ids identification identity
		national card cedula dni nie nif cpf curp rfc ruc nit ssn tin ein vat inn ogrn ogrnip kpp okpo edrpou
		tax taxpayer registration register reg regn company business commercial legal entity lei
		imo mmsi vessel ship call sign callsign swift bic code`) {
		m[w] = true
	}
	return m
}()

// ID returns an identifier in the form used for exact matching: upper case
// letters and digits only, without the type words written before it, so
// that "IMO 9187629", "Passport 9187629" and "9187629" are the same.
func ID(v string) string {
	ws := Fold(v)
	for len(ws) > 1 && idWords[ws[0].Text] {
		ws = ws[1:]
	}
	var b strings.Builder
	for _, t := range ws {
		b.WriteString(strings.ToUpper(t.Text))
	}
	s := b.String()
	// "IMO9187629" written as one word.
	if len(s) > 3 && strings.HasPrefix(s, "IMO") && s[3] >= '0' && s[3] <= '9' {
		s = s[3:]
	}
	return s
}

// legalForms are the noise words that only a company or an organisation carries.
var legalForms = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`llc ooo oao zao pao ao jsc ojsc cjsc pjsc tov gmbh ag kg sa sas sarl srl spa bv nv
		ltd limited inc incorporated corp corporation co company plc llp lp fze fzco fzc pte pty bhd kft doo as ab oy
		trading group holding holdings industries international enterprises bank airlines airline airways aviation
		shipping logistics technology technologies solutions electronics services systems engineering`) {
		m[w] = true
	}
	return m
}()

// LooksLikeOrganization reports whether a name carries a legal form or a
// word only organisations have, for lists that do not say (the BIS Denied
// Persons List).
func LooksLikeOrganization(name string) bool {
	for _, t := range Fold(name) {
		if legalForms[t.Text] {
			return true
		}
	}
	return false
}

// particles are the short words of Arabic, Dutch, French, Spanish, Gaelic
// and other names that lists write apart, hyphenated or joined to the next
// (or, for "ul", "ud", "ur", the previous) word: "AL-HAQ", "ALHAQ",
// "ABU AL-KHAYR", "ABUALKHAYR", "VAN DER BERG", "MACDONALD", "ZIA UL HAQ".
var particles = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`al el ul ud ur ad ar as ash at az abu abd abdul abdel bin bint ibn ben bou
		van vander der den von de la del della da di du dos das le mac mc`) {
		m[w] = true
	}
	return m
}()

// Particle reports a word that can be written joined to its neighbour.
func Particle(w string) bool { return particles[w] }

// joinedPrefixes are the particles looked for at the start of a joined
// word, longest first; connectives are those found inside one ("ziaulhaq").
var (
	joinedPrefixes = []string{"abdul", "abdel", "vander", "bint", "abu", "abd", "bin", "ibn", "van", "der", "mac", "al", "el", "mc"}
	connectives    = []string{"ul", "ud", "ur"}
)

// SplitJoined returns the words a joined word may have been written as,
// without its particles ("abualkhayr" → "khayr", "ziaulhaq" → "zia", "haq"),
// or nil. It serves candidate lookup only: it may split a word that has no
// particle ("alexander" → "exander"), which then finds nothing.
func SplitJoined(w string) []string {
	rest := w
	for again := true; again; {
		again = false
		for _, p := range joinedPrefixes {
			if r, ok := strings.CutPrefix(rest, p); ok && len(r) >= 3 {
				rest, again = r, true
				break
			}
		}
	}
	var out []string
	if rest != w {
		out = append(out, rest)
	}
	for _, c := range connectives {
		if i := strings.Index(rest[min(3, len(rest)):], c); i >= 0 {
			i += 3
			if len(rest)-i-len(c) >= 3 {
				return append(out[:0], rest[:i], rest[i+len(c):])
			}
		}
	}
	return out
}

// AbjadKey is the consonant key under which a word transliterated from
// Arabic or Hebrew script (which write no short vowels) and its Latin
// spellings meet: vowels and the semi-vowels w and y dropped, the usual
// digraphs kept as one sound, q written k, doubled letters once ("hussein"
// and "hsyn" → "hsn"); y and w count at the start of a word. Finer than
// Skeleton, which merges more sounds for Latin spellings and would make
// "zayd" and "saud" one name.
func AbjadKey(w string) string {
	k, _ := abjadScan(w, false)
	return k
}

// The vowels of AbjadVowels, as bits: a, i (and y), u (and w, o), e.
const (
	VowelA uint8 = 1 << iota
	VowelI
	VowelU
	VowelE
)

// AbjadVowels returns the vowels written around the consonants of
// AbjadKey(w), one set a place: before the first consonant, between each
// two, after the last (len(AbjadKey(w))+1 places). Words written without
// short vowels write only their long vowels: "hsyn" has an i between s and
// n where "hisn" has none.
func AbjadVowels(w string) []uint8 {
	_, v := abjadScan(w, true)
	return v
}

// abjadScan is AbjadKey, and AbjadVowels where vowels is set.
func abjadScan(w string, vowels bool) (string, []uint8) {
	var b []byte
	var vs []uint8
	if vowels {
		vs = make([]uint8, 1, len(w)+1)
	}
	var last byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		if i+1 < len(w) && w[i+1] == 'h' {
			switch c {
			case 'k', 's', 't', 'd', 'g', 'z', 'c':
				c = c - 'a' + 'A' // one sound: kh, sh, th, dh, gh, zh, ch
				i++
			case 'p':
				c = 'f'
				i++
			}
		}
		var v uint8
		switch c {
		case 'y', 'w':
			if i == 0 { // a consonant at the start: "yasmin" is not "osman"
				break
			}
			v = VowelI
			if c == 'w' {
				v = VowelU
			}
		case 'a':
			v = VowelA
		case 'i':
			v = VowelI
		case 'o', 'u':
			v = VowelU
		case 'e':
			v = VowelE
		case 'q', 'c':
			c = 'k'
		}
		if v != 0 {
			last = 0
			if vowels {
				vs[len(vs)-1] |= v
			}
			continue
		}
		if c == last {
			continue
		}
		b = append(b, c)
		last = c
		if vowels {
			vs = append(vs, 0)
		}
	}
	return string(b), vs
}

// translitPairs are the letters that romanisations of the same name write
// differently (BGN/PCGN Russian against English or French spellings,
// Arabic q and k): TranslitKey writes each group one way.
var translitPairs = strings.NewReplacer("shch", "shch", "dzh", "j", "dj", "j", "kh", "h", "ph", "f", "ck", "k",
	"q", "k", "c", "k", "w", "v", "x", "ks", "y", "i")

// TranslitKey writes a Latin word the way its other romanisations meet:
// "dzhavkhar" and "jawhar" are both "javhar", "yakoob" and "yaqoob" both
// "iakob". Vowels other than y stay: "reed" is not "rid".
func TranslitKey(w string) string {
	k := w
	if strings.ContainsAny(w, "dkpcqwxy") {
		k = translitPairs.Replace(w)
	}
	// doubled letters once
	b := []byte(k)
	out := b[:0]
	for i, c := range b {
		if i == 0 || c != b[i-1] {
			out = append(out, c)
		}
	}
	return string(out)
}
