package screen

import (
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
	return jw(unsafe.Slice(unsafe.StringData(a), len(a)), unsafe.Slice(unsafe.StringData(b), len(b)))
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
