package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// filer is raft-wal's segment filer with hashicorp/raft-wal#31 worked
// around: v0.4.0 seals the tail segment of a suffix cut (a follower's
// conflicting entries) without writing its index block, and after a
// restart every read from that segment fails ("sealed segment has no index
// block"). The fix (#33, ForceSeal) came after v0.4.0. Such a segment is
// opened as a tail is recovered, by reading through its frames; its entries
// past the cut stay hidden by the segment's MaxIndex.
type filer struct{ *segment.Filer }

func newFiler(dir string) filer { return filer{segment.NewFiler(dir, fs.New())} }

// Open opens a sealed segment for reading.
func (f filer) Open(info types.SegmentInfo) (types.SegmentReader, error) {
	if info.IndexStart == 0 {
		return f.Filer.RecoverTail(info)
	}
	return f.Filer.Open(info)
}

// sealTail finishes a rotation that raft-wal began but did not record: the
// tail segment's file is sealed (its index block went with the last append)
// while the meta file still lists it as the tail, because the process died
// or the disk filled up before the rotation was committed. raft-wal v0.4.0
// reopens such a tail as it is, and every append then fails with
// ErrSealed. This records what the rotation would have: the segment sealed
// at its last entry, and a new tail after it.
func (s *Store) sealTail() error {
	st, err := s.meta.Load(s.dir)
	n := len(st.Segments)
	if err != nil || n == 0 || !st.Segments[n-1].SealTime.IsZero() {
		return err
	}
	tail := st.Segments[n-1]
	w, err := newFiler(s.dir).Filer.RecoverTail(tail)
	if errors.Is(err, os.ErrNotExist) {
		return nil // raft-wal creates it
	} else if err != nil {
		return err
	}
	sealed, indexStart, err := w.Sealed()
	last := w.LastIndex()
	var torn bool
	if err == nil && sealed {
		torn, err = indexTorn(s.dir, tail, indexStart, last, w)
	}
	if err == nil && torn {
		// The batch that carried the index frame did not complete (the
		// disk filled up in it): raft-wal's recovery went back to the last
		// whole commit, yet reports the torn frame as a seal, and its index
		// maps entries wrongly or past the file's end. Cut the torn frame:
		// the segment is then an ordinary tail ending at that commit.
		w.Close()
		path := filepath.Join(s.dir, segment.FileName(tail))
		if err := os.Truncate(path, int64(indexStart)-frameHeaderLen); err != nil {
			return fmt.Errorf("cut a torn index block from %s: %w", path, err)
		}
		if s.log != nil {
			s.log.Warn("raft log: cut a segment's torn index block (a rotation the disk had no room for)", "segment", path, "last_index", last)
		}
		return nil
	}
	w.Close()
	if err != nil || !sealed {
		return err
	}
	now := time.Now()
	tail.SealTime, tail.MaxIndex, tail.IndexStart = now, last, indexStart
	st.Segments = append(slices.Clone(st.Segments[:n-1]), tail, types.SegmentInfo{
		ID: st.NextSegmentID, BaseIndex: last + 1, MinIndex: last + 1,
		SizeLimit: uint32(s.segSize), Codec: wal.CodecBinaryV1, CreateTime: now,
	})
	st.NextSegmentID++
	if err := s.meta.CommitState(st); err != nil {
		return s.noteFull(err)
	}
	if s.log != nil {
		s.log.Warn("raft log: finished a segment rotation left undone", "segment", filepath.Join(s.dir, segment.FileName(tail)), "last_index", last)
	}
	return nil
}

// frameHeaderLen is raft-wal's frame header length (segment/format.go): an
// index block starts this far after its frame.
const frameHeaderLen = 8

// indexTorn reports whether a segment's index block, read as a sealed
// segment's would be, fails to find an entry up to last where a scan of the
// frames (w) found it. A failure to read the file at all is an error, not
// a torn index: nothing is cut then.
func indexTorn(dir string, tail types.SegmentInfo, indexStart, last uint64, w types.SegmentReader) (bool, error) {
	if indexStart < frameHeaderLen {
		return false, nil // no frame to cut: recorded as before
	}
	if last < tail.BaseIndex {
		return true, nil // an index of no committed entry
	}
	tail.IndexStart, tail.MaxIndex = indexStart, last
	r, err := newFiler(dir).Filer.Open(tail)
	if err != nil {
		return false, fmt.Errorf("open raft log segment %s: %w", segment.FileName(tail), err)
	}
	defer r.Close()
	for i := tail.BaseIndex; i <= last; i++ {
		want, err := w.GetLog(i)
		if err != nil {
			return false, fmt.Errorf("read raft log entry %d of %s: %w", i, segment.FileName(tail), err)
		}
		got, err := r.GetLog(i)
		same := err == nil && bytes.Equal(got.Bs, want.Bs)
		want.Close()
		if err == nil {
			got.Close()
		}
		if !same {
			return true, nil
		}
	}
	return false, nil
}
