package replication

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// TestRestoreWithASnapshotPending: raft can hold an FSM snapshot that its
// snapshot goroutine has not persisted yet (it waits for the main loop, which
// waits for Restore). Restore must not wait for it; persisting it afterwards
// fails cleanly.
func TestRestoreWithASnapshotPending(t *testing.T) {
	f := newTestFSM(t, nil)
	image := snapshotImage(t, f)
	pending, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Restore(io.NopCloser(bytes.NewReader(image))) }()
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
