package record

import (
	"fmt"
	"net"
	"strconv"
)

// ValidateAddress checks a node's gRPC address as it enters the member
// registry (an invitation, a join): host:port with a port of 1–65535 and a
// host of letters, digits, '.', '-' and ':' (an IPv6 literal in brackets),
// at most 255 bytes. The registry is replicated to every member and printed
// by their operators, so nothing else may pass.
func ValidateAddress(field, addr string) error {
	if len(addr) > 255 {
		return fmt.Errorf("%s: longer than 255 bytes", field)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port", field, addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%s: port %q is not a number from 1 to 65535", field, port)
	}
	if host == "" {
		return fmt.Errorf("%s: %q has no host", field, addr)
	}
	for _, r := range host {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == ':'
		if !ok {
			return fmt.Errorf("%s: host %q holds %q; only letters, digits, '.', '-' and ':' are allowed", field, host, r)
		}
	}
	return nil
}
