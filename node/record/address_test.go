package record

import (
	"strings"
	"testing"
)

func TestValidateAddress(t *testing.T) {
	for _, tc := range []struct {
		addr, want string // want: "" for valid, else a part of the error
	}{
		{"127.0.0.1:7400", ""},
		{"de-bafa.example.org:443", ""},
		{"[::1]:7400", ""},
		{"", "not host:port"},
		{"node.example.org", "not host:port"},
		{":7400", "no host"},
		{"node:0", "port"},
		{"node:70000", "port"},
		{"node:http", "port"},
		{"no\x1bde:7400", "holds"},
		{"node\u202e:7400", "holds"},
		{"a b:7400", "holds"},
		{strings.Repeat("a", 260) + ":1", "255 bytes"},
	} {
		err := ValidateAddress("address", tc.addr)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v, want valid", tc.addr, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "address: ")):
			t.Errorf("%q: %v, want an error on the field saying %q", tc.addr, err, tc.want)
		}
	}
}
