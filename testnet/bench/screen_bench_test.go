package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/watchfed/watchfed/node/importer"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// BenchmarkScreen screens variant and unrelated names through the gRPC API
// of a node holding the OFAC SDN 2024 and UN lists (imported through
// ImportService), from 1, 8 and 32 concurrent clients; skipped without the
// real list files.
//
//	go test -run '^$' -bench Screen -benchtime 5000x ./testnet/bench
func BenchmarkScreen(b *testing.B) {
	data := ScreenDefaults().Data
	if _, err := os.Stat(filepath.Join(data, "ofac-sdn-2024")); err != nil {
		b.Skipf("real list files not present: %v", err)
	}
	sn, err := startScreenNode(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer sn.stop()
	results := realLists(b, data)
	if results == nil {
		b.Skip("real list files not present")
	}
	for _, res := range results {
		if _, err := importer.Send(context.Background(), pb.NewImportServiceClient(sn.conn), res, pb.Marking_MARKING_CLEAR, false, nil); err != nil {
			b.Fatal(err)
		}
	}
	items := itemsOf(results)
	qs, err := newQuerySet(items, ScreenConfig{Variants: 1000, PerKind: 1}, TuneSplit(""))
	if err != nil {
		b.Fatal(err)
	}
	queries := append([]string(nil), qs.unrelated...)
	for _, v := range qs.variants {
		queries = append(queries, v.Query)
	}
	c := pb.NewScreeningServiceClient(sn.conn)
	for _, clients := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			next := make([]int, clients)
			RunN(b, b.N, clients, func(ctx context.Context, cl int) error {
				q := queries[(next[cl]*clients+cl)%len(queries)]
				next[cl]++
				_, err := c.Screen(ctx, &pb.ScreenRequest{Name: q})
				return err
			})
		})
	}
}
