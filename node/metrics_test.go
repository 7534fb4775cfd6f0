package node

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func TestMetricsEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conn := startTestNode(t, func(c *Config) { c.MetricsListen = addr })
	ctx := context.Background()
	if _, err := pb.NewFederationServiceClient(conn).InitFederation(ctx, &pb.InitFederationRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pb.NewRecordServiceClient(conn).CreateRecord(ctx, &pb.CreateRecordRequest{Record: benchRecord(1)}); err != nil {
		t.Fatal(err)
	}
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if strings.Contains(body, "watchfed_entries_published_total 1") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed the publication: %v\n%s", err, body)
		}
		_, _ = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}) // keeps polling paced by a round trip
	}
	for _, m := range []string{"watchfed_raft_leader 1", "watchfed_raft_applied_index", "watchfed_publish_seconds_bucket", "watchfed_outbox_entries 0"} {
		if !strings.Contains(body, m) {
			t.Errorf("metrics lack %q", m)
		}
	}
}
