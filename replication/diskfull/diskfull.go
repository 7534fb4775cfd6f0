// Package diskfull recognises a full disk (ENOSPC, EDQUOT) under a write and
// names it: a full disk is an outage that ends when space returns, so every
// write path refuses with ErrDiskFull (Unavailable to a caller) instead of
// crashing, and retries or lets its caller retry.
package diskfull

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// ErrDiskFull is wrapped by every write refused because its disk is full.
var ErrDiskFull = errors.New("disk full")

// Is reports whether err comes from a full disk or an exhausted quota. The
// messages are matched too: bbolt formats some of its file errors with %s,
// which drops the errno.
func Is(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrDiskFull) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error())
}

// Error is a write to Path refused for a full disk.
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("disk full: %s: %v", e.Path, e.Err) }

// Is makes errors.Is(e, ErrDiskFull) hold.
func (e *Error) Is(target error) bool { return target == ErrDiskFull }
func (e *Error) Unwrap() error        { return e.Err }

// Wrap turns a full-disk error of a write to path into an *Error naming the
// file; any other error, or one already wrapped, is returned as it is.
func Wrap(path string, err error) error {
	if !Is(err) || errors.Is(err, ErrDiskFull) {
		return err
	}
	return &Error{Path: path, Err: err}
}

// Path is the file a full-disk error names ("" if none).
func Path(err error) string {
	if e := (*Error)(nil); errors.As(err, &e) {
		return e.Path
	}
	return ""
}
