package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
	"unsafe"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"

	raftv1 "github.com/watchfed/watchfed/proto/watchfed/raft/v1"
)

// appendSeeds are encoded append requests as a leader sends them: a
// heartbeat, no and empty entries, entries whose data crosses each msgpack
// length form (fixstr, str8, str16, str32), times in each form, random
// requests of up to 64 KiB, and hostile forms (huge claimed lengths and
// counts, duplicate fields, entries of empty maps).
func appendSeeds(tb testing.TB) [][]byte {
	enc := func(v any) []byte {
		b, err := encode(v)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	hdr := raft.RPCHeader{ProtocolVersion: 3, ID: []byte("DE-BAFA"), Addr: []byte("127.0.0.1:7000")}
	var seeds [][]byte
	seeds = append(seeds,
		enc(&raft.AppendEntriesRequest{RPCHeader: hdr, Term: 7, Leader: []byte("127.0.0.1:7000")}),
		enc(&raft.AppendEntriesRequest{RPCHeader: hdr, Term: 7, Entries: []*raft.Log{}}),
	)
	times := []time.Time{{}, time.Unix(1_764_000_000, 123), time.Date(1900, 3, 4, 5, 6, 7, 8, time.UTC),
		time.Date(2600, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(1_764_000_000, 0).In(time.FixedZone("x", 3600))}
	// Few entries past 256 bytes: a long input makes each run of the
	// fuzzer slow, and shrinking one it finds interesting takes a minute.
	for i, size := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		req := &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 7, PrevLogEntry: 41, PrevLogTerm: 6, LeaderCommitIndex: 40}
		for j := range 1 + 2*btoi(size <= 256) {
			req.Entries = append(req.Entries, &raft.Log{Index: uint64(42 + j), Term: 7, Type: raft.LogCommand,
				Data: bytes.Repeat([]byte{byte(i)}, size), Extensions: []byte("x")[:min(j, 1)], AppendedAt: times[(i+j)%len(times)]})
		}
		seeds = append(seeds, enc(req))
	}
	r := rand.New(rand.NewPCG(5, 17))
	for n := 0; n < 8; {
		if b := enc(randomAppend(r)); len(b) <= 4<<10 {
			seeds = append(seeds, b)
			n++
		}
	}
	entries := func(count uint32, elem []byte) []byte {
		b := append([]byte{0x81, 0xa7}, "Entries"...)
		b = binary.BigEndian.AppendUint32(append(b, 0xdd), count)
		for range min(count, 64) {
			b = append(b, elem...)
		}
		return b
	}
	seeds = append(seeds,
		entries(0xffffffff, nil),
		entries(64, []byte{0x80}),
		entries(64, []byte{0x90}),
		entries(64, []byte{0xc0}),
		entries(1, []byte{0x81, 0xa4, 'D', 'a', 't', 'a', 0xc6, 0xff, 0xff, 0xff, 0xff}),
		append([]byte{0x82, 0xa4, 'T', 'e', 'r', 'm', 0x01, 0xa6, 'L', 'e', 'a', 'd', 'e', 'r', 0xdb}, 0xff, 0xff, 0xff, 0xf0),
		// Entries twice: the codec decodes the second list into the first.
		[]byte{0x82, 0xa7, 'E', 'n', 't', 'r', 'i', 'e', 's', 0x91, 0x82, 0xa5, 'I', 'n', 'd', 'e', 'x', 0x01, 0xa4, 'T', 'e', 'r', 'm', 0x02,
			0xa7, 'E', 'n', 't', 'r', 'i', 'e', 's', 0x91, 0x81, 0xa5, 'I', 'n', 'd', 'e', 'x', 0x05},
		// Data in each longer length form, holding three bytes.
		entries(5, []byte{0x81, 0xa4, 'D', 'a', 't', 'a', 0xd9, 3, 'a', 'b', 'c'}),
		entries(2, []byte{0x82, 0xa4, 'D', 'a', 't', 'a', 0xda, 0, 3, 'a', 'b', 'c', 0xaa, 'E', 'x', 't', 'e', 'n', 's', 'i', 'o', 'n', 's', 0xc4, 1, 'x'}),
		entries(2, []byte{0x82, 0xa4, 'D', 'a', 't', 'a', 0xdb, 0, 0, 0, 3, 'a', 'b', 'c', 0xaa, 'E', 'x', 't', 'e', 'n', 's', 'i', 'o', 'n', 's', 0xc5, 0, 1, 'x'}),
		entries(1, []byte{0x81, 0xa4, 'D', 'a', 't', 'a', 0xc6, 0, 0, 0, 3, 'a', 'b', 'c'}),
	)
	return seeds
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// heapAllocated is the bytes allocated by the process so far. Large
// allocations count at once; small ones when their span is replaced, so a
// window is short of them by up to a span a size class.
func heapAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// allocSlack allows for what a decode allocates besides copies of the
// input: at most maxValues values of the codec's (a few hundred bytes each)
// and the lag of heapAllocated.
const allocSlack = 24 << 20

func checkAllocated(t *testing.T, since uint64, in []byte) {
	t.Helper()
	if a, limit := heapAllocated()-since, 4*uint64(len(in))+allocSlack; a > limit {
		t.Fatalf("decoding %d bytes allocated %d bytes (limit %d)", len(in), a, limit)
	}
}

func within(s, in []byte) bool {
	if len(s) == 0 {
		return true
	}
	p, lo := uintptr(unsafe.Pointer(&s[0])), uintptr(unsafe.Pointer(unsafe.SliceData(in)))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(in))
}

// FuzzDecodeAppend: whatever a peer sends, the fast path does not panic,
// reads nothing past the input (given with no spare capacity), allocates
// about nothing beyond a bounded entry list, and what it takes it decodes
// exactly as the codec does, the entries' bytes taken from the input.
func FuzzDecodeAppend(f *testing.F) {
	for _, s := range appendSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		in = in[:len(in):len(in)]
		var got raft.AppendEntriesRequest
		before := heapAllocated()
		ok := decodeAppend(in, &got)
		checkAllocated(t, before, in)
		if !ok {
			return
		}
		if len(got.Entries) > maxAppendEntries {
			t.Fatalf("took %d entries, more than raft ever sends (%d)", len(got.Entries), maxAppendEntries)
		}
		var want raft.AppendEntriesRequest
		if err := codec.NewDecoderBytes(in, &codec.MsgpackHandle{}).Decode(&want); err != nil {
			t.Fatalf("the fast path took what the codec refuses (%v): %+v", err, got)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("the fast path decoded %+v, the codec %+v", got, want)
		}
		for _, b := range [][]byte{got.ID, got.Addr, got.Leader} {
			if !within(b, in) {
				t.Fatalf("a header field is not within the input")
			}
		}
		for i, l := range got.Entries {
			if !within(l.Data, in) || !within(l.Extensions, in) {
				t.Fatalf("entry %d's data is not within the input", i)
			}
		}
	})
}

// FuzzDecode: decode, which every message from a peer goes through (the
// fast path, then the codec for anything else), does not panic, allocates
// in proportion to the input and not to a count or length it claims,
// decodes what it accepts as the codec does, and refuses nothing the codec
// decodes within the bound on values. The walk that bounds the values
// ends a value where the codec does.
func FuzzDecode(f *testing.F) {
	for _, s := range appendSeeds(f) {
		f.Add(s)
	}
	hdr := raft.RPCHeader{ProtocolVersion: 3, ID: []byte("DE-BAFA"), Addr: []byte("127.0.0.1:7000")}
	for _, v := range []any{
		&raft.AppendEntriesResponse{RPCHeader: hdr, Term: 7, LastLog: 99, Success: true},
		&raft.RequestVoteRequest{RPCHeader: hdr, Term: 8, LastLogIndex: 99, LastLogTerm: 7, LeadershipTransfer: true},
		&raft.RequestVoteResponse{RPCHeader: hdr, Term: 8, Granted: true},
		&raft.RequestPreVoteRequest{RPCHeader: hdr, Term: 8, LastLogIndex: 99, LastLogTerm: 7},
		&raft.TimeoutNowRequest{RPCHeader: hdr},
		&raft.InstallSnapshotRequest{RPCHeader: hdr, SnapshotVersion: 1, Term: 7, LastLogIndex: 99, LastLogTerm: 7,
			Configuration: []byte{1, 2, 3}, ConfigurationIndex: 5, Size: 1 << 30},
		&raft.InstallSnapshotResponse{RPCHeader: hdr, Term: 7, Success: true},
		map[string]any{"Term": int64(-1), "Nested": []any{[]any{[]any{map[string]any{"a": 1.5, "b": float32(2)}}}}, "Ext": time.Unix(1, 2)},
	} {
		b, err := encode(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	news := []func() any{
		func() any { return &raft.AppendEntriesRequest{} },
		func() any { return &raft.AppendEntriesResponse{} },
		func() any { return &raft.RequestVoteRequest{} },
		func() any { return &raft.RequestPreVoteRequest{} },
		func() any { return &raft.TimeoutNowRequest{} },
		func() any { return &raft.InstallSnapshotRequest{} },
		func() any { return &raft.RequestVoteResponse{} },
		func() any { return &raft.RequestPreVoteResponse{} },
		func() any { return &raft.TimeoutNowResponse{} },
		func() any { return &raft.InstallSnapshotResponse{} },
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		in = in[:len(in):len(in)]
		end, bounded := boundedValue(in, maxValues)
		// Read as Raw, the codec passes over one value (a nil leaves Raw
		// empty: what it read is the measure).
		var raw codec.Raw
		dec := codec.NewDecoderBytes(in, &codec.MsgpackHandle{})
		if err := dec.Decode(&raw); err == nil && bounded && end != dec.NumBytesRead() {
			t.Fatalf("the walk ends the value at %d, the codec at %d", end, dec.NumBytesRead())
		}
		for _, mk := range news {
			got := mk()
			before := heapAllocated()
			err := decode(in, got)
			checkAllocated(t, before, in)
			want := mk()
			wantErr := codec.NewDecoderBytes(in, &codec.MsgpackHandle{}).Decode(want)
			switch {
			case err == nil && wantErr != nil:
				t.Fatalf("%T: decode took what the codec refuses (%v)", got, wantErr)
			case err == nil && !reflect.DeepEqual(got, want):
				t.Fatalf("%T: decode gave %+v, the codec %+v", got, got, want)
			case err != nil && wantErr == nil && bounded:
				t.Fatalf("%T: decode refused (%v) what the codec decodes within the bound", got, err)
			}
		}
	})
}

// TestDecodeAllocationBounded: a request of one-byte entries (1 MiB here;
// a peer may send 64) is refused with a few MB allocated at most, by the
// fast path and the codec alike; without the bounds each byte cost over
// 100 bytes (109 MB for empty maps, 280 MB for empty arrays). A request of
// as many entries as raft sends still decodes, by either path.
func TestDecodeAllocationBounded(t *testing.T) {
	oneByteEntries := func(elem byte) []byte {
		const n = 1 << 20
		b := append([]byte{0x81, 0xa7}, "Entries"...)
		b = binary.BigEndian.AppendUint32(append(b, 0xdd), n)
		return append(b, bytes.Repeat([]byte{elem}, n)...)
	}
	largest := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: 3, ID: []byte("DE-BAFA"), Addr: []byte("127.0.0.1:7000")}, Term: 2}
	for i := range maxAppendEntries {
		largest.Entries = append(largest.Entries, &raft.Log{Index: uint64(i + 1), Term: 2, Data: []byte("publication"), Extensions: []byte("x"), AppendedAt: time.Now()})
	}
	full, err := encode(largest)
	if err != nil {
		t.Fatal(err)
	}
	if full[0] != 0x89 {
		t.Fatalf("encode wrote a map header %#x, not one of 9 fields", full[0])
	}
	// The same with a field the fast path does not know: the codec decodes it.
	unknown := append(append([]byte{0x8a}, full[1:]...), append([]byte{0xa5}, "Extra\xc0"...)...)

	for _, c := range []struct {
		name    string
		in      []byte
		entries int // -1: refused
	}{
		{"empty maps (fast path)", oneByteEntries(0x80), -1},
		{"empty arrays (codec)", oneByteEntries(0x90), -1},
		{"nils (codec)", oneByteEntries(0xc0), -1},
		{"raft's largest batch (fast path)", full, maxAppendEntries},
		{"raft's largest batch (codec)", unknown, maxAppendEntries},
	} {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var req raft.AppendEntriesRequest
			err := decode(c.in, &req)
			runtime.ReadMemStats(&after)
			switch {
			case c.entries < 0 && err == nil:
				t.Errorf("decoded %d entries, want refused", len(req.Entries))
			case c.entries >= 0 && (err != nil || len(req.Entries) != c.entries):
				t.Errorf("decoded %d entries (%v), want %d", len(req.Entries), err, c.entries)
			}
			if a, limit := after.TotalAlloc-before.TotalAlloc, 2*uint64(len(c.in))+8<<20; a > limit {
				t.Errorf("decoding %d bytes allocated %d (limit %d)", len(c.in), a, limit)
			}
		})
	}
}

// chunkStream is an InstallSnapshot stream that gives chunks, then EOF.
type chunkStream struct {
	raftv1.RaftService_InstallSnapshotServer // only Recv is called
	chunks                                   [][]byte
}

func (s *chunkStream) Recv() (*raftv1.InstallSnapshotRequest, error) {
	if len(s.chunks) == 0 {
		return nil, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return &raftv1.InstallSnapshotRequest{Data: c}, nil
}

// FuzzChunkReader: a snapshot a peer streams in chunks of any sizes (empty
// ones too, the first in the header's message), read up to the size its
// header claims (any int64), is the bytes sent up to that size; a stream
// that ends short of it is an unexpected EOF, never a silent end.
func FuzzChunkReader(f *testing.F) {
	f.Add([]byte("snapshot data"), []byte{3, 0, 5}, int64(13))
	f.Add([]byte("snapshot data"), []byte{0}, int64(-1))
	f.Add([]byte("snapshot data"), []byte{13, 0, 0}, int64(7))
	f.Add([]byte("abc"), []byte{0, 0, 1}, int64(1<<40))
	f.Fuzz(func(t *testing.T, data, cuts []byte, size int64) {
		var chunks [][]byte
		rest := data
		for _, c := range cuts {
			n := min(int(c), len(rest))
			chunks, rest = append(chunks, rest[:n]), rest[n:]
		}
		chunks = append(chunks, rest)
		r := &chunkReader{stream: &chunkStream{chunks: chunks[1:]}, buf: chunks[0]}
		got, err := io.ReadAll(io.LimitReader(r, size))
		want := data[:max(0, min(size, int64(len(data))))]
		if !bytes.Equal(got, want) {
			t.Fatalf("read %q, want %q", got, want)
		}
		if short := size > int64(len(data)); short != errors.Is(err, io.ErrUnexpectedEOF) || (!short && err != nil) {
			t.Fatalf("%d bytes sent, %d claimed: error %v", len(data), size, err)
		}
	})
}
