package federation

import (
	"strings"
	"testing"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestBoundBytes: a publication takes records up to maxBatchBytes, and
// always at least one, however large.
func TestBoundBytes(t *testing.T) {
	rec := func(size int) *pb.Record {
		return &pb.Record{Id: "X", Subject: &pb.Subject{Name: strings.Repeat("n", size)}}
	}
	mib := func(n int) []*pb.Record {
		var out []*pb.Record
		for range n {
			out = append(out, rec(1<<20))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		recs []*pb.Record
		want int
	}{
		{"small ones all fit", []*pb.Record{rec(10), rec(10), rec(10)}, 3},
		{"cut at the limit", mib(6), 3},
		{"one oversized record alone", []*pb.Record{rec(6 << 20), rec(10)}, 1},
		{"none", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(boundBytes(tc.recs)); got != tc.want {
				t.Fatalf("kept %d records, want %d", got, tc.want)
			}
		})
	}
}
