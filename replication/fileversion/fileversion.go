// Package fileversion owns the format versions of a node's files (node.db,
// fsm.db and the snapshots that copy it, the raft log) and of backup archives.
// Each file carries its version; a node checks it at start and refuses a
// version it does not read, naming the file, the version found and the
// versions it reads, rather than misread the file. A file written before
// versions existed has none: it is read as version 1 and stamped so.
package fileversion

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// ErrUnreadable marks a file whose format version this binary does not read.
var ErrUnreadable = errors.New("format version not readable by this binary")

// Format is one kind of file: its name in messages, the version this
// binary writes, and every version it reads (Current among them).
type Format struct {
	Name    string
	Current int
	Reads   []int
}

// Unversioned is the version of a file written before versions existed.
const Unversioned = 1

// Check judges the version stamp read from a file at path: found is the
// stamp as stored, nil when there is none. A fresh (just created) file is
// of the Current version, a file without a stamp of version 1. It returns
// that version, or an error wrapping ErrUnreadable.
func (f Format) Check(path string, found []byte, fresh bool) (int, error) {
	switch {
	case found == nil && fresh:
		return f.Current, nil
	case found == nil:
		return f.read(path, Unversioned, "no version (written before versions existed: version 1)")
	}
	v, err := strconv.Atoi(string(found))
	if err != nil || v < 1 || strconv.Itoa(v) != string(found) {
		return 0, fmt.Errorf("%s: unknown format version %q; this binary reads %s: %w",
			f.where(path), found, f.reads(), ErrUnreadable)
	}
	return f.read(path, v, "format version "+string(found))
}

func (f Format) read(path string, v int, what string) (int, error) {
	if slices.Contains(f.Reads, v) {
		return v, nil
	}
	hint := ""
	if v > slices.Max(f.Reads) {
		hint = " (written by a newer watchfed: run that version, or a newer one)"
	}
	return 0, fmt.Errorf("%s: %s; this binary reads %s%s: %w", f.where(path), what, f.reads(), hint, ErrUnreadable)
}

// where names the file in messages: its kind, and its path if known.
func (f Format) where(path string) string {
	if path == "" {
		return f.Name
	}
	return f.Name + " " + path
}

func (f Format) reads() string {
	var s []string
	for _, v := range f.Reads {
		s = append(s, strconv.Itoa(v))
	}
	if len(s) == 1 {
		return "version " + s[0]
	}
	return "versions " + strings.Join(s, ", ")
}

// Stamp is the stored form of version v.
func Stamp(v int) []byte { return []byte(strconv.Itoa(v)) }

// CheckBolt checks the stamp under key in bucket b of the bbolt file at
// path, inside the caller's write transaction, and stamps the version found
// when the file had none (fresh: the file was just created). It returns the
// file's version.
func (f Format) CheckBolt(b *bolt.Bucket, key []byte, path string, fresh bool) (int, error) {
	found := b.Get(key)
	v, err := f.Check(path, found, fresh)
	if err != nil || found != nil {
		return v, err
	}
	return v, b.Put(key, Stamp(v))
}
