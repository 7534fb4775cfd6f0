package replication

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

type bufSink struct {
	bytes.Buffer
	cancelled bool
}

func (b *bufSink) ID() string    { return "test" }
func (b *bufSink) Cancel() error { b.cancelled = true; return nil }
func (b *bufSink) Close() error  { return nil }

var _ raft.SnapshotSink = (*bufSink)(nil)

// TestRestoreWithASnapshotPending: raft can hold an FSM snapshot that its
// snapshot goroutine has not persisted yet (it waits for the main loop, which
// waits for Restore). Restore must not wait for it; persisting it afterwards
// fails cleanly.
func TestRestoreWithASnapshotPending(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFSM(filepath.Join(dir, "fsm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var copyOf bufSink
	if err := src.Persist(&copyOf); err != nil {
		t.Fatal(err)
	}
	pending, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Restore(io.NopCloser(bytes.NewReader(copyOf.Bytes()))) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("restore waits for a snapshot nobody persists")
	}
	var late bufSink
	if err := pending.Persist(&late); err == nil || !late.cancelled {
		t.Fatalf("persisting an abandoned snapshot: err %v, cancelled %v; want an error and a cancelled sink", err, late.cancelled)
	}
	pending.Release() // harmless after abandonment
}
