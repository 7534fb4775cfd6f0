package screen

import (
	"math/bits"
	"unicode/utf8"
	"unsafe"
)

// jaroWinkler returns the Jaro-Winkler similarity of two words in 0..1
// (prefix scale 0.1, prefix up to 4), the usual measure for name typos.
func jaroWinkler(a, b string) float64 {
	if a == b {
		return 1
	}
	if isASCII(a) && isASCII(b) {
		return jwASCII(a, b)
	}
	return jw([]rune(a), []rune(b))
}

// jwASCII compares ASCII words as bytes, without copying them.
func jwASCII(a, b string) float64 {
	if s, ok := jwBits(a, b); ok {
		return s
	}
	return jw(unsafe.Slice(unsafe.StringData(a), len(a)), unsafe.Slice(unsafe.StringData(b), len(b)))
}

// jwBits is jw for words of letters a-z and digits up to 64 long (what
// names fold to), with the matched positions and the positions of each
// letter as bit sets: finding a letter's first unmatched position in the
// window is one AND, where jw scans the window. The candidate lookup
// compares a query word with thousands of words, so this is most of its
// time. ok is false for other words.
func jwBits(a, b string) (float64, bool) {
	la, lb := len(a), len(b)
	if la == 0 || lb == 0 || la > 64 || lb > 64 {
		return 0, false
	}
	if la > lb {
		a, b, la, lb = b, a, lb, la
	}
	// pos[c] has bit j set where b[j] is letter c.
	var pos [36]uint64
	for j := 0; j < lb; j++ {
		k := alnum(b[j])
		if k < 0 {
			return 0, false
		}
		pos[k] |= 1 << j
	}
	window := max(lb/2-1, 0)
	var matchedA, matchedB uint64
	for i := 0; i < la; i++ {
		k := alnum(a[i])
		if k < 0 {
			return 0, false
		}
		lo, hi := max(0, i-window), min(lb, i+window+1)
		// bits lo..hi-1
		inWindow := (^uint64(0) >> (64 - (hi - lo))) << lo
		if c := pos[k] & inWindow &^ matchedB; c != 0 {
			matchedB |= c & -c
			matchedA |= 1 << i
		}
	}
	matches := bits.OnesCount64(matchedA)
	if matches == 0 {
		return 0, true
	}
	trans := 0
	for ma, mb := matchedA, matchedB; ma != 0; ma, mb = ma&(ma-1), mb&(mb-1) {
		if a[bits.TrailingZeros64(ma)] != b[bits.TrailingZeros64(mb)] {
			trans++
		}
	}
	m := float64(matches)
	jaro := (m/float64(la) + m/float64(lb) + (m-float64(trans)/2)/m) / 3
	prefix := 0
	for prefix < 4 && prefix < la && a[prefix] == b[prefix] {
		prefix++
	}
	return jaro + float64(prefix)*0.1*(1-jaro), true
}

// alnum numbers a-z 0..25 and 0-9 26..35; -1 for anything else.
func alnum(c byte) int {
	switch {
	case 'a' <= c && c <= 'z':
		return int(c - 'a')
	case '0' <= c && c <= '9':
		return int(c-'0') + 26
	}
	return -1
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// jw is Jaro-Winkler over bytes (ASCII words) or runes; it only reads a and b.
func jw[T byte | rune](a, b []T) float64 {
	la, lb := len(a), len(b)
	if la == 0 || lb == 0 {
		return 0
	}
	if la > lb {
		a, b, la, lb = b, a, lb, la
	}
	window := lb/2 - 1
	if window < 0 {
		window = 0
	}
	// Words are short: fixed arrays avoid allocation for all but the longest.
	var ma, mb [64]bool
	matchedA, matchedB := ma[:0], mb[:0]
	if la <= 64 && lb <= 64 {
		matchedA, matchedB = ma[:la], mb[:lb]
	} else {
		matchedA, matchedB = make([]bool, la), make([]bool, lb)
	}
	matches := 0
	for i := 0; i < la; i++ {
		lo, hi := max(0, i-window), min(lb, i+window+1)
		for j := lo; j < hi; j++ {
			if !matchedB[j] && a[i] == b[j] {
				matchedA[i], matchedB[j] = true, true
				matches++
				break
			}
		}
	}
	if matches == 0 {
		return 0
	}
	trans, j := 0, 0
	for i := 0; i < la; i++ {
		if !matchedA[i] {
			continue
		}
		for !matchedB[j] {
			j++
		}
		if a[i] != b[j] {
			trans++
		}
		j++
	}
	m := float64(matches)
	jaro := (m/float64(la) + m/float64(lb) + (m-float64(trans)/2)/m) / 3
	prefix := 0
	for prefix < 4 && prefix < la && a[prefix] == b[prefix] {
		prefix++
	}
	return jaro + float64(prefix)*0.1*(1-jaro)
}
