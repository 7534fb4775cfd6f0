package testnet

import (
	"net"
	"strconv"
	"testing"
)

// TestFreeAddr: addresses for nodes come from below the ephemeral range (no
// outgoing connection can take them while a node restarts), are bindable,
// and skip those already given to the federation.
func TestFreeAddr(t *testing.T) {
	if ephemeralLow() < 21000 {
		t.Skipf("the ephemeral range starts at %d: no room below it", ephemeralLow())
	}
	var taken []string
	for range 50 {
		addr, err := FreeAddr(taken...)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range taken {
			if a == addr {
				t.Fatalf("%s handed out twice", addr)
			}
		}
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		if port, _ := strconv.Atoi(p); port >= ephemeralLow() {
			t.Fatalf("port %d in the ephemeral range from %d", port, ephemeralLow())
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s not bindable: %v", addr, err)
		}
		l.Close()
		taken = append(taken, addr)
	}
}
