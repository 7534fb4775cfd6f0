package diskfull

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

func TestIs(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"enospc", &os.PathError{Op: "write", Path: "fsm.db", Err: syscall.ENOSPC}, true},
		{"edquot wrapped", fmt.Errorf("commit: %w", syscall.EDQUOT), true},
		{"message only", fmt.Errorf("file resize error: %s", syscall.ENOSPC), true},
		{"other", &os.PathError{Op: "write", Path: "fsm.db", Err: syscall.EIO}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Is(tc.err); got != tc.want {
				t.Fatalf("Is(%v) = %v, want %v", tc.err, got, tc.want)
			}
			w := Wrap("/d/fsm.db", tc.err)
			if errors.Is(w, ErrDiskFull) != tc.want {
				t.Fatalf("Wrap(%v) = %v: wraps ErrDiskFull %v, want %v", tc.err, w, !tc.want, tc.want)
			}
		})
	}
}
