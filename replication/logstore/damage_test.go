package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// TestDamagedEntryRefused: an entry whose bytes changed on disk is found at
// open, and by a read, naming the segment file and the entry; it is never
// returned.
func TestDamagedEntryRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 9; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: fmt.Appendf(nil, "payload of entry %d", i)})
	}
	// Three appends: raft-wal takes damage in the last one for a write torn
	// by a crash, and drops it, as it must after a real one.
	for _, b := range [][]*raft.Log{logs[:4], logs[4:6], logs[6:]} {
		if err := s.StoreLogs(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("segments %v, want one", segs)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, []byte("payload of entry 5"))
	if at < 0 {
		t.Fatal("entry 5 not found in the segment file")
	}
	b[at+3] ^= 0x20 // "payload" → "paYload"
	if err := os.WriteFile(segs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}

	_, err = Open(dir, Options{})
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), segs[0]) || !strings.Contains(err.Error(), "entry 5 ") {
		t.Fatalf("open of a damaged log: %v; want ErrDamaged naming %s and entry 5", err, segs[0])
	}

	// A read finds it too (a store opened before the damage).
	s = &Store{dir: filepath.Join(dir, "wal"), segSize: SegmentSize, closing: make(chan struct{}), marks: make(chan struct{})}
	if err := s.open(); err != nil {
		t.Fatal(err)
	}
	defer s.closeFiles()
	var l raft.Log
	if err := s.GetLog(4, &l); err != nil || string(l.Data) != "payload of entry 4" {
		t.Fatalf("entry 4: %q %v", l.Data, err)
	}
	if err := s.GetLog(5, &l); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), segs[0]) {
		t.Fatalf("read of the damaged entry: %v (data %q)", err, l.Data)
	}
}
