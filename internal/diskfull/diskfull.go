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

// Wrap turns a full-disk error of a write to path into one wrapping
// ErrDiskFull and naming the file; any other error is returned as it is.
func Wrap(path string, err error) error {
	if !Is(err) || errors.Is(err, ErrDiskFull) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrDiskFull, path, err)
}
