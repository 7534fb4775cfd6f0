package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/watchfed/watchfed/testnet/bench"
)

// BenchmarkEtcdPut puts b.N 512-byte values into a 3-member etcd cluster
// (mutual TLS 1.3, fsync on) from 1, 16 and 64 concurrent clients: the
// counterpart of BenchmarkCreateRecord in testnet/bench.
//
//	cd testnet/etcdbench && go test -run '^$' -bench . -benchtime 20000x
func BenchmarkEtcdPut(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	c, err := StartEtcd(ctx, b.TempDir(), 3, 0)
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, n := range bench.Defaults().Publishers {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			clients, err := c.Clients((n+7)/8, bench.AtLeader)
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				for _, cl := range clients {
					cl.Close()
				}
			}()
			bench.RunN(b, b.N, n, PutOp(clients, bench.Defaults().ValueSize))
		})
	}
}
