package replication

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// protoLog builds a raft log by hand for FSM tests: two joined agencies,
// AA and BB, and their signed announcements.
type protoLog struct {
	t    *testing.T
	keys map[string]ed25519.PrivateKey
	logs []*raft.Log
	seq  map[string]uint64
}

func newProtoLog(t *testing.T) *protoLog {
	l := &protoLog{t: t, keys: map[string]ed25519.PrivateKey{}, seq: map[string]uint64{}}
	for _, a := range []string{"AA", "BB"} {
		_, l.keys[a], _ = ed25519.GenerateKey(rand.Reader)
		m := &pb.Member{Agency: a, Address: a + ":1", CaCert: []byte("ca"), SigningKey: l.keys[a].Public().(ed25519.PublicKey), SealingKey: []byte("k"), Voter: true}
		l.add(memberCmd(&peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: m}}))
		l.add(memberCmd(&peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: m}}))
	}
	return l
}

// joinedIndex is the index of agency's join entry.
func (l *protoLog) joinedIndex(agency string) uint64 {
	if agency == "AA" {
		return 2
	}
	return 4
}

func (l *protoLog) add(cmd *peerpb.Command) uint64 {
	data, err := proto.Marshal(cmd)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.addRaw(data)
}

func (l *protoLog) addRaw(data []byte) uint64 {
	idx := uint64(len(l.logs) + 1)
	l.logs = append(l.logs, &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data})
	return idx
}

// announcement is agency's next announcement of versions, signed by signer.
func (l *protoLog) announcement(agency, signer string, versions ...uint32) *peerpb.Command {
	l.seq[agency]++
	a := &peerpb.ProtocolAnnouncement{Agency: agency, JoinedIndex: l.joinedIndex(agency), Sequence: l.seq[agency], Versions: versions}
	a.Signature = ed25519.Sign(l.keys[signer], AnnouncementMessage(a))
	return announce(a)
}

func announce(a *peerpb.ProtocolAnnouncement) *peerpb.Command {
	return &peerpb.Command{Command: &peerpb.Command_ProtocolAnnouncement{ProtocolAnnouncement: a}}
}

func activation(v uint32) *peerpb.Command {
	return &peerpb.Command{Command: &peerpb.Command_ProtocolActivation{ProtocolActivation: &peerpb.ProtocolActivation{Version: v}}}
}

func barrierCmd() *peerpb.Command {
	return &peerpb.Command{Command: &peerpb.Command_Barrier{Barrier: &peerpb.Barrier{}}}
}

// applyAll applies the log one entry at a time and returns each result.
func applyAll(f *FSM, logs []*raft.Log) []ApplyResult {
	out := make([]ApplyResult, len(logs))
	for i, l := range logs {
		out[i] = f.Apply(l).(ApplyResult)
	}
	return out
}

func TestProtocolAnnouncement(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cmd    func(l *protoLog) *peerpb.Command
		reject string // "" accepted
	}{
		{"signed by the agency", func(l *protoLog) *peerpb.Command { return l.announcement("AA", "AA", 1, 2) }, ""},
		{"forged by another member", func(l *protoLog) *peerpb.Command { return l.announcement("AA", "BB", 1, 2) }, "signature does not verify"},
		{"unsigned", func(l *protoLog) *peerpb.Command {
			return announce(&peerpb.ProtocolAnnouncement{Agency: "AA", JoinedIndex: 2, Sequence: 1, Versions: []uint32{1, 2}})
		}, "signature does not verify"},
		{"signed bytes changed", func(l *protoLog) *peerpb.Command {
			c := l.announcement("AA", "AA", 1)
			c.GetProtocolAnnouncement().Versions = []uint32{1, 2}
			return c
		}, "signature does not verify"},
		{"of an earlier membership", func(l *protoLog) *peerpb.Command {
			a := &peerpb.ProtocolAnnouncement{Agency: "AA", JoinedIndex: 1, Sequence: 1, Versions: []uint32{1}}
			a.Signature = ed25519.Sign(l.keys["AA"], AnnouncementMessage(a))
			return announce(a)
		}, "joined_index 1"},
		{"not a member", func(l *protoLog) *peerpb.Command { return l.announcement("CC", "AA", 1) }, "not a joined member"},
		{"no versions", func(l *protoLog) *peerpb.Command { return l.announcement("AA", "AA") }, "0 versions"},
		{"versions not ascending", func(l *protoLog) *peerpb.Command { return l.announcement("AA", "AA", 2, 1) }, "ascending"},
		{"replayed", func(l *protoLog) *peerpb.Command {
			first := l.announcement("AA", "AA", 1, 2)
			l.add(first)
			l.add(l.announcement("AA", "AA", 1))
			return first
		}, "sequence 1, not above 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newProtoLog(t)
			idx := l.add(tc.cmd(l))
			f := newTestFSM(t, nil, 1, 2)
			res := applyAll(f, l.logs)[idx-1]
			switch {
			case tc.reject == "" && res.Err != nil:
				t.Fatalf("rejected: %v", res.Err)
			case tc.reject != "" && (!errors.Is(res.Err, ErrRejected) || !strings.Contains(res.Err.Error(), tc.reject)):
				t.Fatalf("got %v, want rejected: ...%s...", res.Err, tc.reject)
			}
			if f.Applied() != idx {
				t.Fatalf("applied %d, want %d (a rejected command is applied as nothing)", f.Applied(), idx)
			}
		})
	}
}

func TestProtocolActivation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		announce map[string][]uint32 // last announcement per agency
		activate uint32
		reject   string
	}{
		{"every member announced it", map[string][]uint32{"AA": {1, 2}, "BB": {1, 2}}, 2, ""},
		{"one member did not announce", map[string][]uint32{"AA": {1, 2}}, 2, "not announced by BB"},
		{"one member announced without it", map[string][]uint32{"AA": {1, 2}, "BB": {1}}, 2, "not announced by BB"},
		{"the active version", map[string][]uint32{"AA": {1, 2}, "BB": {1, 2}}, 1, "protocol 1 is active"},
		{"no announcements", nil, 2, "not announced by AA, BB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newProtoLog(t)
			for _, a := range []string{"AA", "BB"} {
				if vs, ok := tc.announce[a]; ok {
					l.add(l.announcement(a, a, vs...))
				}
			}
			f := newTestFSM(t, nil, 1, 2)
			applyAll(f, l.logs)
			want, _ := f.ProtocolToActivate()
			idx := l.add(activation(tc.activate))
			res := applyAll(f, l.logs[idx-1:])[0]
			st := f.Protocol()
			if tc.reject != "" {
				if !errors.Is(res.Err, ErrRejected) || !strings.Contains(res.Err.Error(), tc.reject) {
					t.Fatalf("got %v, want rejected: ...%s...", res.Err, tc.reject)
				}
				if st.Active != 1 || st.Since != 0 {
					t.Fatalf("protocol %d since %d after a rejected activation", st.Active, st.Since)
				}
				return
			}
			if res.Err != nil || st.Active != tc.activate || st.Since != idx || want != tc.activate {
				t.Fatalf("activation: %v; protocol %d since %d (leader would activate %d), want %d since %d", res.Err, st.Active, st.Since, want, tc.activate, idx)
			}
			if v, ok := f.ProtocolToActivate(); ok {
				t.Fatalf("after activation the leader would activate %d again", v)
			}
		})
	}
}

// TestProtocolHaltAndResume: a binary that supports only protocol 1 stops
// at the activation of 2, applies nothing after it, refuses snapshots, stops
// there again after a restart, and applies on from there once "upgraded" (a
// binary supporting 2), reaching the same state as a node that never
// stopped.
func TestProtocolHaltAndResume(t *testing.T) {
	l := newProtoLog(t)
	l.add(l.announcement("AA", "AA", 1, 2))
	l.add(l.announcement("BB", "BB", 1, 2))
	act := l.add(activation(2))
	l.add(barrierCmd())
	last := l.add(barrierCmd())

	path := filepath.Join(t.TempDir(), "fsm.db")
	old := openTestFSM(t, path, nil, 1)
	res := applyAll(old, l.logs)
	wantReason := "entry 7 needs protocol 2; this binary supports 1; upgrade the binary"
	if !errors.Is(res[act-1].Err, ErrHalted) || res[act-1].Err.Error() != wantReason {
		t.Fatalf("activation on an old binary: %v, want halted: %s", res[act-1].Err, wantReason)
	}
	if !errors.Is(res[last-1].Err, ErrHalted) {
		t.Fatalf("entry after the halt: %v, want not applied (halted)", res[last-1].Err)
	}
	st := old.Protocol()
	if old.Applied() != act-1 || st.Halted == nil || st.Halted.Index != act || st.Active != 1 {
		t.Fatalf("halted FSM: applied %d, halt %+v, protocol %d; want applied %d, halted at %d", old.Applied(), st.Halted, st.Active, act-1, act)
	}
	if _, err := old.Snapshot(); !errors.Is(err, ErrHalted) {
		t.Fatalf("snapshot while halted: %v, want refused", err)
	}
	old.Close()

	// Restarted on the same binary: it stops at the same entry.
	old = openTestFSM(t, path, nil, 1)
	applyAll(old, l.logs)
	if h := old.Protocol().Halted; h == nil || h.Index != act || old.Applied() != act-1 {
		t.Fatalf("restarted old binary: halt %+v applied %d", h, old.Applied())
	}
	old.Close()

	// Upgraded: applies from the halted entry on.
	upgraded := openTestFSM(t, path, nil, 1, 2)
	defer upgraded.Close()
	for _, r := range applyAll(upgraded, l.logs) {
		if r.Err != nil {
			t.Fatalf("upgraded binary, entry %d: %v", r.Index, r.Err)
		}
	}
	st = upgraded.Protocol()
	if upgraded.Applied() != last || st.Halted != nil || st.Active != 2 || st.Since != act {
		t.Fatalf("upgraded: applied %d, halt %+v, protocol %d since %d", upgraded.Applied(), st.Halted, st.Active, st.Since)
	}
	snap, err := upgraded.Snapshot()
	if err != nil {
		t.Fatalf("snapshot after resuming: %v", err)
	}
	snap.Release()

	never := newTestFSM(t, nil, 1, 2)
	applyAll(never, l.logs)
	i1, h1, _ := upgraded.StateHash()
	i2, h2, _ := never.StateHash()
	if i1 != i2 || !bytes.Equal(h1, h2) {
		t.Fatalf("resumed node %d %x, node that never stopped %d %x", i1, h1, i2, h2)
	}
}

// TestProtocolHaltOnUnknownCommand: a command kind this binary does not know
// (a oneof case of a newer binary: unknown fields) stops the FSM rather than
// being rejected, which would diverge from the nodes that know it. A command
// that is empty is still rejected.
func TestProtocolHaltOnUnknownCommand(t *testing.T) {
	future := protowire.AppendTag(nil, 99, protowire.BytesType)
	future = protowire.AppendBytes(future, []byte("a newer binary's command"))
	mc := protowire.AppendTag(nil, 99, protowire.VarintType)
	mc = protowire.AppendVarint(mc, 1)
	futureMember := protowire.AppendTag(nil, 2, protowire.BytesType) // Command.member_change
	futureMember = protowire.AppendBytes(futureMember, mc)
	for _, tc := range []struct {
		name   string
		data   []byte
		halt   string
		reject string
	}{
		{"unknown command", future, "entry 5 is a command this binary does not know (of a newer protocol); this binary supports 1; upgrade the binary", ""},
		{"unknown member change", futureMember, "entry 5 is a member change this binary does not know", ""},
		{"empty command", nil, "", "empty command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newProtoLog(t)
			idx := l.addRaw(tc.data)
			l.add(barrierCmd())
			path := filepath.Join(t.TempDir(), "fsm.db")
			f := openTestFSM(t, path, nil, 1)
			res := applyAll(f, l.logs)
			if tc.reject != "" {
				if !errors.Is(res[idx-1].Err, ErrRejected) || !strings.Contains(res[idx-1].Err.Error(), tc.reject) || f.Applied() != idx+1 {
					t.Fatalf("got %v (applied %d), want rejected: %s", res[idx-1].Err, f.Applied(), tc.reject)
				}
				f.Close()
				return
			}
			if !errors.Is(res[idx-1].Err, ErrHalted) || !strings.HasPrefix(res[idx-1].Err.Error(), tc.halt) {
				t.Fatalf("got %v, want halted: %s", res[idx-1].Err, tc.halt)
			}
			if f.Applied() != idx-1 || !errors.Is(res[idx].Err, ErrHalted) {
				t.Fatalf("applied %d after the halt (want %d), next entry: %v", f.Applied(), idx-1, res[idx].Err)
			}
			if _, err := f.Snapshot(); !errors.Is(err, ErrHalted) {
				t.Fatalf("snapshot while halted: %v", err)
			}
			f.Close()
			f = openTestFSM(t, path, nil, 1)
			defer f.Close()
			applyAll(f, l.logs)
			if h := f.Protocol().Halted; h == nil || h.Index != idx {
				t.Fatalf("restarted: halt %+v, want at %d again", h, idx)
			}
		})
	}
}

// TestProtocolOfStateUnknown: a binary older than the state it opens (fsm.db
// or a snapshot at a protocol it does not know) applies nothing and says so.
func TestProtocolOfStateUnknown(t *testing.T) {
	l := newProtoLog(t)
	l.add(l.announcement("AA", "AA", 1, 2))
	l.add(l.announcement("BB", "BB", 1, 2))
	l.add(activation(2))
	path := filepath.Join(t.TempDir(), "fsm.db")
	f := openTestFSM(t, path, nil, 1, 2)
	applyAll(f, l.logs)
	image := snapshotImage(t, f)
	f.Close()

	old := openTestFSM(t, path, nil, 1)
	want := "the replicated state is at protocol 2 (since entry 7); this binary supports 1; upgrade the binary"
	if h := old.Protocol().Halted; h == nil || h.Reason != want || h.Index != 8 {
		t.Fatalf("old binary on a protocol 2 state: halt %+v, want at 8: %s", h, want)
	}
	old.Close()

	other := newTestFSM(t, nil, 1)
	err := other.Restore(io.NopCloser(bytes.NewReader(image)))
	if err == nil || !strings.Contains(err.Error(), "the snapshot is at protocol 2; this binary supports 1; upgrade the binary") {
		t.Fatalf("restore of a protocol 2 snapshot on an old binary: %v", err)
	}
}

func memberCmd(mc *peerpb.MemberChange) *peerpb.Command {
	return &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: mc}}
}
