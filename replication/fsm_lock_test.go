package replication

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"
)

// TestReadersDuringRestore: Restore closes the FSM's file and opens the
// snapshot in its place while status and catch-up keep reading. Every reader
// must hold the FSM's lock: none may see a closed file or fail, and under
// -race none may race with the swap.
func TestReadersDuringRestore(t *testing.T) {
	f := newTestFSM(t, nil)
	mustApply(t, f, []*raft.Log{{Index: 3, Type: raft.LogCommand, Data: barrierData(t)}})
	image := snapshotImage(t, f)

	readers := map[string]func() error{
		"StateHash": func() error {
			idx, _, err := f.StateHash()
			if err == nil && idx != 3 {
				t.Errorf("StateHash at index %d, want 3", idx)
			}
			return err
		},
		"LastEntry": func() error { _, err := f.LastEntry(3); return err },
		"Entries":   func() error { _, err := f.Entries(0, 10); return err },
		"Members":   func() error { _, err := f.Members(); return err },
		"Granted":   func() error { f.Granted("A", "B", 1); return nil },
		"Backup":    func() error { _, err := f.Backup(io.Discard); return err },
		"Applied":   func() error { f.Applied(); return nil },
	}
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		reads atomic.Int64
	)
	for name, read := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if err := read(); err != nil {
					t.Errorf("%s during Restore: %v", name, err)
					return
				}
				reads.Add(1)
			}
		}()
	}
	for range 30 {
		if err := f.Restore(io.NopCloser(bytes.NewReader(image))); err != nil {
			t.Fatalf("restore: %v", err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if reads.Load() == 0 {
		t.Fatal("no read ran during the restores")
	}
}
