package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

func TestRecordSize(t *testing.T) {
	for _, size := range []int{128, 512, 513, 4096} {
		for _, i := range []int{1, 99, 123456} {
			if got := proto.Size(Record(i, size)); got != size {
				t.Errorf("Record(%d, %d) encodes to %d bytes", i, size, got)
			}
		}
	}
}

// TestFloorReplicates: the floor's rows measure real replication. Its
// publications reach all three members' replicated state, and a publication
// its claimed origin did not sign is refused there as on a node.
func TestFloorReplicates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := startFloor(ctx, t.TempDir(), Raft())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const n = 20
	for range n {
		if err := f.publish(ctx, 512); err != nil {
			t.Fatal(err)
		}
	}
	signer := f.origin.Sign
	_, f.origin.Sign, _ = ed25519.GenerateKey(rand.Reader)
	if err := f.publish(ctx, 512); err == nil {
		t.Error("a publication signed by another key was applied")
	}
	f.origin.Sign = signer
	// Whichever member led applied every publication: the furthest one.
	var last uint64
	for _, m := range f.c.Members {
		last = max(last, m.Rep.Applied())
	}
	for _, m := range f.c.Members {
		err := waitFor(ctx, 10*time.Second, func() (bool, error) { return m.Rep.Applied() >= last, nil })
		if err != nil {
			t.Fatalf("%s applied %d, want %d", m.ID, m.Rep.Applied(), last)
		}
		es, err := m.Rep.Entries(0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != n {
			t.Errorf("%s holds %d publications, want %d", m.ID, len(es), n)
		}
	}
}

// TestFloorLinked: the WAN rows' floor runs its members behind delaying
// proxies, one for each directed pair, and its leader replicates through
// them (the followers dial nobody while no election is called).
func TestFloorLinked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := startFloorLinked(ctx, t.TempDir(), wanRaft(), 3, 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 5 {
		if err := f.publish(ctx, 512); err != nil {
			t.Fatal(err)
		}
	}
	var last uint64
	for _, m := range f.c.Members {
		last = max(last, m.Rep.Applied())
	}
	if err := f.c.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	leader, err := f.c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.links.mu.Lock()
	defer f.links.mu.Unlock()
	for _, to := range f.c.Members {
		if to != leader && f.links.by[[2]string{leader.ID, to.Addr}] == nil {
			t.Errorf("the leader %s reached %s by no link", leader.ID, to.ID)
		}
	}
}

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 51 * time.Millisecond}, {0.99, 100 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := Percentile(lat, tc.q); got != tc.want {
			t.Errorf("Percentile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := Percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}

// BenchmarkCreateRecord writes b.N records through the gRPC API of the
// leader of a 3-node federation (mutual TLS, fsync), each acknowledged with
// its log index, from 1, 16 and 64 concurrent publishers.
//
//	go test -run '^$' -bench CreateRecord -benchtime 20000x ./testnet/bench
func BenchmarkCreateRecord(b *testing.B) {
	l, err := start(context.Background(), b.TempDir(), Raft())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var seq atomic.Int64
	for _, n := range Defaults().Publishers {
		b.Run(fmt.Sprintf("publishers=%d", n), func(b *testing.B) {
			conns, err := dialN(l.Nodes[0], (n+7)/8)
			if err != nil {
				b.Fatal(err)
			}
			defer closeAll(conns)
			RunN(b, b.N, n, func(ctx context.Context, c int) error {
				_, _, err := create(ctx, conns[c%len(conns)], int(seq.Add(1)), Defaults().ValueSize)
				return err
			})
		})
	}
}

// BenchmarkCatchUp times a fourth member joining a federation that holds
// 100,000 records, the log before them compacted into a snapshot.
//
//	go test -run '^$' -bench CatchUp -benchtime 1x -timeout 30m ./testnet/bench
func BenchmarkCatchUp(b *testing.B) {
	cfg := Defaults()
	for i := range b.N {
		cu, err := catchUp(context.Background(), filepath.Join(b.TempDir(), fmt.Sprint(i)), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(cu.Applied.Seconds(), "applied-s")
		b.ReportMetric(cu.Readable.Seconds(), "readable-s")
	}
}

// TestImportRow: the bulk row imports every record in one call, and the
// table prints its rate without latency columns.
func TestImportRow(t *testing.T) {
	l, err := start(context.Background(), t.TempDir(), Raft())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	row, err := importRecords(context.Background(), l.Nodes[0], 300, Defaults().ValueSize)
	if err != nil {
		t.Fatal(err)
	}
	if row.Ops != 300 || row.PerSecond() <= 0 {
		t.Fatalf("row %+v", row)
	}
	var out strings.Builder
	if err := WriteTable(&out, []Row{row}, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), ImportWorkload) || !strings.Contains(out.String(), "  -  ") {
		t.Fatalf("table:\n%s", out.String())
	}
}

// BenchmarkCatchUpAfterImport times a fourth member joining a federation
// whose origin imported 20,000 records in one call (20 publications of
// 1,024 records): until it can read every one of them.
//
//	go test -run '^$' -bench CatchUpAfterImport -benchtime 1x ./testnet/bench
func BenchmarkCatchUpAfterImport(b *testing.B) {
	const records = 20_000
	ctx := context.Background()
	for range b.N {
		l, err := start(ctx, b.TempDir(), Raft())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := importRecords(ctx, l.Nodes[0], records, Defaults().ValueSize); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		ln, err := l.Add(ctx)
		if err != nil {
			b.Fatal(err)
		}
		err = waitFor(ctx, 5*time.Minute, func() (bool, error) {
			n, err := countShared(ctx, ln)
			return n >= records, err
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "readable-s")
		l.Close()
	}
}

// BenchmarkFloor measures the replication floor (floor.go): raft, its raft-wal
// log store, the FSM and the gRPC transport under mutual TLS, with none of
// watchfed's work on a record, from 1, 16 and 64 concurrent publishers.
//
//	go test -run '^$' -bench Floor -benchtime 20000x ./testnet/bench
func BenchmarkFloor(b *testing.B) {
	f, err := startFloor(context.Background(), b.TempDir(), Raft())
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, n := range Defaults().Publishers {
		b.Run(fmt.Sprintf("publishers=%d", n), func(b *testing.B) {
			RunN(b, b.N, n, func(ctx context.Context, _ int) error { return f.publish(ctx, Defaults().ValueSize) })
		})
	}
}

func TestParseWAN(t *testing.T) {
	tests := []struct {
		in   string
		want WANCase
		ok   bool
	}{
		{"3x10ms", WANCase{3, 10 * time.Millisecond}, true},
		{"5x40ms", WANCase{5, 40 * time.Millisecond}, true},
		{"3x0s", WANCase{3, 0}, true},
		{"2x10ms", WANCase{}, false}, // fewer than 3 agencies
		{"8x10ms", WANCase{}, false},
		{"3x10", WANCase{}, false}, // no unit
		{"3", WANCase{}, false},
		{"x10ms", WANCase{}, false},
	}
	for _, tc := range tests {
		got, err := ParseWAN(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseWAN(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if b := (WANCase{3, 10 * time.Millisecond}).FollowerBound(); b != 45*time.Millisecond {
		t.Errorf("bound of 10 ms one way = %s; want 45ms (two round trips and 5 ms)", b)
	}
}

// TestLinkRoundTrip: the measured round trip of a delayed link carries the
// delay both ways (it can never be shorter), and an undelayed one answers.
func TestLinkRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, delay := range []time.Duration{0, 5 * time.Millisecond} {
		rtt, err := linkRoundTrip(ctx, delay)
		if err != nil {
			t.Fatal(err)
		}
		if rtt < 2*delay || rtt <= 0 {
			t.Errorf("round trip through a link delaying %s each way: %s; want at least %s", delay, rtt, 2*delay)
		}
	}
}
