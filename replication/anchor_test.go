package replication

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
)

// anchorCmd is agency's anchor of its chain at seq, signed by signer.
func (l *protoLog) anchorCmd(agency, signer string, seq uint64) *peerpb.Command {
	h := sha256.Sum256(fmt.Appendf(nil, "%s chain head %d", agency, seq))
	a := &peerpb.AuditAnchor{Agency: agency, Sequence: seq, HeadHash: h[:], SignedAt: timestamppb.New(time.Unix(1_800_000_000, 0))}
	a.Signature = ed25519.Sign(l.keys[signer], AnchorMessage(a))
	return &peerpb.Command{Command: &peerpb.Command_AuditAnchor{AuditAnchor: a}}
}

// withAnchors is a log of two joined agencies with protocol 5 active.
func withAnchors(t *testing.T) *protoLog {
	l := newProtoLog(t)
	l.add(l.announcement("AA", "AA", 1, ProtocolAnchors))
	l.add(l.announcement("BB", "BB", 1, ProtocolAnchors))
	l.add(activation(ProtocolAnchors))
	return l
}

// TestAuditAnchorRules: an anchor is accepted only from the agency it
// names, signed by its registered key, over exactly the bytes stored, and
// only ahead of that agency's last accepted anchor; every refusal is the
// same on two FSMs and changes nothing.
func TestAuditAnchorRules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cmds   func(l *protoLog) []*peerpb.Command // the last one is judged
		reject string                              // "" accepted
		kept   int                                 // AA's anchors kept after
	}{
		{"signed by its agency", func(l *protoLog) []*peerpb.Command {
			return []*peerpb.Command{l.anchorCmd("AA", "AA", 7)}
		}, "", 1},
		{"signed by another member's key", func(l *protoLog) []*peerpb.Command {
			return []*peerpb.Command{l.anchorCmd("AA", "BB", 7)}
		}, "signature does not verify", 0},
		{"for an agency that is not a member", func(l *protoLog) []*peerpb.Command {
			l.keys["ZZ"] = l.keys["BB"]
			return []*peerpb.Command{l.anchorCmd("ZZ", "BB", 7)}
		}, `"ZZ" is not a joined member`, 0},
		{"signed bytes changed", func(l *protoLog) []*peerpb.Command {
			c := l.anchorCmd("AA", "AA", 7)
			c.GetAuditAnchor().Sequence = 9
			return []*peerpb.Command{c}
		}, "signature does not verify", 0},
		{"head hash changed", func(l *protoLog) []*peerpb.Command {
			c := l.anchorCmd("AA", "AA", 7)
			c.GetAuditAnchor().HeadHash[0] ^= 1
			return []*peerpb.Command{c}
		}, "signature does not verify", 0},
		{"sequence 0", func(l *protoLog) []*peerpb.Command {
			return []*peerpb.Command{l.anchorCmd("AA", "AA", 0)}
		}, "sequence 0", 0},
		{"short head hash", func(l *protoLog) []*peerpb.Command {
			c := l.anchorCmd("AA", "AA", 7)
			a := c.GetAuditAnchor()
			a.HeadHash = a.HeadHash[:16]
			a.Signature = ed25519.Sign(l.keys["AA"], AnchorMessage(a))
			return []*peerpb.Command{c}
		}, "head_hash of 16 bytes", 0},
		{"ahead of the last", func(l *protoLog) []*peerpb.Command {
			return []*peerpb.Command{l.anchorCmd("AA", "AA", 7), l.anchorCmd("AA", "AA", 8)}
		}, "", 2},
		{"replayed", func(l *protoLog) []*peerpb.Command {
			c := l.anchorCmd("AA", "AA", 7)
			return []*peerpb.Command{c, c}
		}, "at sequence 7 repeats it: the last accepted anchor is at sequence 7", 1},
		{"backwards", func(l *protoLog) []*peerpb.Command {
			return []*peerpb.Command{l.anchorCmd("AA", "AA", 7), l.anchorCmd("AA", "AA", 6)}
		}, "at sequence 6 moves backwards: the last accepted anchor is at sequence 7", 1},
		{"an older anchor replayed after a newer one", func(l *protoLog) []*peerpb.Command {
			old := l.anchorCmd("AA", "AA", 5)
			return []*peerpb.Command{old, l.anchorCmd("AA", "AA", 9), old}
		}, "at sequence 5 moves backwards: the last accepted anchor is at sequence 9", 2},
		{"another agency's sequence is its own", func(l *protoLog) []*peerpb.Command {
			return []*peerpb.Command{l.anchorCmd("AA", "AA", 9), l.anchorCmd("BB", "BB", 2)}
		}, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := withAnchors(t)
			cmds := tc.cmds(l)
			for _, c := range cmds {
				l.add(c)
			}
			dir := t.TempDir()
			var hashes [][]byte
			for _, name := range []string{"one.db", "two.db"} {
				f := openTestFSM(t, filepath.Join(dir, name), nil)
				res := applyAll(f, l.logs)
				for _, r := range res[:len(res)-1] {
					if r.Err != nil {
						t.Fatalf("entry %d: %v", r.Index, r.Err)
					}
				}
				last := res[len(res)-1]
				switch {
				case tc.reject == "" && last.Err != nil:
					t.Fatalf("refused: %v", last.Err)
				case tc.reject != "" && (!errors.Is(last.Err, ErrRejected) || !strings.Contains(last.Err.Error(), tc.reject)):
					t.Fatalf("got %v, want a rejection saying %q", last.Err, tc.reject)
				}
				as, err := f.Anchors("AA")
				if err != nil {
					t.Fatal(err)
				}
				if len(as) != tc.kept {
					t.Fatalf("%d anchors of AA kept, want %d: %+v", len(as), tc.kept, as)
				}
				_, sum, err := f.StateHash()
				if err != nil {
					t.Fatal(err)
				}
				hashes = append(hashes, sum)
				f.Close()
			}
			if !bytes.Equal(hashes[0], hashes[1]) {
				t.Fatal("two FSMs applying the same log hold different states")
			}
		})
	}
}

// TestAuditAnchorNeedsProtocol5: before protocol 5 is active, an anchor is
// refused by every FSM and leaves the state as it was.
func TestAuditAnchorNeedsProtocol5(t *testing.T) {
	l := newProtoLog(t)
	l.add(l.anchorCmd("AA", "AA", 3))
	f := newTestFSM(t, nil)
	res := applyAll(f, l.logs)
	if err := res[len(res)-1].Err; !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "needs protocol 5") {
		t.Fatalf("got %v", err)
	}
	if as, _ := f.Anchors(""); len(as) != 0 {
		t.Fatalf("anchors kept: %+v", as)
	}
}

// TestAuditAnchorsBounded: an FSM keeps an agency's last MaxAnchorsKept
// anchors, and the last one is the highest sequence.
func TestAuditAnchorsBounded(t *testing.T) {
	l := withAnchors(t)
	for seq := uint64(1); seq <= MaxAnchorsKept+5; seq++ {
		l.add(l.anchorCmd("AA", "AA", seq*10))
	}
	l.add(l.anchorCmd("BB", "BB", 1))
	f := newTestFSM(t, nil)
	for _, r := range applyAll(f, l.logs) {
		if r.Err != nil {
			t.Fatalf("entry %d: %v", r.Index, r.Err)
		}
	}
	as, err := f.Anchors("AA")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != MaxAnchorsKept || as[0].Sequence != 60 || as[len(as)-1].Sequence != (MaxAnchorsKept+5)*10 {
		t.Fatalf("kept %d anchors, from %d to %d", len(as), as[0].Sequence, as[len(as)-1].Sequence)
	}
	if all, _ := f.Anchors(""); len(all) != MaxAnchorsKept+1 {
		t.Fatalf("%d anchors in all", len(all))
	}
	f.Close()
	got, err := ReadAnchors(filepath.Join(filepath.Dir(f.path), "fsm.db"), l.keys["BB"].Public().(ed25519.PublicKey))
	if err != nil || len(got) != 1 || got[0].Sequence != 1 || got[0].Index != uint64(len(l.logs)) {
		t.Fatalf("offline read of BB's anchors: %+v, %v", got, err)
	}
}
