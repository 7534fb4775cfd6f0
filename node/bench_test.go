package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/watchfed/watchfed/node/pki"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// startTestNode runs a dev-configured node in this process and returns a
// client connection with the dev analyst+operator certificate.
func startTestNode(tb testing.TB, mutate ...func(*Config)) *grpc.ClientConn {
	tb.Helper()
	return startTestNodeOpts(tb, Options{}, mutate...)
}

// startTestNodeOpts is startTestNode with the parts tests replace (a clock).
func startTestNodeOpts(tb testing.TB, opts Options, mutate ...func(*Config)) *grpc.ClientConn {
	tb.Helper()
	cfg := Defaults()
	cfg.Agency = DevAgency
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = tb.TempDir()
	for _, m := range mutate {
		m(&cfg)
	}
	env, err := EnsureDevCerts(&cfg)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	tlsCfg, err := pki.Files{CACert: env.CACert, Cert: env.ClientCert, Key: env.ClientKey}.ClientConfig()
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := grpc.NewClient(n.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

func benchRecord(i int64) *pb.Record {
	return &pb.Record{
		Marking: pb.Marking_MARKING_GREEN,
		Subject: &pb.Subject{
			Schema: pb.Schema_SCHEMA_PERSON, Name: fmt.Sprintf("Person Number %d", i),
			Aliases:    []*pb.Alias{{Name: fmt.Sprintf("P. N. %d", i)}},
			Countries:  []string{"RU"},
			BirthDates: []string{"1970-01-01"},
		},
		Detail: &pb.Record_Designation{Designation: &pb.Designation{Program: "BENCH", Measures: []string{"asset-freeze"}}},
	}
}

// BenchmarkCreateRecord: concurrent record writes through the gRPC API over
// mutual TLS, each fsynced with its audit entry before the call returns.
func BenchmarkCreateRecord(b *testing.B) {
	c := pb.NewRecordServiceClient(startTestNode(b))
	var seq atomic.Int64
	b.SetParallelism(8) // 8 × GOMAXPROCS concurrent callers, as analysts and importers would be
	b.ResetTimer()
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			if _, err := c.CreateRecord(context.Background(), &pb.CreateRecordRequest{Record: benchRecord(seq.Add(1))}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetRecord: concurrent reads of one record through the API; every
// read is audited (an appended, batched audit event).
func BenchmarkGetRecord(b *testing.B) {
	c := pb.NewRecordServiceClient(startTestNode(b))
	resp, err := c.CreateRecord(context.Background(), &pb.CreateRecordRequest{Record: benchRecord(0)})
	if err != nil {
		b.Fatal(err)
	}
	id := resp.Record.Id
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			if _, err := c.GetRecord(context.Background(), &pb.GetRecordRequest{Id: id}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
