package replication

import (
	"math"
	"strings"
	"testing"
)

// TestSnapshotRoom: a snapshot is taken only when the raft directory holds
// it twice over with the reserve to spare; a size no disk holds, or one
// that overflows, is refused naming the directory.
func TestSnapshotRoom(t *testing.T) {
	dir := t.TempDir()
	room := SnapshotRoom(dir)
	for _, tc := range []struct {
		size int64
		ok   bool
	}{
		{0, true},
		{1 << 20, true},
		{1 << 50, false},
		{math.MaxInt64, false},
		{-1, false},
	} {
		err := room(tc.size)
		if (err == nil) != tc.ok {
			t.Fatalf("size %d: %v, want taken %v", tc.size, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), dir) {
			t.Fatalf("size %d: %v does not name %s", tc.size, err, dir)
		}
	}
	if err := SnapshotRoom(dir + "/absent")(1); err == nil {
		t.Fatal("a directory that is not there took a snapshot")
	}
}
