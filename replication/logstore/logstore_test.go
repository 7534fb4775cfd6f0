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

	"github.com/watchfed/watchfed/replication/diskfull"
)

func TestLogStore(t *testing.T) {
	path := t.TempDir()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if first, _ := s.FirstIndex(); first != 0 {
		t.Fatalf("empty store first index %d", first)
	}
	if _, err := Open(path, Options{}); err == nil {
		t.Fatal("second open of the same log succeeded")
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

	s, err = Open(path, Options{}) // everything survives a reopen
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
	s, err := Open(b.TempDir(), Options{})
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
// for each batch at light load: one write and one fdatasync of a segment
// file (the bbolt raft.db before it: one commit, two fdatasyncs). "parallel=3" appends to three files at once, as the
// three members of a federation on one machine's disk do.
//
//	go test -run '^$' -bench StoreLog$ -benchtime 3000x ./replication/logstore
func BenchmarkStoreLog(b *testing.B) {
	for _, files := range []int{1, 3} {
		b.Run(fmt.Sprintf("parallel=%d", files), func(b *testing.B) {
			stores := make([]*Store, files)
			for i := range stores {
				s, err := Open(filepath.Join(b.TempDir(), fmt.Sprint(i)), Options{})
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
// within markEvery and at Close, and never goes back.
func TestAppliedMark(t *testing.T) {
	path := t.TempDir()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.NoteApplied(4)
	deadline := time.Now().Add(20 * markEvery) // a loaded machine
	for got, _ := s.Applied(); got != 4; got, _ = s.Applied() {
		if time.Now().After(deadline) {
			t.Fatalf("mark %d, want 4 written within %v", got, markEvery)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.NoteApplied(3) // late and lower: ignored
	s.NoteApplied(5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
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
	path := t.TempDir()
	s, err := Open(path, Options{})
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
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkLog(t, s, 5, 8, 3, 8)
}

// TestCutUndoneWhenTheStoreFails: on a full disk the store of the leader's
// entries fails; the log is then as raft believes it, as it was before the
// cut, so raft finds the entries it asks for and cuts again, and succeeds
// once the disk has room. Before the cut was deferred, it was made alone and
// the follower refused every append until restarted. A plain append that
// fails for space leaves the store able to append once space returns
// (raft-wal's writer does not, on its own), and a restart while the disk is
// full finds the log raft was told was stored.
func TestCutUndoneWhenTheStoreFails(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=8m,mode=0700"); err != nil {
		t.Skipf("a full disk needs a tmpfs, which needs root (CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	o := Options{SegmentSize: 1 << 20}
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	if err := s.StoreLogs(entries(1, 10, 2, 8)); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		told []error
	)
	s.OnDiskFull(func(err error) { mu.Lock(); told = append(told, err); mu.Unlock() })
	toldNow := func() []error { mu.Lock(); defer mu.Unlock(); return slices.Clone(told) }
	filler := filepath.Join(dir, "filler")
	if err := fill(filler); err != nil {
		t.Fatal(err)
	}

	if err := s.DeleteRange(8, 10); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1, 7, 2, 8) // the pending cut shows
	err = s.StoreLogs(entries(8, 9, 3, 2<<20))
	if !errors.Is(err, diskfull.ErrDiskFull) || !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("store on a full disk: %v, want disk full (ENOSPC)", err)
	}
	checkLog(t, s, 1, 10, 2, 11)
	if told := toldNow(); s.DiskFull() == nil || len(told) != 1 || told[0] == nil {
		t.Fatalf("disk full not noted: %v, told %v", s.DiskFull(), told)
	}
	// A plain append fails too, and a stable write waits.
	if err := s.StoreLogs(entries(11, 12, 2, 2<<20)); !errors.Is(err, diskfull.ErrDiskFull) {
		t.Fatalf("append on a full disk: %v", err)
	}
	checkLog(t, s, 1, 10, 2, 11)
	setDone := make(chan error, 1)
	go func() { setDone <- s.SetUint64([]byte("CurrentTerm"), 3) }()
	select {
	case err := <-setDone:
		if err != nil {
			t.Fatalf("stable write on a full disk: %v (raft panics on it; it must wait)", err)
		}
		t.Log("the stable write found room") // bbolt had a free page for it
		setDone = nil
	case <-time.After(3 * setRetry):
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if setDone != nil {
		if err := <-setDone; err != nil {
			t.Fatalf("stable write once space returned: %v", err)
		}
	}
	if err := s.DeleteRange(8, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(entries(8, 9, 3, 64<<10)); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1, 9, 3, 8)
	if told := toldNow(); s.DiskFull() != nil || told[len(told)-1] != nil {
		t.Fatalf("disk full still noted: %v, told %v", s.DiskFull(), told)
	}
	if err := s.StoreLogs(entries(10, 11, 3, 8)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, o); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1, 11, 3, 8)
}

// TestGhostsWrittenBack: a cut made on disk whose append then failed keeps
// raft's view from memory; the next append that does not cut again writes
// the kept entries back first.
func TestGhostsWrittenBack(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=8m,mode=0700"); err != nil {
		t.Skipf("a full disk needs a tmpfs, which needs root (CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	o := Options{SegmentSize: 1 << 20} // the cut's new segment fits; the append does not
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	if err := s.StoreLogs(entries(1, 10, 2, 8)); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	if err := fillLeaving(filler, 1<<20+256<<10); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(8, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(entries(8, 8, 3, 2<<20)); !errors.Is(err, diskfull.ErrDiskFull) {
		t.Fatalf("append past the space left: %v", err)
	}
	if onDisk, _ := s.wal.LastIndex(); onDisk != 7 || len(s.ghosts) != 3 {
		t.Fatalf("files hold up to %d, %d entries kept in memory; want the cut made (7) and 3 kept", onDisk, len(s.ghosts))
	}
	checkLog(t, s, 1, 10, 2, 11)
	os.Remove(filler)
	if err := s.StoreLogs(entries(11, 12, 2, 8)); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1, 12, 2, 13)
	s.Close()
	if s, err = Open(dir, o); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1, 12, 2, 13)
}

// fillLeaving fills the disk under path, then frees leave bytes.
func fillLeaving(path string, leave int64) error {
	if err := fill(path); err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.Truncate(path, max(0, st.Size()-leave))
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
