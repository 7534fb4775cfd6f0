package replication

import (
	"fmt"
	"testing"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
)

// TestBodyCacheKeepsTheLatest: the cache holds the bodies put last, within
// its count and its bytes, oldest out first.
func TestBodyCacheKeepsTheLatest(t *testing.T) {
	body := func(i uint64) *peerpb.PublicationBody { return &peerpb.PublicationBody{Origin: fmt.Sprint(i)} }
	for _, tc := range []struct {
		name  string
		n     uint64
		size  int
		first uint64 // the oldest index still held
	}{
		{"by count", bodyCacheSize + 2, 100, 3},
		{"by bytes", 10, bodyCacheBytes / 4, 7},
		{"too large to hold", 3, bodyCacheBytes + 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c bodyCache
			for i := uint64(1); i <= tc.n; i++ {
				c.put(i, body(i), tc.size)
			}
			for i := uint64(1); i <= tc.n; i++ {
				if held := i >= tc.first; (c.get(i) != nil) != held {
					t.Fatalf("index %d held %v, want %v", i, c.get(i) != nil, held)
				}
			}
		})
	}
	var c bodyCache
	c.put(5, body(5), 10)
	c.put(5, &peerpb.PublicationBody{Origin: "again"}, 10)
	if c.get(5).Origin != "5" {
		t.Fatal("a second put replaced the held body")
	}
}
