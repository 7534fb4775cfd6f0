package testnet

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// echoServer answers every line with itself.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line through the link and waits up to d for the echo.
func roundTrip(c net.Conn, r *bufio.Reader, d time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(d)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err == nil && line != "ping\n" {
		return errors.New("garbled: " + line)
	}
	return err
}

func TestLinkFaults(t *testing.T) {
	l, err := newLink(0, 1, echoServer(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", l.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}

	c, r := dial()
	if err := roundTrip(c, r, 5*time.Second); err != nil {
		t.Fatalf("healthy link: %v", err)
	}

	// Partitioned: an open connection and a new one both go silent.
	l.Block()
	if err := roundTrip(c, r, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("open connection across a partition: %v, want a timeout", err)
	}
	c2, r2 := dial()
	if err := roundTrip(c2, r2, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("new connection across a partition: %v, want a timeout", err)
	}

	// Healed: connections inside the partition are reset, new ones work.
	l.Heal()
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("a connection that lost bytes in the partition was not reset")
	}
	c3, r3 := dial()
	if err := roundTrip(c3, r3, 5*time.Second); err != nil {
		t.Fatalf("after heal: %v", err)
	}

	// Latency: a round trip crosses the link twice.
	l.Set(100*time.Millisecond, 0)
	start := time.Now()
	if err := roundTrip(c3, r3, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("round trip took %v with 100ms latency each way", d)
	}

	// Cut: open connections are reset.
	l.Set(0, 0)
	l.Cut()
	if _, err := r3.ReadString('\n'); err == nil {
		t.Fatal("connection survived a cut")
	}

	// Drop: with certainty, the first chunk resets the connection.
	l.Set(0, 1)
	c4, r4 := dial()
	if err := roundTrip(c4, r4, 5*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("drop=1: %v, want a reset", err)
	}
}

func TestPartitionGroups(t *testing.T) {
	addrs := []string{echoServer(t), echoServer(t), echoServer(t)}
	ls, err := newLinks(addrs, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	ls.Partition([]int{0}, []int{1, 2})
	for _, tc := range []struct {
		from, to int
		blocked  bool
	}{{0, 1, true}, {1, 0, true}, {0, 2, true}, {2, 0, true}, {1, 2, false}, {2, 1, false}} {
		if got := ls.Link(tc.from, tc.to).blocked; got != tc.blocked {
			t.Errorf("%d→%d blocked %v, want %v", tc.from, tc.to, got, tc.blocked)
		}
	}
	ls.Heal()
	ls.OneWay(1, 2)
	if !ls.Link(1, 2).blocked || ls.Link(2, 1).blocked {
		t.Error("one-way 1↛2 must block 1→2 only")
	}
	routes := ls.Routes(0, addrs)
	if len(routes) != 2 || routes[addrs[1]] != ls.Link(0, 1).Addr {
		t.Errorf("routes of 0: %v", routes)
	}
}
