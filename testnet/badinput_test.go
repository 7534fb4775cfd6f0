package testnet

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node/pki"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// closedByServer waits until the server closes c (any read error but a timeout).
func closedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the node kept a connection that sent garbage open")
	}
}

// TestBadInputOnThePort: garbage before TLS, garbage inside TLS, a cut
// HTTP/2 stream and oversized messages are refused, and the node goes on
// serving and stores nothing from them.
func TestBadInputOnThePort(t *testing.T) {
	l := startLocal(t, 1)
	ln := l.Nodes[0]
	garbage := make([]byte, 64<<10)
	if _, err := rand.Read(garbage); err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := pki.Files{CACert: ln.Env.CACert, Cert: ln.Env.ClientCert, Key: ln.Env.ClientKey}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg.NextProtos = []string{"h2"}

	t.Run("garbage before TLS", func(t *testing.T) {
		c, err := net.Dial("tcp", ln.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write(garbage) // the node may close before reading it all
		closedByServer(t, c)
	})
	t.Run("garbage inside TLS", func(t *testing.T) {
		c, err := tls.Dial("tcp", ln.Addr, tlsCfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write(garbage)
		closedByServer(t, c)
	})
	t.Run("truncated HTTP/2 stream", func(t *testing.T) {
		c, err := tls.Dial("tcp", ln.Addr, tlsCfg)
		if err != nil {
			t.Fatal(err)
		}
		// The preface, then half of a HEADERS frame header, then gone.
		_, _ = c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x40\x01"))
		c.Close()
	})

	conn := conn(t, ln)
	rc := pb.NewRecordServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name string
		size int
		code codes.Code
	}{
		{"over max_message_bytes", 5 << 20, codes.ResourceExhausted},
		{"over the transport limit", 65 << 20, codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &pb.Record{
				Marking:    pb.Marking_MARKING_GREEN,
				ChangeNote: strings.Repeat("x", tc.size),
				Subject:    &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: "Oversized Trading"},
				Detail:     &pb.Record_Designation{Designation: &pb.Designation{Program: "TEST"}},
			}
			_, err := rc.CreateRecord(ctx, &pb.CreateRecordRequest{Record: rec})
			if status.Code(err) != tc.code {
				t.Fatalf("%d-byte record: %v, want %v", tc.size, err, tc.code)
			}
		})
	}

	// Still serving, and nothing of the above was stored.
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("node not serving after bad input: %v %v", h, err)
	}
	list, err := rc.ListRecords(ctx, &pb.ListRecordsRequest{IncludeInactive: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Records) != 0 {
		t.Fatalf("bad input stored %d records", len(list.Records))
	}
	add(t, ln, "After The Garbage")
}
