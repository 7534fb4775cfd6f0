package replication

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/checksum"
)

// damage flips one byte of the first value of a bucket behind the FSM's
// back, leaving its checksum as it was: a careless disk.
func damage(t *testing.T, f *FSM, bucket []byte) []byte {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var key []byte
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		k, v := b.Cursor().First()
		if k == nil {
			t.Fatalf("nothing in %s to damage", bucket)
		}
		key = bytes.Clone(k)
		v = bytes.Clone(v)
		v[0] ^= 0x10
		return b.Put(k, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	f.registryChanged() // drop the cached registry: read the file
	return key
}

// TestDamagedValue: a value damaged on disk is never read as if intact. A
// read fails naming the file, bucket and key; the next apply sets the file
// aside, rebuilds the state from snapshot and log and applies on, to the
// same state as an undamaged FSM; without anything to rebuild from the FSM
// halts, saying why; and a damaged file is set aside at open.
func TestDamagedValue(t *testing.T) {
	l := newProtoLog(t)
	l.add(barrierCmd())
	open := func(withLog bool) (*FSM, string) {
		f := newTestFSM(t, nil)
		if withLog {
			f.rebuild = &rebuildSource{snaps: raft.NewInmemSnapshotStore(), logs: l}
		}
		return f, f.path
	}
	intact, _ := open(false)
	applyAll(intact, l.logs)

	t.Run("read refused, apply rebuilds", func(t *testing.T) {
		f, path := open(true)
		applyAll(f, l.logs)
		key := damage(t, f, bucketMembers)
		_, err := f.Members()
		want := (&checksum.DamageError{File: path, Bucket: string(bucketMembers), Key: key}).Error()
		if !errors.Is(err, checksum.ErrDamaged) || err.Error() != want {
			t.Fatalf("members of a damaged state: %v, want %q", err, want)
		}
		if _, _, err := f.StateHash(); !errors.Is(err, checksum.ErrDamaged) {
			t.Fatalf("state hash of a damaged state: %v", err)
		}
		next := l.add(barrierCmd())
		if res := applyAll(f, l.logs[next-1:]); res[0].Err != nil {
			t.Fatalf("apply after damage: %v", res[0].Err)
		}
		applyAll(intact, l.logs[next-1:])
		ia, ha, err := intact.StateHash()
		if err != nil {
			t.Fatal(err)
		}
		fa, hf, err := f.StateHash()
		if err != nil || fa != ia || !bytes.Equal(hf, ha) {
			t.Fatalf("rebuilt state at %d %x (%v), intact at %d %x", fa, hf, err, ia, ha)
		}
		if _, err := os.Stat(path + ".damaged"); err != nil {
			t.Fatalf("the damaged file was not kept aside: %v", err)
		}
	})

	t.Run("nothing to rebuild from: halted", func(t *testing.T) {
		f, path := open(false)
		applyAll(f, l.logs)
		damage(t, f, bucketMembers)
		if _, err := f.Members(); err == nil {
			t.Fatal("damaged members read")
		}
		next := l.add(barrierCmd())
		res := applyAll(f, l.logs[next-1:])
		h := f.Protocol().Halted
		if res[0].Err == nil || h == nil || !strings.Contains(h.Reason, path) || !strings.Contains(h.Reason, "bucket members") {
			t.Fatalf("apply on a damaged state without a log: %v, halt %v", res[0].Err, h)
		}
		if f.Applied() != next-1 {
			t.Fatalf("applied %d past the damage", f.Applied())
		}
	})

	t.Run("set aside at open", func(t *testing.T) {
		f, path := open(false)
		applyAll(f, l.logs)
		damage(t, f, bucketMembers)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		g := openTestFSM(t, path, nil)
		defer g.Close()
		if why := g.Rebuilt(); !strings.Contains(why, path) || !strings.Contains(why, "checksum mismatch") || g.Applied() != 0 {
			t.Fatalf("reopened damaged file: rebuilt %q, applied %d", why, g.Applied())
		}
	})
}

// slowLog is a log a rebuild reads, held at the first read until released.
type slowLog struct {
	*protoLog
	reading chan struct{} // closed at the first read
	release chan struct{}
	once    sync.Once
}

func (s *slowLog) GetLog(i uint64, out *raft.Log) error {
	s.once.Do(func() { close(s.reading) })
	<-s.release
	return s.protoLog.GetLog(i, out)
}

// TestRebuildingIsReported: while a damaged state is rebuilt, Rebuilding
// says so (the node refuses shared reads and /readyz says rebuilding), and
// a read of the state made meanwhile sees the rebuilt state.
func TestRebuildingIsReported(t *testing.T) {
	l := newProtoLog(t)
	l.add(barrierCmd())
	f := newTestFSM(t, nil)
	applyAll(f, l.logs)
	slow := &slowLog{protoLog: l, reading: make(chan struct{}), release: make(chan struct{})}
	f.rebuild = &rebuildSource{snaps: raft.NewInmemSnapshotStore(), logs: slow}
	damage(t, f, bucketMembers)
	if _, err := f.Members(); err == nil {
		t.Fatal("damaged members read")
	}
	if f.Rebuilding() {
		t.Fatal("rebuilding before any apply")
	}
	next := l.add(barrierCmd())
	applied := make(chan ApplyResult, 1)
	go func() { applied <- f.Apply(l.logs[next-1]).(ApplyResult) }()
	<-slow.reading // the rebuild reads the log
	if !f.Rebuilding() {
		t.Fatal("not reported as rebuilding while it reads the log")
	}
	// A read now waits for the rebuild (the FSM's lock): it must see the
	// rebuilt state whole, never an error from a file closed or partial.
	read := make(chan error, 1)
	go func() { _, err := f.Members(); read <- err }()
	close(slow.release)
	if res := <-applied; res.Err != nil {
		t.Fatalf("apply after the rebuild: %v", res.Err)
	}
	if err := <-read; err != nil {
		t.Fatalf("read after the rebuild: %v", err)
	}
	if f.Rebuilding() {
		t.Fatal("still rebuilding after it")
	}
}
