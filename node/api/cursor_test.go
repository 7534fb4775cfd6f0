package api

import "testing"

func TestParseCursor(t *testing.T) {
	for _, tc := range []struct {
		in        string
		index     uint64
		next      uint32
		wantError bool
	}{
		{in: "1234:17", index: 1234, next: 18},
		{in: "1:0", index: 1, next: 1},
		{in: Cursor(99, 1023), index: 99, next: 1024},
		{in: "1234", wantError: true},
		{in: "0:3", wantError: true},
		{in: "x:3", wantError: true},
		{in: "5:-1", wantError: true},
		{in: "5:4294967295", wantError: true},
		{in: "", wantError: true},
	} {
		index, next, err := ParseCursor(tc.in)
		if (err != nil) != tc.wantError || index != tc.index || next != tc.next {
			t.Errorf("ParseCursor(%q) = %d, %d, %v", tc.in, index, next, err)
		}
	}
}
