package logstore

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// TestRotationLeftUndone: the process died after an append sealed the tail
// segment and before raft-wal recorded the rotation (or the disk was full
// for it). The log opens, holds every entry, and appends again.
func TestRotationLeftUndone(t *testing.T) {
	dir := t.TempDir()
	o := Options{SegmentSize: 16 << 10}
	sealThenForget(t, dir, o, entries(1, 3, 2, 8<<10)) // past the size: sealed, rotated

	s, err := Open(dir, o)
	if err != nil {
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

// TestTornIndexBlock: the disk filled up in the batch that sealed the tail
// segment (its entries and index frame written, the batch's commit frame
// not), and the rotation was not recorded. raft-wal's recovery goes back
// to the last whole commit yet reports the torn index frame as a seal; the
// log opens at that commit (the torn batch was never acknowledged), reads
// every entry of it, and appends again.
func TestTornIndexBlock(t *testing.T) {
	dir := t.TempDir()
	o := Options{SegmentSize: 16 << 10}
	sealed := sealThenForget(t, dir, o, entries(1, 1, 2, 8), entries(2, 4, 2, 8<<10))
	// The batch's last write tore inside the index block (inside its
	// first entry: raft-wal reads the index lazily, and every read failed).
	if err := os.Truncate(filepath.Join(dir, "wal", segment.FileName(sealed)), int64(sealed.IndexStart)+2); err != nil {
		t.Fatal(err)
	}

	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1, 1, 2, 2)
	if err := s.StoreLogs(entries(2, 3, 3, 8)); err != nil {
		t.Fatalf("append after the torn index block: %v", err)
	}
	s.Close()
	if s, err = Open(dir, o); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkLog(t, s, 1, 3, 3, 2)
}

// sealThenForget stores batches into a log of 16 KiB segments until its
// first segment is sealed and rotated, then undoes the record of the
// rotation (and removes the new tail), as a crash or a full disk before
// raft-wal committed it leaves the files. It returns the sealed segment as
// the rotation recorded it.
func sealThenForget(t *testing.T, dir string, o Options, batches ...[]*raft.Log) types.SegmentInfo {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := s.StoreLogs(b); err != nil {
			t.Fatal(err)
		}
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
	meta, err := openMeta(filepath.Join(dir, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	st, _ := meta.Load("")
	next, sealed := st.Segments[1], st.Segments[0]
	unsealed := sealed
	unsealed.SealTime, unsealed.MaxIndex, unsealed.IndexStart = time.Time{}, 0, 0
	if err := meta.CommitState(types.PersistentState{NextSegmentID: next.ID, Segments: []types.SegmentInfo{unsealed}}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "wal", segment.FileName(next))); err != nil {
		t.Fatal(err)
	}
	return sealed
}
