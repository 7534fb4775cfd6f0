package api

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Cursor is where a shared entry stands in the Watch feed: its log index
// and its position among the entries of that index (a bulk publication
// carries up to 1,024). A consumer resumes after the last cursor it took.
func Cursor(index uint64, position uint32) string {
	return strconv.FormatUint(index, 10) + ":" + strconv.FormatUint(uint64(position), 10)
}

// ParseCursor reads a cursor and returns where the feed resumes after it:
// the same index at the next position.
func ParseCursor(s string) (index uint64, nextPosition uint32, err error) {
	i, p, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("cursor %q: want LOG_INDEX:POSITION, as an entry's cursor says", s)
	}
	index, err = strconv.ParseUint(i, 10, 64)
	if err != nil || index == 0 {
		return 0, 0, fmt.Errorf("cursor %q: log index %q is not a number above 0", s, i)
	}
	pos, err := strconv.ParseUint(p, 10, 32)
	if err != nil || pos == math.MaxUint32 {
		return 0, 0, fmt.Errorf("cursor %q: position %q is not a number below %d", s, p, uint64(math.MaxUint32))
	}
	return index, uint32(pos) + 1, nil
}
