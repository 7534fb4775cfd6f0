package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/watchfed/watchfed/node"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/testnet"
)

// Most agencies are followers, and their links cross borders. The WAN rows
// run a federation whose every link between two agencies goes through a
// testnet proxy that delays what it carries by a fixed time each way, so
// one round trip between agencies is twice the delay. A write at a follower
// then costs at least a forward round trip to the leader and a replication
// round trip from it: the bound the rows are read against.

// WANCase is a federation of Agencies whose links delay what they carry by
// Delay each way.
type WANCase struct {
	Agencies int
	Delay    time.Duration
}

// String names the case's network in the table.
func (c WANCase) String() string {
	return fmt.Sprintf("%d agencies, %s one way", c.Agencies, c.Delay)
}

// FollowerBound is what a follower's commit should take at the median: one
// forward round trip, one replication round trip, and 5 ms of work.
func (c WANCase) FollowerBound() time.Duration { return 4*c.Delay + 5*time.Millisecond }

// DefaultWAN are 3 and 5 agencies, 10 ms (neighbours) and 40 ms (across a
// continent) apart.
func DefaultWAN() []WANCase {
	return []WANCase{{3, 10 * time.Millisecond}, {3, 40 * time.Millisecond}, {5, 10 * time.Millisecond}, {5, 40 * time.Millisecond}}
}

// ParseWAN reads cases written as AGENCIESxDELAY, e.g. "3x10ms".
func ParseWAN(s string) (WANCase, error) {
	var c WANCase
	var d string
	if _, err := fmt.Sscanf(s, "%dx%s", &c.Agencies, &d); err != nil {
		return c, fmt.Errorf("%q: want AGENCIESxDELAY, like 3x10ms", s)
	}
	delay, err := time.ParseDuration(d)
	if err != nil || delay < 0 || c.Agencies < 3 || c.Agencies > 7 {
		return c, fmt.Errorf("%q: want 3 to 7 agencies and a delay like 10ms", s)
	}
	c.Delay = delay
	return c, nil
}

// wanRaft is the node's production raft timing: the test timing of the
// loopback rows would call elections on links this slow.
func wanRaft() *raft.Config { return replication.DefaultRaftConfig() }

// WAN measures each of cfg.WAN: a federation of that many agencies over
// delayed links, cfg.WANPublishers publishers at the leader and then at a
// follower, each row followed by other's same row (other nil: none).
func WAN(ctx context.Context, dir string, cfg Config, other Other) ([]Row, error) {
	var rows []Row
	for k, c := range cfg.WAN {
		got, err := wanCase(ctx, filepath.Join(dir, fmt.Sprint(k)), c, cfg, other)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c, err)
		}
		rows = append(rows, got...)
	}
	return rows, nil
}

func wanCase(ctx context.Context, dir string, c WANCase, cfg Config, other Other) ([]Row, error) {
	rtt, err := linkRoundTrip(ctx, c.Delay)
	if err != nil {
		return nil, err
	}
	cfg.progress("%s: a round trip through one delayed link takes %.2f ms (p50 of %d, 512 bytes each way): a follower's bound from it is %.2f ms (two round trips and 5 ms; %.2f ms from the delay alone)",
		c, ms(rtt), rttProbes, ms(2*rtt+5*time.Millisecond), ms(c.FollowerBound()))
	cfg.progress("watchfed (%s): starting %d agencies", c, c.Agencies)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	l, err := testnet.StartLocalLinked(sctx, dir, c.Agencies, node.Options{Raft: wanRaft(), PublishWait: 30 * time.Second}, c.Delay)
	cancel()
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var fl *floor
	if cfg.WANFloor {
		cfg.progress("%s (%s): starting %d members", FloorSystem, c, c.Agencies)
		sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		fl, err = startFloorLinked(sctx, filepath.Join(dir, "floor"), wanRaft(), c.Agencies, c.Delay)
		cancel()
		if err != nil {
			return nil, err
		}
		defer fl.Close()
	}
	var oc OtherCluster
	if other != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		oc, err = other.Start(sctx, c.Agencies, c.Delay)
		cancel()
		if err != nil {
			return nil, err
		}
		defer oc.Close()
	}
	var rows []Row
	for _, n := range cfg.WANPublishers {
		for _, at := range []Site{AtLeader, AtFollower} {
			row, err := watchfedRow(ctx, l, n, at, c.String(), cfg)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
			if fl != nil && at == AtLeader {
				row, err := floorRow(ctx, fl, n, cfg)
				if err != nil {
					return nil, err
				}
				row.Net = c.String()
				rows = append(rows, row)
			}
			if oc != nil {
				row, err := oc.Row(ctx, n, at, c.String())
				if err != nil {
					return nil, err
				}
				rows = append(rows, row)
			}
		}
	}
	return rows, nil
}

// rttProbes is how many round trips linkRoundTrip times.
const rttProbes = 40

// linkRoundTrip measures what one round trip through a link of the WAN
// rows takes (the delay both ways and the proxy's own cost), with a
// 512-byte message each way to an echo server: the round trip the follower
// bound means, as this machine's proxies give it.
func linkRoundTrip(ctx context.Context, delay time.Duration) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("echo server: %w", err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	link, err := testnet.NewLink(ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer link.Close()
	link.Set(delay, 0)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", link.Addr)
	if err != nil {
		return 0, fmt.Errorf("dial the link: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	msg, back := make([]byte, 512), make([]byte, 512)
	took := make([]time.Duration, rttProbes)
	for i := range took {
		start := time.Now()
		if _, err := conn.Write(msg); err != nil {
			return 0, fmt.Errorf("round trip through the link: %w", err)
		}
		if _, err := io.ReadFull(conn, back); err != nil {
			return 0, fmt.Errorf("round trip through the link: %w", err)
		}
		took[i] = time.Since(start)
	}
	slices.Sort(took)
	return took[len(took)/2], nil
}
