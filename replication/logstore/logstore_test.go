package logstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"
)

func TestLogStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if first, _ := s.FirstIndex(); first != 0 {
		t.Fatalf("empty store first index %d", first)
	}
	if _, err := Open(path); err == nil {
		t.Fatal("second open of the same file succeeded")
	}
	at := time.Unix(1700000000, 123)
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 2, Type: raft.LogCommand, Data: []byte{byte(i)}, Extensions: []byte("x"), AppendedAt: at})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("term"), 7); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path) // everything survives a reopen
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 4 || last != 10 {
		t.Fatalf("first %d last %d, want 4 and 10", first, last)
	}
	var l raft.Log
	if err := s.GetLog(7, &l); err != nil || l.Index != 7 || l.Term != 2 || l.Data[0] != 7 || string(l.Extensions) != "x" || !l.AppendedAt.Equal(at) {
		t.Fatalf("GetLog(7) = %+v, %v", l, err)
	}
	if err := s.GetLog(2, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("deleted log: %v", err)
	}
	if v, err := s.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get: %q %v", v, err)
	}
	if v, err := s.GetUint64([]byte("term")); err != nil || v != 7 {
		t.Fatalf("GetUint64: %d %v", v, err)
	}
	if _, err := s.Get([]byte("missing")); err == nil || err.Error() != "not found" {
		t.Fatalf("missing key: %v (raft expects \"not found\")", err)
	}
}

func BenchmarkStoreLogs64(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "raft.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := make([]byte, 512)
	idx := uint64(0)
	for b.Loop() {
		batch := make([]*raft.Log, 64)
		for i := range batch {
			idx++
			batch[i] = &raft.Log{Index: idx, Term: 1, Data: data}
		}
		if err := s.StoreLogs(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreLog times appending one 512-byte entry, as a member does
// for each batch at light load: one bbolt commit, two fdatasyncs (data pages,
// then the meta page). "parallel=3" appends to three files at once, as the
// three members of a federation on one machine's disk do.
//
//	go test -run '^$' -bench StoreLog$ -benchtime 3000x ./replication/logstore
func BenchmarkStoreLog(b *testing.B) {
	for _, files := range []int{1, 3} {
		b.Run(fmt.Sprintf("parallel=%d", files), func(b *testing.B) {
			stores := make([]*Store, files)
			for i := range stores {
				s, err := Open(filepath.Join(b.TempDir(), fmt.Sprintf("raft%d.db", i)))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				stores[i] = s
			}
			data := make([]byte, 512)
			lat := make([][]time.Duration, files)
			var wg sync.WaitGroup
			b.ResetTimer()
			for i, s := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for idx := uint64(1); idx <= uint64(b.N); idx++ {
						t := time.Now()
						if err := s.StoreLogs([]*raft.Log{{Index: idx, Term: 1, Data: data}}); err != nil {
							b.Error(err)
							return
						}
						lat[i] = append(lat[i], time.Since(t))
					}
				}()
			}
			wg.Wait()
			all := slices.Concat(lat...)
			slices.Sort(all)
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)/2])/1e6, "p50-ms")
				b.ReportMetric(float64(all[len(all)*99/100])/1e6, "p99-ms")
			}
		})
	}
}

// TestAppliedMark: the applied mark noted by the state machine is written
// with the next batch of entries (never on its own), never goes back, and is
// written at Close.
func TestAppliedMark(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.NoteApplied(4)
	if got, _ := s.Applied(); got != 0 {
		t.Fatalf("mark %d written before any batch", got)
	}
	if err := s.StoreLogs([]*raft.Log{{Index: 5, Term: 1, Type: raft.LogCommand}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Applied(); got != 4 {
		t.Fatalf("mark %d after a batch, want 4", got)
	}
	s.NoteApplied(3) // late and lower: ignored
	s.NoteApplied(5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, _ := s.Applied(); got != 5 {
		t.Fatalf("mark %d after Close, want 5", got)
	}
}

// entries are logs from..to of one term, with data of size bytes each.
func entries(from, to, term uint64, size int) []*raft.Log {
	var out []*raft.Log
	for i := from; i <= to; i++ {
		out = append(out, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: make([]byte, size)})
	}
	return out
}

// checkLog asserts the last index, and that entries from first are in term
// 2 up to termFrom and in term from there.
func checkLog(t *testing.T, s *Store, first, last, term, termFrom uint64) {
	t.Helper()
	if got, _ := s.LastIndex(); got != last {
		t.Fatalf("last index %d, want %d", got, last)
	}
	for i := first; i <= last; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d of %d: %v", i, last, err)
		}
		want := uint64(2) // the term entries were first stored in
		if i >= termFrom {
			want = term
		}
		if l.Term != want {
			t.Fatalf("entry %d in term %d, want %d", i, l.Term, want)
		}
	}
	var l raft.Log
	if err := s.GetLog(last+1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("entry %d past the last: %v", last+1, err)
	}
}

// TestConflictingSuffixCut: raft cuts a follower's conflicting suffix and
// then stores the leader's entries; the cut shows at once, is made with the
// store, and leaves no stale entry past a shorter batch. Compaction from
// the head is made at once.
func TestConflictingSuffixCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(entries(1, 10, 2, 8)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(8, 10); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1, 7, 2, 8)
	if err := s.StoreLogs(entries(8, 8, 3, 8)); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1, 8, 3, 8)
	if err := s.DeleteRange(1, 4); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.FirstIndex(); first != 5 {
		t.Fatalf("first index %d after compaction, want 5", first)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkLog(t, s, 5, 8, 3, 8)
}

// TestCutUndoneWhenTheStoreFails: on a full disk the store of the leader's
// entries fails; the log is then as it was before the cut, so raft (which
// keeps believing its old last index) finds the entries it asks for and cuts
// again, and succeeds once the disk has room. Before, the cut was committed
// alone and the follower refused every append until restarted.
func TestCutUndoneWhenTheStoreFails(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=4m,mode=0700"); err != nil {
		t.Skipf("a full disk needs a tmpfs, which needs root (CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	s, err := Open(filepath.Join(dir, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.StoreLogs(entries(1, 10, 2, 8)); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	if err := fill(filler); err != nil {
		t.Fatal(err)
	}

	if err := s.DeleteRange(8, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(entries(8, 9, 3, 1<<20)); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("store on a full disk: %v, want ENOSPC", err)
	}
	checkLog(t, s, 1, 10, 2, 11)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(8, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(entries(8, 9, 3, 1<<20)); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1, 9, 3, 8)
}

// fill writes to path until the disk is full.
func fill(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return nil
			}
			return err
		}
	}
}
