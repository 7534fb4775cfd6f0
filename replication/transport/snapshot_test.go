package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestSnapshotSizeChecked: a leader's snapshot is offered to AcceptSnapshot
// with its declared size before any of it is read; one refused (or of a
// negative size) never reaches raft and the leader is told why, one taken
// reaches raft whole.
func TestSnapshotSizeChecked(t *testing.T) {
	const limit = 1000
	var asked []int64
	follower, leader, addr := transportPair(t, func(size int64) error {
		asked = append(asked, size)
		if size > limit {
			return errors.New("/secret/raft has 5 bytes free")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// raft on the follower: takes every snapshot that reaches it.
	got := make(chan []byte, 4)
	go func() {
		for {
			select {
			case rpc := <-follower.Consumer():
				b, err := io.ReadAll(rpc.Reader)
				got <- b
				rpc.Respond(&raft.InstallSnapshotResponse{Term: 2, Success: err == nil}, err)
			case <-ctx.Done():
				return
			}
		}
	}()
	install := func(declared int64, data []byte) error {
		req := &raft.InstallSnapshotRequest{RPCHeader: raft.RPCHeader{ID: []byte("L"), Addr: []byte("leader")},
			SnapshotVersion: 1, Term: 2, Leader: []byte("leader"), LastLogIndex: 10, LastLogTerm: 2, Size: declared}
		return leader.InstallSnapshot("F", addr, req, &raft.InstallSnapshotResponse{}, bytes.NewReader(data))
	}
	for _, tc := range []struct {
		name     string
		declared int64
		data     int
		refused  string // in the leader's error; "" if taken
	}{
		{"huge claim", 1 << 50, 100, "snapshot of 1125899906842624 bytes refused: no room for it on this member"},
		{"over the limit", limit + 1, limit + 1, "refused: no room for it on this member"},
		{"negative size", -1, 10, "snapshot size -1"},
		{"fits", limit, limit, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := install(tc.declared, bytes.Repeat([]byte{7}, tc.data))
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("leader told %v, want %q", err, tc.refused)
				}
				if strings.Contains(err.Error(), "/secret/raft") {
					t.Fatalf("leader told the follower's own reason: %v", err)
				}
				select {
				case b := <-got:
					t.Fatalf("a refused snapshot reached raft (%d bytes)", len(b))
				default:
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b := <-got; len(b) != tc.data {
				t.Fatalf("raft read %d bytes, want %d", len(b), tc.data)
			}
		})
	}
	if want := []int64{1 << 50, limit + 1, limit}; !slices.Equal(asked, want) {
		t.Fatalf("AcceptSnapshot asked %v, want %v (never for a negative size)", asked, want)
	}
}
