package testnet

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestWaitExited: stopping a node waits until its process has exited,
// killing one that ignores SIGTERM once the grace period passes, and takes
// a process that exited but is not yet reaped (a zombie) as exited.
func TestWaitExited(t *testing.T) {
	for _, tc := range []struct {
		name       string
		script     string
		wantKilled bool
	}{
		{"exits on SIGTERM", "echo ready; exec sleep 60", false},
		{"ignores SIGTERM", "trap '' TERM; echo ready; while :; do sleep 1; done", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", tc.script)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			// Signalled once its trap is set: it says so.
			if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
				t.Fatalf("script said %q: %v", line, err)
			}
			_, start, err := procStat(cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			p := NodeProcess{Agency: "XX", PID: cmd.Process.Pid, start: start}
			if procExited(p) {
				t.Fatal("a running process taken as exited")
			}
			if procExited(NodeProcess{PID: p.PID, start: start + 1}) == false {
				t.Fatal("another process under the pid taken as the node")
			}
			if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			// Not reaped until the test's cleanup: it stays a zombie.
			killed, err := waitExited(context.Background(), p, time.Now().Add(500*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			if killed != tc.wantKilled {
				t.Errorf("killed = %v, want %v", killed, tc.wantKilled)
			}
			if state, _, err := procStat(p.PID); err == nil && state != 'Z' {
				t.Errorf("state %c after waitExited", state)
			}
		})
	}
	if state, _, err := procStat(os.Getpid()); err != nil || state == 'Z' {
		t.Fatalf("own state %c: %v", state, err)
	}
}
