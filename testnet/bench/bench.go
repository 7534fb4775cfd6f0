// Package bench measures replication as a user sees it: a 3-node federation
// over mutual TLS 1.3 on loopback, every write fsynced, records written
// through the public gRPC API at the leader and at a follower and
// acknowledged with their log index; the same across delayed links between
// 3 and 5 agencies (wan.go); and the time a new member needs to catch up on
// a large log (catchup.go).
//
// It prints a table; the nested module testnet/etcdbench adds the same load
// against an embedded etcd cluster, so etcd stays out of watchfed's
// dependencies.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Config describes a run.
type Config struct {
	// Dir holds the federations' data; empty makes (and removes) a temporary one.
	Dir string
	// Publishers are the numbers of concurrent publishers, one row each.
	Publishers []int
	// Duration of each row after its warm-up.
	Duration time.Duration
	// CatchUpEntries is how many records the federation holds when a new
	// member joins; 0 skips the catch-up measurement.
	CatchUpEntries int
	// ValueSize is the encoded size of each record as sent (and of each etcd value).
	ValueSize int
	// ImportRecords is the size of the bulk-import row: that many records in
	// one Import call, acknowledged with the log index once all are
	// committed; 0 skips it.
	ImportRecords int
	// Floor adds, after each watchfed row at the leader, the same number of
	// publishers against the replication floor (see floor.go).
	Floor bool
	// Followers adds, for each number of publishers, rows of writes at a
	// follower.
	Followers bool
	// WAN are the federations across delayed links to measure (wan.go),
	// with WANPublishers publishers at the leader and at a follower.
	WAN           []WANCase
	WANPublishers []int
	// WANFloor adds, after each WAN row at the leader, the same publishers
	// against a replication floor of as many members behind the same
	// delayed links (the loopback floor rows are Floor's).
	WANFloor bool
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
	// CatchUpProfile, if set, receives a CPU profile of the newcomer's
	// catch-up alone (from its joining until every record is readable).
	CatchUpProfile io.Writer
	// ImportProfile, if set, receives a CPU profile of the bulk-import row
	// alone (the Import call, from its first message to its answer).
	ImportProfile io.Writer
	// ProductionRaft runs the loopback federation and floor on the node's
	// production raft timing instead of the test timing (Raft).
	ProductionRaft bool
	// ImportAllocProfile, if set, receives the allocation profile
	// (pprof's allocs) taken once the bulk import is answered: allocations
	// since the process started, of which a short run's import is most.
	ImportAllocProfile io.Writer
}

// Defaults are the figures the README reports.
func Defaults() Config {
	return Config{Publishers: []int{1, 16, 64}, Duration: 10 * time.Second, CatchUpEntries: 100_000, ValueSize: 512, ImportRecords: 20_000,
		Floor: true, Followers: true, WAN: DefaultWAN(), WANPublishers: []int{1, 16}, WANFloor: true}
}

// Site is where the publishers of a row write.
type Site int

const (
	AtLeader Site = iota
	AtFollower
)

func (s Site) String() string {
	if s == AtFollower {
		return "follower"
	}
	return "leader"
}

// Loopback names the network of the 3-member rows: loopback, no delay.
const Loopback = "loopback"

// Row is one measured workload.
type Row struct {
	System   string
	Workload string
	// Net is the network (Loopback or a WANCase's name), At where the
	// publishers wrote.
	Net      string
	At       Site
	Clients  int
	Ops      int
	Elapsed  time.Duration
	P50, P99 time.Duration
}

// PerSecond is the row's throughput.
func (r Row) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

func (c Config) progress(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format+"\n", args...)
	}
}

// Op is one write by client c; it returns an error when the write was not
// acknowledged as committed.
type Op func(ctx context.Context, c int) error

// Load runs clients concurrent callers of op: a warm-up of a tenth of d
// (at least a second), then d measured. Every failed call fails the row.
func Load(ctx context.Context, system, workload string, clients int, d time.Duration, op Op) (Row, error) {
	warm := max(d/10, time.Second)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		measuring atomic.Bool
		wg        sync.WaitGroup
		mu        sync.Mutex
		lat       []time.Duration
		firstErr  error
	)
	start := make(chan struct{})
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			<-start
			for ctx.Err() == nil {
				t := time.Now()
				err := op(ctx, c)
				took := time.Since(t)
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						cancel()
					}
					break
				}
				if measuring.Load() {
					mine = append(mine, took)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	close(start)
	row := Row{System: system, Workload: workload, Clients: clients}
	select {
	case <-time.After(warm):
	case <-ctx.Done():
	}
	measuring.Store(true)
	t0 := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	measuring.Store(false)
	row.Elapsed = time.Since(t0)
	cancel()
	wg.Wait()
	if firstErr != nil {
		return row, fmt.Errorf("%s %s with %d clients: %w", system, workload, clients, firstErr)
	}
	// Calls that finished after the window closed are not counted: they may
	// have been cut short.
	slices.Sort(lat)
	row.Ops = len(lat)
	row.P50, row.P99 = Percentile(lat, 0.50), Percentile(lat, 0.99)
	return row, nil
}

// Percentile is the q-th quantile of sorted latencies, 0 when there are none.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// Record returns the i-th benchmark record, padded so that it encodes to
// size bytes as sent.
func Record(i int, size int) *pb.Record {
	r := &pb.Record{
		Marking: pb.Marking_MARKING_GREEN,
		Subject: &pb.Subject{
			Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: fmt.Sprintf("Bench Trading Company %d", i),
			Countries: []string{"RU"},
		},
		Detail: &pb.Record_Designation{Designation: &pb.Designation{Program: "BENCH", Measures: []string{"asset-freeze"}}},
	}
	d := r.GetDesignation()
	d.Statement = padding[:max(0, min(len(padding), size-proto.Size(r)-3))]
	for proto.Size(r) < size && len(d.Statement) < len(padding) {
		d.Statement = padding[:len(d.Statement)+1]
	}
	for proto.Size(r) > size && len(d.Statement) > 0 {
		d.Statement = d.Statement[:len(d.Statement)-1]
	}
	return r
}

var padding = func() string {
	const words = "statement of reasons: supplies dual-use goods to a listed end user; "
	b := make([]byte, 0, 8192)
	for len(b) < cap(b) {
		b = append(b, words...)
	}
	return string(b[:8192])
}()

// Machine describes where the figures were taken.
func Machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s/%s, %s, %s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
}

// WriteTable prints rows, what each system's rows do, and the catch-up figure.
func WriteTable(w io.Writer, rows []Row, cu *CatchUp) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\tnetwork\twrites at\tclients\tops\tops/s\tp50 ms\tp99 ms\t")
	var legend []string
	for _, r := range rows {
		if l := r.System + ": " + r.Workload; !slices.Contains(legend, l) {
			legend = append(legend, l)
		}
		net := r.Net
		if net == "" {
			net = Loopback
		}
		if r.P99 == 0 { // one bulk call: no distribution
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.0f\t-\t-\t\n", r.System, net, r.At, r.Clients, r.Ops, r.PerSecond())
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.0f\t%.2f\t%.2f\t\n", r.System, net, r.At, r.Clients, r.Ops, r.PerSecond(), ms(r.P50), ms(r.P99))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, l := range legend {
		fmt.Fprintln(w, l)
	}
	if cu != nil {
		how := "by log replay"
		if cu.Snapshot {
			how = "by snapshot install"
		}
		fmt.Fprintf(w, "\ncatch-up of a new member on %d records (log index %d, written at %.0f/s): raft applied in %.1f s (%s), all records readable in %.1f s\n",
			cu.Entries, cu.CommitIndex, cu.FillRate, cu.Applied.Seconds(), how, cu.Readable.Seconds())
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
