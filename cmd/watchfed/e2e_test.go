package main

// End-to-end tests: they build the real binary, start real node processes on
// loopback and drive them with the CLI over mutual TLS, as a user would.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/testnet"
)

var watchfedBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "watchfed-bin")
	if err != nil {
		panic(err)
	}
	watchfedBin = filepath.Join(dir, "watchfed")
	out, err := exec.Command("go", "build", "-o", watchfedBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build watchfed: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// devNode is a `watchfed node --dev` process.
type devNode struct {
	t       *testing.T
	dir     string
	addr    string
	env     []string // WATCHFED_* for the dev client certificate
	cmd     *exec.Cmd
	stderr  *bytes.Buffer
	stopped chan struct{}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testnet.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func startDevNode(t *testing.T, dir, addr string) *devNode {
	t.Helper()
	n := &devNode{t: t, dir: dir, addr: addr, stderr: &bytes.Buffer{}, stopped: make(chan struct{})}
	n.cmd = exec.Command(watchfedBin, "node", "--dev", "--data-dir", dir, "--listen", addr, "--log-format", "json")
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stderr = &lockedWriter{w: n.stderr}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.stopped) }()
	t.Cleanup(func() { n.kill() })
	sc := bufio.NewScanner(stdout)
	for len(n.env) < 4 && sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("unexpected stdout line %q", sc.Text())
		}
		n.env = append(n.env, k+"="+strings.Trim(v, "'"))
	}
	if len(n.env) < 4 {
		<-n.stopped
		t.Fatalf("node printed %d export lines; stderr:\n%s", len(n.env), n.stderr)
	}
	go func() { _, _ = bufio.NewReader(stdout).WriteTo(discard{}) }()
	n.waitHealthy()
	return n
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (n *devNode) envValue(key string) string {
	for _, kv := range n.env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	n.t.Fatalf("no %s in node env", key)
	return ""
}

// conn is a gRPC client with the dev analyst+operator certificate.
func (n *devNode) conn() *grpc.ClientConn {
	n.t.Helper()
	return n.connWith(n.envValue("WATCHFED_CLIENT_CERT"), n.envValue("WATCHFED_CLIENT_KEY"))
}

func (n *devNode) connWith(cert, key string) *grpc.ClientConn {
	n.t.Helper()
	cfg, err := pki.Files{CACert: n.envValue("WATCHFED_CACERT"), Cert: cert, Key: key}.ClientConfig()
	if err != nil {
		n.t.Fatal(err)
	}
	c, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { c.Close() })
	return c
}

// waitHealthy waits, with a deadline, for the health service to say SERVING.
func (n *devNode) waitHealthy() {
	n.t.Helper()
	c := n.conn()
	// 60 s: a loaded CI machine (load 15-30 on 2 cores) has taken seconds
	// to start a node; the deadline only bounds a failure's wait.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := healthpb.NewHealthClient(c).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		cancel()
		if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
			return
		}
		select {
		case <-n.stopped:
			// The exit status tells a crash from a signal sent by another
			// process (the node logs a signal it stops on).
			n.t.Fatalf("node exited before serving (%v); stderr:\n%s", n.cmd.ProcessState, n.stderr)
		default:
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("node not healthy after 60s: %v; stderr:\n%s", err, n.stderr)
		}
	}
}

func (n *devNode) kill() {
	if n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-n.stopped
}

// stop asks the node to shut down and waits for it.
func (n *devNode) stop() {
	n.t.Helper()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.stopped:
	case <-time.After(60 * time.Second):
		n.t.Fatal("node did not stop within 60s of SIGTERM")
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// cli runs the binary with the node's client environment plus extra.
func (n *devNode) cli(stdin string, extraEnv []string, args ...string) result {
	n.t.Helper()
	cmd := exec.Command(watchfedBin, args...)
	cmd.Env = append(append(os.Environ(), n.env...), extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		n.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs a command that must succeed and returns its stdout.
func (n *devNode) ok(args ...string) string {
	n.t.Helper()
	r := n.cli("", nil, args...)
	if r.code != 0 {
		n.t.Fatalf("watchfed %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("stdout is not one JSON value: %v\n%s", err, s)
	}
	return v
}

// rec is the part of a record's JSON the tests look at.
type rec struct {
	ID        string `json:"id"`
	Version   uint64 `json:"version"`
	Origin    string `json:"origin"`
	Marking   string `json:"marking"`
	UpdatedAt string `json:"updated_at"`
	Subject   struct {
		Name    string `json:"name"`
		Aliases []struct {
			Name string `json:"name"`
		} `json:"aliases"`
		Countries  []string `json:"countries"`
		BirthDates []string `json:"birth_dates"`
	} `json:"subject"`
	Designation *struct {
		Program string `json:"program"`
		Status  string `json:"status"`
	} `json:"designation"`
	Denial *struct {
		Status           string `json:"status"`
		ReviewBy         string `json:"review_by"`
		DeniedOn         string `json:"denied_on"`
		ControlListEntry string `json:"control_list_entry"`
	} `json:"denial"`
}
