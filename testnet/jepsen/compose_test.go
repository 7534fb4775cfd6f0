package jepsen

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/watchfed/watchfed/testnet"
)

// freeBase finds n consecutive free ports on loopback.
func freeBase(t *testing.T, n int) int {
	t.Helper()
	for base := 21000 + os.Getpid()%5000; base < 60000; base += n {
		ok := true
		for i := 0; i < n && ok; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free ports")
	return 0
}

// TestDockerFederation builds the FROM scratch image around the static
// binary, starts the three-agency compose federation, and runs the Jepsen
// checker while containers are disconnected from the network, killed,
// paused, reconnected and restarted. WATCHFED_FAULTS narrows the kinds.
func TestDockerFederation(t *testing.T) {
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("no Docker engine here (docker info: %v: %s): skipped", err, out)
	}
	if os.Getenv("WATCHFED_DOCKER") != "1" {
		t.Skip("Docker engine present; this test takes minutes: WATCHFED_DOCKER=1 go test ./testnet/jepsen -run TestDockerFederation")
	}
	bin := watchfedBinary(t, "")
	ctxDir := t.TempDir()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "watchfed"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	image := fmt.Sprintf("watchfed:test-%d", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := docker(ctx, "build", "-q", "-t", image, "-f", "../../Dockerfile", ctxDir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = docker(context.Background(), "rmi", "-f", image) })

	s := seed(t)
	c, err := testnet.PrepareCompose(t.TempDir(), fmt.Sprintf("wfjepsen%d", os.Getpid()), image, 3, freeBase(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i := range c.Members {
				t.Logf("%s:\n%s", c.Container(i), c.Logs(i))
			}
		}
		if err := c.Down(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if err := c.Up(ctx); err != nil {
		t.Fatal(err)
	}
	rep := runJepsen(t, &Jepsen{Target: c, Seed: s, Faults: faultsFromEnv(), Duration: 45 * time.Second, Hold: 3 * time.Second, Quiet: 2 * time.Second})
	for _, l := range rep.FaultLog {
		t.Log(l)
	}
	requireOK(t, rep)
	if rep.Cycles < 3 || rep.Acked < 10 {
		t.Fatalf("too little happened: %d cycles, %d acknowledged", rep.Cycles, rep.Acked)
	}
}

// docker runs one docker command, its output in the error.
func docker(ctx context.Context, args ...string) error {
	if out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
