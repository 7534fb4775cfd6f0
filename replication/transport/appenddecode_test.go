package transport

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// randomAppend is an append request with fields drawn to cover the forms
// the encoder writes: small and large integers, nil, empty and long byte
// slices (up to 70,000 bytes: str8, str16 and str32 lengths), zero and
// other times, no entries, nil entries and many.
func randomAppend(r *rand.Rand) *raft.AppendEntriesRequest {
	num := func() uint64 {
		switch r.IntN(4) {
		case 0:
			return uint64(r.IntN(128))
		case 1:
			return uint64(r.IntN(70000))
		case 2:
			return r.Uint64() >> r.IntN(64)
		}
		return r.Uint64()
	}
	bs := func() []byte {
		switch r.IntN(5) {
		case 0:
			return nil
		case 1:
			return []byte{}
		case 2:
			return []byte("127.0.0.1:7000")
		case 3:
			b := make([]byte, r.IntN(300))
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			return b
		}
		return bytes.Repeat([]byte{byte(r.IntN(256))}, r.IntN(70000))
	}
	req := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersion(r.IntN(4)), ID: bs(), Addr: bs()},
		Term:      num(), Leader: bs(), PrevLogEntry: num(), PrevLogTerm: num(), LeaderCommitIndex: num(),
	}
	switch r.IntN(4) {
	case 0: // none: a heartbeat
	case 1:
		req.Entries = []*raft.Log{}
	default:
		for range r.IntN(40) + 1 {
			l := &raft.Log{Index: num(), Term: num(), Type: raft.LogType(r.IntN(6)), Data: bs(), Extensions: bs()}
			switch r.IntN(5) {
			case 1:
				l.AppendedAt = time.Unix(int64(r.IntN(2_000_000_000)), int64(r.IntN(1e9)))
			case 2:
				l.AppendedAt = time.Now()
			case 3: // before 1970 or after 2514: a 12-byte timestamp
				l.AppendedAt = time.Date(1900+r.IntN(2)*700, 3, 4, 5, 6, 7, r.IntN(1e9), time.UTC)
			case 4:
				l.AppendedAt = time.Unix(int64(r.IntN(2_000_000_000)), 0).In(time.FixedZone("x", 3600))
			}
			req.Entries = append(req.Entries, l)
		}
	}
	return req
}

// TestDecodeAppendAsCodec: an append request encoded as the transport
// sends it decodes to what the codec decodes it to, with each entry's data
// inside the input instead of a copy; input the fast path does not expect
// is left to the codec.
func TestDecodeAppendAsCodec(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 12))
	inside := func(s, in []byte) bool {
		if len(s) == 0 {
			return true
		}
		p, lo := uintptr(unsafe.Pointer(&s[0])), uintptr(unsafe.Pointer(&in[0]))
		return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(in))
	}
	for i := range 400 {
		sent := randomAppend(r)
		in, err := encode(sent)
		if err != nil {
			t.Fatal(err)
		}
		var want, got raft.AppendEntriesRequest
		if err := codec.NewDecoderBytes(in, &codec.MsgpackHandle{}).Decode(&want); err != nil {
			t.Fatal(err)
		}
		if !decodeAppend(in, &got) {
			t.Fatalf("request %d: the fast path refused what encode wrote", i)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("request %d: decoded %+v, the codec %+v", i, got, want)
		}
		for _, l := range got.Entries {
			if !inside(l.Data, in) || !inside(l.Extensions, in) {
				t.Fatalf("request %d: entry %d's data copied, not taken from the input", i, l.Index)
			}
		}
		var viaDecode raft.AppendEntriesRequest
		if err := decode(in, &viaDecode); err != nil || !reflect.DeepEqual(viaDecode, want) {
			t.Fatalf("request %d: decode gave %v, %+v", i, err, viaDecode)
		}
	}

	// Forms encode does not write for these fields: refused by the fast
	// path, decoded by the codec as before.
	type other struct {
		Term    int64
		Entries []*raft.Log
		Extra   string
	}
	for _, v := range []any{
		other{Term: -5},
		other{Extra: "x"},
		map[string]any{"Term": uint64(3), "Entries": []any{map[string]any{"Index": 1, "Mystery": true}}},
	} {
		var in []byte
		if err := codec.NewEncoderBytes(&in, &codec.MsgpackHandle{}).Encode(v); err != nil {
			t.Fatal(err)
		}
		var got raft.AppendEntriesRequest
		if decodeAppend(in, &got) {
			t.Errorf("%+v: taken by the fast path", v)
		}
		var want raft.AppendEntriesRequest
		wantErr := codec.NewDecoderBytes(in, &codec.MsgpackHandle{}).Decode(&want)
		var via raft.AppendEntriesRequest
		err := decode(in, &via)
		if (err == nil) != (wantErr == nil) || (err == nil && !reflect.DeepEqual(via, want)) {
			t.Errorf("%+v: decode %v %+v, the codec %v %+v", v, err, via, wantErr, want)
		}
	}
	// Truncated input is refused, never read past.
	in, _ := encode(randomAppend(rand.New(rand.NewPCG(1, 2))))
	for n := range len(in) {
		var got raft.AppendEntriesRequest
		if decodeAppend(in[:n], &got) && n < len(in) {
			t.Fatalf("a request cut to %d of %d bytes decoded", n, len(in))
		}
	}
}

// BenchmarkDecodeAppend: a pipeline request of 8 entries of 1 MB (a bulk
// import's publications), decoded by the codec and by decodeAppend.
func BenchmarkDecodeAppend(b *testing.B) {
	req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: 3, ID: []byte("DE-BAFA"), Addr: []byte("127.0.0.1:7000")}, Term: 2}
	for i := range 8 {
		req.Entries = append(req.Entries, &raft.Log{Index: uint64(i + 1), Term: 2, Data: bytes.Repeat([]byte{byte(i)}, 1<<20), AppendedAt: time.Now()})
	}
	in, err := encode(req)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out raft.AppendEntriesRequest
			if err := codec.NewDecoderBytes(in, &codec.MsgpackHandle{}).Decode(&out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decodeAppend", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out raft.AppendEntriesRequest
			if !decodeAppend(in, &out) {
				b.Fatal("refused")
			}
		}
	})
}

// BenchmarkDecodeAppendSmall: 64 entries of 600 bytes (writes of 64
// publishers), decoded by the codec and by decodeAppend.
func BenchmarkDecodeAppendSmall(b *testing.B) {
	req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: 3, ID: []byte("DE-BAFA"), Addr: []byte("127.0.0.1:7000")}, Term: 2}
	for i := range 64 {
		req.Entries = append(req.Entries, &raft.Log{Index: uint64(i + 1), Term: 2, Data: bytes.Repeat([]byte{byte(i)}, 600), AppendedAt: time.Now()})
	}
	in, err := encode(req)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out raft.AppendEntriesRequest
			if err := codec.NewDecoderBytes(in, &codec.MsgpackHandle{}).Decode(&out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decodeAppend", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out raft.AppendEntriesRequest
			if !decodeAppend(in, &out) {
				b.Fatal("refused")
			}
		}
	})
}
