package logstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/hashicorp/raft"
)

// raft-wal checksums each append batch only to find a torn last batch after
// a crash; it reads entries back unchecked, trusting the file system (its
// README says so). An entry damaged on disk must be found, not applied, so
// each entry carries its own CRC-32C over everything raft stores of it, in a
// trailer appended to the entry's Extensions (raft's field for what layers
// under it add and remove; watchfed puts nothing there itself). A custom
// raft-wal codec would be the natural place, but raft-wal v0.4.0 records
// every segment as written by its built-in codec and then refuses to reopen
// one written by another.
//
// One limit stays: damage inside the last append of the newest segment
// looks to raft-wal like an append torn by a crash, and it drops that
// append at open, as it must after a crash. Checked entries cover the rest.

// ErrDamaged marks a raft log entry (or the segment list) that fails its
// checks: the error names the file and the entry.
var ErrDamaged = errors.New("raft log damaged")

const (
	trailerTag = 0x01 // the trailer's layout: CRC-32C (4 bytes, big endian), then this tag
	trailerLen = 5
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sum is the CRC-32C of an entry: index, term, type, appended-at and the
// lengths and bytes of data and extensions (without the trailer).
func sum(l *raft.Log, ext []byte) uint32 {
	var h [8 + 8 + 1 + 8 + 4 + 4]byte
	binary.BigEndian.PutUint64(h[0:], l.Index)
	binary.BigEndian.PutUint64(h[8:], l.Term)
	h[16] = byte(l.Type)
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	binary.BigEndian.PutUint64(h[17:], uint64(at))
	binary.BigEndian.PutUint32(h[25:], uint32(len(l.Data)))
	binary.BigEndian.PutUint32(h[29:], uint32(len(ext)))
	c := crc32.Update(0, castagnoli, h[:])
	c = crc32.Update(c, castagnoli, l.Data)
	return crc32.Update(c, castagnoli, ext)
}

// sealed is a copy of l as stored: its Extensions followed by the trailer.
// l itself is not changed (raft and the log cache keep it).
func sealed(l *raft.Log) *raft.Log {
	out := *l
	ext := make([]byte, 0, len(l.Extensions)+trailerLen)
	ext = append(ext, l.Extensions...)
	ext = binary.BigEndian.AppendUint32(ext, sum(l, l.Extensions))
	out.Extensions = append(ext, trailerTag)
	return &out
}

// unseal checks the trailer of an entry as read and removes it.
func unseal(l *raft.Log) error {
	n := len(l.Extensions)
	if n < trailerLen || l.Extensions[n-1] != trailerTag {
		return errors.New("no checksum trailer")
	}
	ext := l.Extensions[:n-trailerLen]
	want := binary.BigEndian.Uint32(l.Extensions[n-trailerLen:])
	if got := sum(l, ext); got != want {
		return fmt.Errorf("checksum %08x, stored %08x", got, want)
	}
	if len(ext) == 0 {
		ext = nil
	}
	l.Extensions = ext
	return nil
}
