package logstore

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/fileversion"
)

// testdata/raft-v1.db was written by the bbolt log store of the release
// before raft-wal (commit 979417e): entries 1-40 stored, 1-2 compacted,
// entry 1 a configuration, entry 7 with extensions, term 4 and a vote for
// DE-BAFA, applied mark 30.

// legacyDir is a raft directory holding a copy of testdata/raft-v1.db.
func legacyDir(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/raft-v1.db")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, legacyFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkMigrated asserts that s holds what testdata/raft-v1.db held.
func checkMigrated(t *testing.T, s *Store) {
	t.Helper()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 3 || last != 40 {
		t.Fatalf("log %d-%d, want 3-40", first, last)
	}
	for i := first; i <= last; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		want := raft.Log{Index: i, Term: 2 + i/20, Type: raft.LogCommand, Data: []byte("entry " + itoa(i)), AppendedAt: time.Unix(1700000000, int64(i))}
		if i == 7 {
			want.Extensions = []byte("ext")
		}
		if l.Index != want.Index || l.Term != want.Term || l.Type != want.Type || !bytes.Equal(l.Data, want.Data) ||
			!bytes.Equal(l.Extensions, want.Extensions) || !l.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("entry %d: %+v, want %+v", i, l, want)
		}
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 4 {
		t.Fatalf("CurrentTerm %d %v", v, err)
	}
	if v, err := s.GetUint64([]byte("LastVoteTerm")); err != nil || v != 4 {
		t.Fatalf("LastVoteTerm %d %v", v, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "DE-BAFA" {
		t.Fatalf("LastVoteCand %q %v", v, err)
	}
	if a, err := s.Applied(); err != nil || a != 30 {
		t.Fatalf("applied mark %d %v, want 30", a, err)
	}
}

func itoa(i uint64) string { return string(fmtUint(i)) }

func fmtUint(i uint64) []byte {
	if i < 10 {
		return []byte{byte('0' + i)}
	}
	return append(fmtUint(i/10), byte('0'+i%10))
}

// TestMigrateLegacy: a raft directory left by the bbolt log store is moved
// into wal/ at open with nothing lost, says so in the log, keeps the old
// file aside and leaves a raft.db that older binaries refuse; a second open
// migrates nothing.
func TestMigrateLegacy(t *testing.T) {
	dir := legacyDir(t)
	var logged bytes.Buffer
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	checkMigrated(t, s)
	if !strings.Contains(logged.String(), "migrated the raft log") || !strings.Contains(logged.String(), "entries=38") {
		t.Fatalf("no clear log line: %q", logged.String())
	}
	if _, err := os.Stat(filepath.Join(dir, asideFile)); err != nil {
		t.Fatalf("old file not kept aside: %v", err)
	}
	// The marker: version 2, which the release before refuses.
	old := fileversion.Format{Name: "raft log", Current: 1, Reads: []int{1}}
	db, err := bolt.Open(filepath.Join(dir, legacyFile), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		_, err := old.Check("raft.db", tx.Bucket(bucketStable).Get(keyFormat), false)
		return err
	})
	db.Close()
	if err == nil || !strings.Contains(err.Error(), "format version 2; this binary reads version 1") {
		t.Fatalf("the release before would read the marker: %v", err)
	}
	if err := s.StoreLog(&raft.Log{Index: 41, Term: 4, Type: raft.LogCommand}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	logged.Reset()
	s, err = Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if last, _ := s.LastIndex(); last != 41 || logged.Len() > 0 {
		t.Fatalf("second open: last %d, logged %q", last, logged.String())
	}
}

// TestMigrateInterrupted: a copy cut short (wal/ without the copied key) is
// redone from raft.db; a copy done but not yet moved aside is only moved.
func TestMigrateInterrupted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		copied bool
	}{{"copy cut short", false}, {"copied, not moved", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := legacyDir(t)
			s := &Store{dir: filepath.Join(dir, "wal"), segSize: SegmentSize}
			if err := s.open(); err != nil {
				t.Fatal(err)
			}
			// Part of a copy: entries 3-5.
			var logs []*raft.Log
			for i := uint64(3); i <= 5; i++ {
				logs = append(logs, sealed(&raft.Log{Index: i, Term: 2, Data: []byte("entry " + itoa(i)), AppendedAt: time.Unix(1700000000, int64(i))}))
			}
			if err := s.wal.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
			if tc.copied {
				s.closeFiles()
				db, err := bolt.Open(filepath.Join(dir, legacyFile), 0o600, &bolt.Options{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				s = &Store{dir: filepath.Join(dir, "wal"), segSize: SegmentSize}
				os.RemoveAll(s.dir)
				if _, err := s.copyLegacy(db, "raft.db"); err != nil {
					t.Fatal(err)
				}
				db.Close()
			} else {
				s.closeFiles()
			}
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			checkMigrated(t, s)
		})
	}
}
