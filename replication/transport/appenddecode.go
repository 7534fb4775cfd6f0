package transport

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// decodeAppend decodes an AppendEntriesRequest as encode writes it (the
// codec's msgpack map of field names), each entry's Data and Extensions
// taken from in rather than copied: in is the request's own buffer (the
// gRPC message's bytes, decoded into a slice of their own), kept alive by
// the entries while raft holds them. The codec copied every entry's data
// into a fresh slice on every follower, a MB a publication in a bulk
// import: 0.72 of 14.4 s of CPU over three imports, mostly page faults.
// It reports false, leaving req in an undefined state, for anything it
// does not expect (a field it does not know or twice, a type or form the
// encoder does not write for it, more entries than raft sends); the caller
// then decodes req with the codec. A field given twice is refused because
// the codec decodes the second into what the first left (its entries
// keep the first's fields the second lacks), which is not worth copying.
func decodeAppend(in []byte, req *raft.AppendEntriesRequest) bool {
	d := mpReader{b: in}
	n, ok := d.mapLen()
	if !ok {
		return false
	}
	var seen fieldSet
	for range n {
		key, ok := d.str()
		if !ok || !seen.add(key) {
			return false
		}
		switch string(key) {
		case "ProtocolVersion":
			v, ok := d.uint()
			if !ok || v > 1<<31 {
				return false
			}
			req.ProtocolVersion = raft.ProtocolVersion(v)
		case "ID":
			req.ID, ok = d.bytes()
		case "Addr":
			req.Addr, ok = d.bytes()
		case "Leader":
			req.Leader, ok = d.bytes()
		case "Term":
			req.Term, ok = d.uint()
		case "PrevLogEntry":
			req.PrevLogEntry, ok = d.uint()
		case "PrevLogTerm":
			req.PrevLogTerm, ok = d.uint()
		case "LeaderCommitIndex":
			req.LeaderCommitIndex, ok = d.uint()
		case "Entries":
			req.Entries, ok = d.entries()
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	return d.off == len(d.b)
}

// fieldSet is the field names a map has given so far (aliased). A request
// has nine fields and an entry six: a tenth name is one not known, which
// the caller refuses anyway.
type fieldSet struct {
	keys [9][]byte
	n    int
}

// add reports whether key is new and there was room for it, adding it.
func (s *fieldSet) add(key []byte) bool {
	for _, k := range s.keys[:s.n] {
		if bytes.Equal(k, key) {
			return false
		}
	}
	if s.n == len(s.keys) {
		return false
	}
	s.keys[s.n] = key
	s.n++
	return true
}

// mpReader reads the msgpack forms encode writes for an append request.
type mpReader struct {
	b   []byte
	off int
}

func (d *mpReader) byte() (byte, bool) {
	if d.off >= len(d.b) {
		return 0, false
	}
	c := d.b[d.off]
	d.off++
	return c, true
}

// take is the next n bytes of the input (aliased).
func (d *mpReader) take(n uint64) ([]byte, bool) {
	if n > uint64(len(d.b)-d.off) {
		return nil, false
	}
	s := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return s, true
}

func (d *mpReader) be(n int) (uint64, bool) {
	s, ok := d.take(uint64(n))
	if !ok {
		return 0, false
	}
	switch n {
	case 1:
		return uint64(s[0]), true
	case 2:
		return uint64(binary.BigEndian.Uint16(s)), true
	case 4:
		return uint64(binary.BigEndian.Uint32(s)), true
	}
	return binary.BigEndian.Uint64(s), true
}

// uint reads a non-negative integer: a positive fixint or uint 8 to 64.
func (d *mpReader) uint() (uint64, bool) {
	c, ok := d.byte()
	switch {
	case !ok:
		return 0, false
	case c <= 0x7f:
		return uint64(c), true
	case c >= 0xcc && c <= 0xcf:
		return d.be(1 << (c - 0xcc))
	}
	return 0, false
}

func (d *mpReader) mapLen() (uint64, bool) {
	c, ok := d.byte()
	switch {
	case !ok:
		return 0, false
	case c >= 0x80 && c <= 0x8f:
		return uint64(c & 0x0f), true
	case c == 0xde:
		return d.be(2)
	case c == 0xdf:
		return d.be(4)
	}
	return 0, false
}

func (d *mpReader) arrayLen() (uint64, bool) {
	c, ok := d.byte()
	switch {
	case !ok:
		return 0, false
	case c >= 0x90 && c <= 0x9f:
		return uint64(c & 0x0f), true
	case c == 0xdc:
		return d.be(2)
	case c == 0xdd:
		return d.be(4)
	}
	return 0, false
}

// str reads a string or binary's bytes, aliased; nil is not one.
func (d *mpReader) str() ([]byte, bool) {
	c, ok := d.byte()
	if !ok {
		return nil, false
	}
	var n uint64
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xd9 || c == 0xc4:
		n, ok = d.be(1)
	case c == 0xda || c == 0xc5:
		n, ok = d.be(2)
	case c == 0xdb || c == 0xc6:
		n, ok = d.be(4)
	default:
		return nil, false
	}
	if !ok {
		return nil, false
	}
	return d.take(n)
}

// bytes reads a []byte as the codec decodes one: nil for nil, an empty
// slice for an empty string.
func (d *mpReader) bytes() ([]byte, bool) {
	if d.off < len(d.b) && d.b[d.off] == 0xc0 {
		d.off++
		return nil, true
	}
	s, ok := d.str()
	if ok && len(s) == 0 {
		s = []byte{}
	}
	return s, ok
}

// skip passes over one value of the forms a time is written in (a string,
// a binary or a timestamp extension) or nil.
func (d *mpReader) skipTime() bool {
	if d.off >= len(d.b) {
		return false
	}
	switch c := d.b[d.off]; {
	case c == 0xc0:
		d.off++
		return true
	case c == 0xd6: // fixext 4
		_, ok := d.take(6)
		return ok
	case c == 0xd7: // fixext 8
		_, ok := d.take(10)
		return ok
	case c == 0xc7: // ext 8
		d.off++
		n, ok := d.be(1)
		if !ok {
			return false
		}
		_, ok = d.take(n + 1)
		return ok
	}
	_, ok := d.str()
	return ok
}

func (d *mpReader) entries() ([]*raft.Log, bool) {
	if d.off < len(d.b) && d.b[d.off] == 0xc0 {
		d.off++
		return nil, true
	}
	n, ok := d.arrayLen()
	// Each entry takes a byte at least, and takes 104 bytes here: bounded
	// by raft's own limit, not the input's size, which can be 64 MiB.
	if !ok || n > uint64(len(d.b)-d.off) || n > maxAppendEntries {
		return nil, false
	}
	logs := make([]raft.Log, n)
	out := make([]*raft.Log, n)
	for i := range logs {
		l := &logs[i]
		out[i] = l
		fields, ok := d.mapLen()
		if !ok {
			return nil, false
		}
		var seen fieldSet
		for range fields {
			key, ok := d.str()
			if !ok || !seen.add(key) {
				return nil, false
			}
			switch string(key) {
			case "Index":
				l.Index, ok = d.uint()
			case "Term":
				l.Term, ok = d.uint()
			case "Type":
				var t uint64
				t, ok = d.uint()
				ok = ok && t <= 0xff
				l.Type = raft.LogType(t)
			case "Data":
				l.Data, ok = d.bytes()
			case "Extensions":
				l.Extensions, ok = d.bytes()
			case "AppendedAt":
				// The encoder writes a time as a short string holding a
				// msgpack timestamp (8 bytes, or 12 before 1970 or after
				// 2514), read here as the codec reads one; any other form
				// is read by the codec itself from the value's bytes.
				start := d.off
				if t, tok := d.timestamp(); tok {
					l.AppendedAt = t
					break
				}
				d.off = start
				if ok = d.skipTime(); ok {
					ok = codec.NewDecoderBytes(d.b[start:d.off], &codec.MsgpackHandle{}).Decode(&l.AppendedAt) == nil
				}
			default:
				return nil, false
			}
			if !ok {
				return nil, false
			}
		}
	}
	return out, true
}

// timestamp reads a time written as a fixed string of 8 or 12 bytes (a
// msgpack timestamp), as the codec's DecodeTime does: the string is first
// tried as time.MarshalBinary's form. Anything else: false.
func (d *mpReader) timestamp() (time.Time, bool) {
	if d.off >= len(d.b) {
		return time.Time{}, false
	}
	c := d.b[d.off]
	if c != 0xa8 && c != 0xac {
		return time.Time{}, false
	}
	s, ok := d.str()
	if !ok {
		return time.Time{}, false
	}
	var t time.Time
	if t.UnmarshalBinary(s) == nil {
		return t, true
	}
	if len(s) == 8 {
		tv := binary.BigEndian.Uint64(s)
		return time.Unix(int64(tv&0x00000003ffffffff), int64(tv>>34)).UTC(), true
	}
	return time.Unix(int64(binary.BigEndian.Uint64(s[4:])), int64(binary.BigEndian.Uint32(s[:4]))).UTC(), true
}

// maxAppendEntries is the most entries a leader puts in one append request:
// raft refuses a MaxAppendEntries above 1024 (ValidateConfig) and split only
// makes batches smaller.
const maxAppendEntries = 1024

// maxValues bounds the msgpack values, nested ones included, in a message
// given to the codec: an append request of maxAppendEntries entries of 15
// fields each has fewer. The codec allocates a value's room as it reads
// it (a new raft.Log and a slice slot for each entry, over 100 bytes for
// an entry written in one byte), so a peer's 64 MiB message of one-byte
// entries took over 6 GB; under the bound the codec allocates a few MB
// at most, whatever the size of the message.
const maxValues = maxAppendEntries * 32

// boundedValue walks the msgpack value at the start of in without decoding
// it: ok if it is whole and has at most max values, nested ones included;
// end is where it ends. It keeps a count of the values still to read, not
// a stack, so nesting costs it nothing.
func boundedValue(in []byte, max int) (end int, ok bool) {
	d := mpReader{b: in}
	for pending, seen := 1, 0; pending > 0; pending-- {
		if seen++; seen > max {
			return 0, false
		}
		c, ok := d.byte()
		if !ok {
			return 0, false
		}
		var skip, items uint64 // bytes to pass over; values the container holds
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixints, nil, booleans
		case c <= 0x8f: // fixmap
			items = 2 * uint64(c&0x0f)
		case c <= 0x9f: // fixarray
			items = uint64(c & 0x0f)
		case c <= 0xbf: // fixstr
			skip = uint64(c & 0x1f)
		case c == 0xc4 || c == 0xc5 || c == 0xc6: // bin 8, 16, 32
			skip, ok = d.be(1 << (c - 0xc4))
		case c == 0xc7 || c == 0xc8 || c == 0xc9: // ext 8, 16, 32: length, type, data
			skip, ok = d.be(1 << (c - 0xc7))
			skip++
		case c == 0xca || c == 0xcb: // float 32, 64
			skip = 4 << (c - 0xca)
		case c >= 0xcc && c <= 0xcf: // uint 8 to 64
			skip = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3: // int 8 to 64
			skip = 1 << (c - 0xd0)
		case c >= 0xd4 && c <= 0xd8: // fixext 1 to 16: type, data
			skip = 1 + 1<<(c-0xd4)
		case c >= 0xd9 && c <= 0xdb: // str 8, 16, 32
			skip, ok = d.be(1 << (c - 0xd9))
		case c == 0xdc || c == 0xdd: // array 16, 32
			items, ok = d.be(2 << (c - 0xdc))
		case c == 0xde || c == 0xdf: // map 16, 32
			items, ok = d.be(2 << (c - 0xde))
			items *= 2
		default: // 0xc1: never used
			return 0, false
		}
		if !ok || items > uint64(max-seen-(pending-1)) {
			return 0, false
		}
		pending += int(items)
		if _, ok := d.take(skip); !ok {
			return 0, false
		}
	}
	return d.off, true
}
