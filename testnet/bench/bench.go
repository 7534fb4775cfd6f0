// Package bench measures replication as a user sees it: a 3-node federation
// over mutual TLS 1.3 on loopback, every write fsynced, records written
// through the public gRPC API and acknowledged with their log index; and the
// time a new member needs to catch up on a large log.
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
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/testnet"
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
	// Floor adds, after each watchfed row, the same number of publishers
	// against the replication floor (see floor.go).
	Floor bool
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
}

// Defaults are the figures the README reports.
func Defaults() Config {
	return Config{Publishers: []int{1, 16, 64}, Duration: 10 * time.Second, CatchUpEntries: 100_000, ValueSize: 512, ImportRecords: 20_000, Floor: true}
}

// Row is one measured workload.
type Row struct {
	System   string
	Workload string
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

// CatchUp is the time a new member took to catch up on a federation's log.
type CatchUp struct {
	Entries     int    // records the federation held
	CommitIndex uint64 // the leader's commit index when the member joined
	// Applied: until the newcomer's raft had applied up to CommitIndex.
	Applied time.Duration
	// Readable: until the newcomer could read the last record (the origin
	// granted it the history and it opened every body).
	Readable time.Duration
	// Snapshot reports whether the newcomer installed a snapshot (the log
	// before it had been compacted away).
	Snapshot bool
	// FillRate is the rate at which the entries were written (64 publishers,
	// snapshots being taken meanwhile): for information.
	FillRate float64
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

// Raft is the raft configuration of the benchmark's federations: the node's
// production defaults, with test timing for a quick first election (timing
// does not bear on commit latency on a healthy cluster).
func Raft() *raft.Config {
	c := replication.DefaultRaftConfig()
	fast := testnet.FastRaft()
	c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = fast.HeartbeatTimeout, fast.ElectionTimeout, fast.LeaderLeaseTimeout
	return c
}

// compactingRaft compacts the log often, so that a newcomer to a federation
// holding CatchUpEntries records must install a snapshot, as it would after
// months of operation under the defaults.
func compactingRaft() *raft.Config {
	c := Raft()
	c.SnapshotThreshold = 1024
	c.SnapshotInterval = time.Second
	c.TrailingLogs = 256
	return c
}

// Result is what Watchfed measured.
type Result struct {
	Rows    []Row
	CatchUp *CatchUp
}

// Watchfed measures a 3-node federation: one row per publisher count, then
// the catch-up of a fourth member on CatchUpEntries records.
func Watchfed(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "watchfed-bench-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if len(cfg.Publishers) > 0 {
		rows, err := Interleaved(ctx, filepath.Join(dir, "throughput"), cfg, nil)
		if err != nil {
			return res, err
		}
		res.Rows = rows
	}
	if cfg.CatchUpEntries > 0 {
		cu, err := catchUp(ctx, filepath.Join(dir, "catchup"), cfg)
		if err != nil {
			return res, err
		}
		res.CatchUp = cu
	}
	return res, nil
}

// RowFunc measures another system under the same load as a watchfed row.
type RowFunc func(ctx context.Context, publishers int) (Row, error)

// Interleaved measures a 3-node federation under dir, one row per publisher
// count, each followed by the row other gives for the same count (nil: none),
// so that both systems meet the same weather on a shared machine.
func Interleaved(ctx context.Context, dir string, cfg Config, other RowFunc) ([]Row, error) {
	cfg.progress("watchfed: starting 3 nodes")
	l, err := start(ctx, dir, Raft())
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var fl *floor
	if cfg.Floor {
		cfg.progress("%s: starting 3 members", FloorSystem)
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		fl, err = startFloor(sctx, filepath.Join(dir, "floor"), Raft())
		cancel()
		if err != nil {
			return nil, err
		}
		defer fl.Close()
	}
	var rows []Row
	for _, n := range cfg.Publishers {
		cfg.progress("watchfed: %d publishers for %s", n, cfg.Duration)
		row, err := createRecords(ctx, l.Nodes[0], n, cfg.Duration, cfg.ValueSize)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
		if fl != nil {
			row, err := floorRow(ctx, fl, n, cfg)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
		}
		if other != nil {
			row, err := other(ctx, n)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
		}
	}
	if cfg.ImportRecords > 0 {
		cfg.progress("watchfed: bulk import of %d records", cfg.ImportRecords)
		row, err := importRecords(ctx, l.Nodes[0], cfg.ImportRecords, cfg.ValueSize)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// ImportWorkload names the bulk row.
const ImportWorkload = "Import, one call, acked with log index"

// importRecords imports n records in one Import call, as `watchfed import`
// sends a list: the row's rate is records committed per second, and its
// latency columns are left empty (one call).
func importRecords(ctx context.Context, ln *testnet.LocalNode, n, size int) (Row, error) {
	conn, err := ln.Dial()
	if err != nil {
		return Row{}, err
	}
	defer conn.Close()
	const perMessage = 1000
	t0 := time.Now()
	stream, err := pb.NewImportServiceClient(conn).Import(ctx)
	if err != nil {
		return Row{}, err
	}
	for start := 0; start < n; start += perMessage {
		req := &pb.ImportRequest{}
		if start == 0 {
			req.Source, req.Marking = "bench", pb.Marking_MARKING_GREEN
		}
		for i := start; i < min(start+perMessage, n); i++ {
			r := Record(i, size)
			r.SourceRef = fmt.Sprintf("bench:%d", i)
			req.Records = append(req.Records, r)
		}
		if err := stream.Send(req); err != nil {
			return Row{}, fmt.Errorf("import: %w", err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return Row{}, fmt.Errorf("import: %w", err)
	}
	row := Row{System: "watchfed", Workload: ImportWorkload, Clients: 1, Ops: int(resp.Added), Elapsed: time.Since(t0)}
	if int(resp.Added) != n || resp.LogIndex == 0 {
		return row, fmt.Errorf("import: %d of %d records added, log index %d", resp.Added, n, resp.LogIndex)
	}
	return row, nil
}

func start(ctx context.Context, dir string, rc *raft.Config) (*testnet.Local, error) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return testnet.StartLocal(sctx, dir, 3, node.Options{Raft: rc, PublishWait: 30 * time.Second})
}

// Workload names the primary row: what a user's write goes through.
const Workload = "CreateRecord over gRPC, acked with log index"

// createRecords runs n publishers of CreateRecord against ln (the leader).
// Publishers share connections, 8 to a connection, as an importer would.
func createRecords(ctx context.Context, ln *testnet.LocalNode, n int, d time.Duration, size int) (Row, error) {
	conns, err := dialN(ln, (n+7)/8)
	if err != nil {
		return Row{}, err
	}
	defer closeAll(conns)
	var seq atomic.Int64
	return Load(ctx, "watchfed", Workload, n, d, func(ctx context.Context, c int) error {
		_, _, err := create(ctx, conns[c%len(conns)], int(seq.Add(1)), size)
		return err
	})
}

// create writes the i-th record and returns its id and log index once it is
// acknowledged.
func create(ctx context.Context, conn *grpc.ClientConn, i, size int) (string, uint64, error) {
	resp, err := pb.NewRecordServiceClient(conn).CreateRecord(ctx, &pb.CreateRecordRequest{Record: Record(i, size)})
	if err != nil {
		return "", 0, err
	}
	if resp.LogIndex == 0 {
		return "", 0, fmt.Errorf("record %s acknowledged without a log index", resp.Record.GetId())
	}
	return resp.Record.GetId(), resp.LogIndex, nil
}

func dialN(ln *testnet.LocalNode, n int) ([]*grpc.ClientConn, error) {
	var conns []*grpc.ClientConn
	for range n {
		c, err := ln.Dial()
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []*grpc.ClientConn) {
	for _, c := range conns {
		c.Close()
	}
}

// catchUp fills a federation with cfg.CatchUpEntries records, waits until
// the log before them is compacted, then adds a fourth member and times it.
func catchUp(ctx context.Context, dir string, cfg Config) (*CatchUp, error) {
	cfg.progress("watchfed catch-up: starting 3 nodes")
	l, err := start(ctx, dir, compactingRaft())
	if err != nil {
		return nil, err
	}
	defer l.Close()
	leader := l.Nodes[0]
	cfg.progress("watchfed catch-up: writing %d records with 64 publishers", cfg.CatchUpEntries)
	conns, err := dialN(leader, 8)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		fillErr error
		mu      sync.Mutex
		lastID  string // the record committed last
		lastIdx uint64
	)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t0 := time.Now()
	for c := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fctx.Err() == nil {
				i := next.Add(1)
				if i > int64(cfg.CatchUpEntries) {
					return
				}
				id, idx, err := create(fctx, conns[c%len(conns)], int(i), cfg.ValueSize)
				if err != nil {
					errOnce.Do(func() { fillErr = err; cancel() })
					return
				}
				mu.Lock()
				if idx > lastIdx {
					lastID, lastIdx = id, idx
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if fillErr != nil {
		return nil, fmt.Errorf("fill: %w", fillErr)
	}
	cu := &CatchUp{Entries: cfg.CatchUpEntries, FillRate: float64(cfg.CatchUpEntries) / time.Since(t0).Seconds()}

	conn := conns[0]
	fed := pb.NewFederationServiceClient(conn)
	// Wait until the leader's snapshot lets raft compact the start of the log.
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		st, err := fed.GetStatus(ctx, &pb.GetStatusRequest{})
		if err != nil {
			return false, err
		}
		return st.SnapshotIndex > compactingRaft().TrailingLogs+1, nil
	}); err != nil {
		return nil, fmt.Errorf("leader took no snapshot: %w", err)
	}
	st, err := fed.GetStatus(ctx, &pb.GetStatusRequest{})
	if err != nil {
		return nil, err
	}
	cu.CommitIndex = st.CommitIndex
	cfg.progress("watchfed catch-up: %d records up to log index %d; adding a fourth member", cu.Entries, cu.CommitIndex)

	start := time.Now()
	actx, acancel := context.WithTimeout(ctx, 5*time.Minute)
	defer acancel()
	ln, err := l.Add(actx)
	if err != nil {
		return nil, fmt.Errorf("add member: %w", err)
	}
	nc, err := ln.Dial()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	nfed, nshared := pb.NewFederationServiceClient(nc), pb.NewSharedServiceClient(nc)
	var applied, readable bool
	err = waitFor(actx, 5*time.Minute, func() (bool, error) {
		if !applied {
			st, err := nfed.GetStatus(actx, &pb.GetStatusRequest{})
			if err != nil {
				return false, err
			}
			if st.AppliedIndex >= cu.CommitIndex {
				applied, cu.Applied, cu.Snapshot = true, time.Since(start), st.SnapshotIndex > 0
			}
		}
		if !readable {
			if _, err := nshared.GetShared(actx, &pb.GetSharedRequest{Id: lastID}); err == nil {
				readable, cu.Readable = true, time.Since(start)
			}
		}
		return applied && readable, nil
	})
	if err != nil {
		return nil, fmt.Errorf("newcomer did not catch up (applied %v, readable %v): %w", applied, readable, err)
	}
	return cu, nil
}

// waitFor polls cond until it holds, fails, or the deadline passes.
func waitFor(ctx context.Context, d time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil && ctx.Err() == nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

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

// WriteTable prints rows and the catch-up figure.
func WriteTable(w io.Writer, rows []Row, cu *CatchUp) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\tworkload\tclients\tops\tops/s\tp50 ms\tp99 ms\t")
	for _, r := range rows {
		if r.P99 == 0 { // one bulk call: no distribution
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t-\t-\t\n", r.System, r.Workload, r.Clients, r.Ops, r.PerSecond())
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%.2f\t%.2f\t\n", r.System, r.Workload, r.Clients, r.Ops, r.PerSecond(), ms(r.P50), ms(r.P99))
	}
	if err := tw.Flush(); err != nil {
		return err
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
