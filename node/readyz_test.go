package node

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestHealthAndReadiness: /healthz answers while the process runs; /readyz
// is 503 with the reason until the node is in a federation with a leader,
// then 200; /metrics shows the node itself as a reachable peer.
func TestHealthAndReadiness(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conn := startTestNode(t, func(c *Config) { c.MetricsListen = addr })
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor := func(what string, cond func() (bool, string)) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ok, last := cond()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s; last: %s", what, last)
			}
			time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
		}
	}
	waitFor("/healthz 200", func() (bool, string) { c, b := get("/healthz"); return c == 200 && b == "ok\n", b })
	if c, b := get("/readyz"); c != http.StatusServiceUnavailable || !strings.Contains(b, "in no federation") {
		t.Fatalf("/readyz before federation init: %d %q", c, b)
	}
	if _, err := pb.NewFederationServiceClient(conn).InitFederation(context.Background(), &pb.InitFederationRequest{}); err != nil {
		t.Fatal(err)
	}
	waitFor("/readyz 200", func() (bool, string) { c, b := get("/readyz"); return c == 200, b })
	waitFor("the node itself a reachable peer in /metrics", func() (bool, string) {
		_, b := get("/metrics")
		return strings.Contains(b, `watchfed_peer_reachable{peer="`+DevAgency+`"} 1`) && strings.Contains(b, `watchfed_peer_lag_entries{peer="`+DevAgency+`"} 0`), b
	})
}
