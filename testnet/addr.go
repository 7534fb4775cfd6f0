package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// FreeAddr returns a loopback address to give a node before it starts: its
// port is free now, is not one of taken, and lies below the kernel's
// ephemeral range. A node keeps its address across restarts, so the port is
// unbound while the node starts or lies dead after kill -9. A port from the
// ephemeral range can be taken then by any outgoing connection or ":0"
// listener on the machine ("address already in use" failed a CI run so);
// below the range only another explicit choice can take it, and the choice
// is random.
func FreeAddr(taken ...string) (string, error) {
	lo, hi := 20000, ephemeralLow()
	if hi-lo < 1000 {
		return anyFreeAddr()
	}
	for range 100 {
		addr := "127.0.0.1:" + strconv.Itoa(lo+rand.IntN(hi-lo))
		if slices.Contains(taken, addr) {
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		return addr, nil
	}
	return "", fmt.Errorf("no free port in %d-%d after 100 tries", lo, hi-1)
}

// ephemeralLow is the first port the kernel hands out on its own: Linux's
// setting where there is one, else 32768, below the BSD and Windows ranges.
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if p, err := strconv.Atoi(f[0]); err == nil {
				return min(p, 32768)
			}
		}
	}
	return 32768
}

// anyFreeAddr is the fallback where the ephemeral range leaves no room below.
func anyFreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
