package logstore

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// TestRotationLeftUndone: the process died after an append sealed the tail
// segment and before raft-wal recorded the rotation (or the disk was full
// for it). The log opens, holds every entry, and appends again.
func TestRotationLeftUndone(t *testing.T) {
	dir := t.TempDir()
	o := Options{SegmentSize: 16 << 10}
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(entries(1, 3, 2, 8<<10)); err != nil { // past the size: sealed, rotated
		t.Fatal(err)
	}
	// Wait for the rotation (asynchronous in raft-wal) to be recorded.
	deadline := time.Now().Add(30 * time.Second)
	for st, _ := s.meta.Load(""); len(st.Segments) < 2; st, _ = s.meta.Load("") {
		if time.Now().After(deadline) {
			t.Fatal("the full segment was not rotated")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Undo the record of the rotation, as a crash before it leaves the files.
	meta, err := openMeta(filepath.Join(dir, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := meta.Load("")
	next := st.Segments[1]
	sealedSeg := st.Segments[0]
	sealedSeg.SealTime, sealedSeg.MaxIndex, sealedSeg.IndexStart = time.Time{}, 0, 0
	if err := meta.CommitState(types.PersistentState{NextSegmentID: next.ID, Segments: []types.SegmentInfo{sealedSeg}}); err != nil {
		t.Fatal(err)
	}
	meta.Close()
	if err := os.Remove(filepath.Join(dir, "wal", segment.FileName(next))); err != nil {
		t.Fatal(err)
	}

	if s, err = Open(dir, o); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1, 3, 2, 4)
	if err := s.StoreLogs(entries(4, 5, 2, 8)); err != nil {
		t.Fatalf("append after the rotation left undone: %v", err)
	}
	s.Close()
	if s, err = Open(dir, o); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkLog(t, s, 1, 5, 2, 6)
}
