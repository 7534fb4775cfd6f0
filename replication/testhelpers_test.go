package replication

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
)

// The FSM set-ups the package's tests share.

// openTestFSM opens the FSM at path as a binary supporting versions would
// (none named: every protocol this binary supports, as OpenFSM), verifying
// publications with verify (nil: none). The test closes it.
func openTestFSM(t *testing.T, path string, verify VerifyFunc, versions ...uint32) *FSM {
	t.Helper()
	if len(versions) == 0 {
		versions = SupportedProtocols()
	}
	f, err := openFSM(path, verify, versions)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// newTestFSM opens a new FSM, fsm.db in a directory of its own, as
// openTestFSM does, and closes it when the test ends.
func newTestFSM(t *testing.T, verify VerifyFunc, versions ...uint32) *FSM {
	t.Helper()
	f := openTestFSM(t, filepath.Join(t.TempDir(), "fsm.db"), verify, versions...)
	t.Cleanup(func() { f.Close() })
	return f
}

// barrierData is a barrier command as raft's log holds it.
func barrierData(t *testing.T) []byte {
	t.Helper()
	data, err := proto.Marshal(barrierCmd())
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// bufSink is a raft snapshot sink in memory.
type bufSink struct {
	bytes.Buffer
	cancelled bool
}

func (b *bufSink) ID() string    { return "test" }
func (b *bufSink) Cancel() error { b.cancelled = true; return nil }
func (b *bufSink) Close() error  { return nil }

var _ raft.SnapshotSink = (*bufSink)(nil)

// snapshotImage is the raft snapshot f would send a partner: a copy of its file.
func snapshotImage(t *testing.T, f *FSM) []byte {
	t.Helper()
	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := s.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}
