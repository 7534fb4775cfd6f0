package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	"github.com/watchfed/watchfed/node"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/testnet"
)

// Raft is the raft configuration of the benchmark's federations: the node's
// production defaults, with test timing for a quick first election (timing
// does not bear on commit latency on a healthy cluster).
func Raft() *raft.Config {
	c := replication.DefaultRaftConfig()
	fast := testnet.FastRaft()
	c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = fast.HeartbeatTimeout, fast.ElectionTimeout, fast.LeaderLeaseTimeout
	return c
}

// loopbackRaft is the timing of the loopback federation and floor: Raft's
// test timing, or with cfg.ProductionRaft the node's production timing
// (an election after 1 s without the leader, as etcd's default in the
// comparison). The three nodes share this process's cores, and on a loaded
// machine a 200 ms lease deposes the leader during a bulk import: its
// heartbeats wait behind the sealing and applying of MB publications.
func loopbackRaft(cfg Config) *raft.Config {
	if cfg.ProductionRaft {
		return replication.DefaultRaftConfig()
	}
	return Raft()
}

// Result is what Watchfed measured.
type Result struct {
	Rows    []Row
	CatchUp *CatchUp
}

// Watchfed measures a 3-node federation: one row per publisher count and
// site, then the WAN rows, then the catch-up of a fourth member on
// CatchUpEntries records.
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
	if len(cfg.WAN) > 0 {
		rows, err := WAN(ctx, filepath.Join(dir, "wan"), cfg, nil)
		if err != nil {
			return res, err
		}
		res.Rows = append(res.Rows, rows...)
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

// Other is another system, started and measured under the same load as
// watchfed's rows.
type Other interface {
	// Start runs its members, agencies of them, with delay added each way
	// on every link between them (0: loopback as it is).
	Start(ctx context.Context, agencies int, delay time.Duration) (OtherCluster, error)
}

// OtherCluster is another system's running members.
type OtherCluster interface {
	// Row measures publishers concurrent writers at the leader or at a
	// follower; net names the network for the row.
	Row(ctx context.Context, publishers int, at Site, net string) (Row, error)
	Close()
}

// Interleaved measures a 3-node federation under dir, one row per publisher
// count at the leader, followed by the floor's and other's rows for the same
// count, then the same at a follower (other nil: none), so that every system
// meets the same weather on a shared machine.
func Interleaved(ctx context.Context, dir string, cfg Config, other OtherCluster) ([]Row, error) {
	cfg.progress("watchfed: starting 3 nodes")
	l, err := start(ctx, dir, loopbackRaft(cfg))
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var fl *floor
	if cfg.Floor {
		cfg.progress("%s: starting 3 members", FloorSystem)
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		fl, err = startFloor(sctx, filepath.Join(dir, "floor"), loopbackRaft(cfg))
		cancel()
		if err != nil {
			return nil, err
		}
		defer fl.Close()
	}
	sites := []Site{AtLeader}
	if cfg.Followers {
		sites = append(sites, AtFollower)
	}
	var rows []Row
	for _, n := range cfg.Publishers {
		for _, at := range sites {
			row, err := watchfedRow(ctx, l, n, at, Loopback, cfg)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
			if fl != nil && at == AtLeader {
				row, err := floorRow(ctx, fl, n, cfg)
				if err != nil {
					return nil, err
				}
				rows = append(rows, row)
			}
			if other != nil {
				row, err := other.Row(ctx, n, at, Loopback)
				if err != nil {
					return nil, err
				}
				rows = append(rows, row)
			}
		}
	}
	if cfg.ImportRecords > 0 {
		cfg.progress("watchfed: bulk import of %d records", cfg.ImportRecords)
		ln, err := site(ctx, l, AtLeader)
		if err != nil {
			return nil, err
		}
		if cfg.ImportProfile != nil {
			if err := pprof.StartCPUProfile(cfg.ImportProfile); err != nil {
				return nil, fmt.Errorf("import profile: %w", err)
			}
		}
		term0 := term(ctx, ln)
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		cpu0 := processCPU()
		row, err := importRecords(ctx, ln, cfg.ImportRecords, cfg.ValueSize)
		cpu := processCPU() - cpu0
		runtime.ReadMemStats(&ms1)
		if cfg.ImportProfile != nil {
			pprof.StopCPUProfile()
		}
		if cfg.ImportAllocProfile != nil {
			if err := pprof.Lookup("allocs").WriteTo(cfg.ImportAllocProfile, 0); err != nil {
				return nil, fmt.Errorf("import alloc profile: %w", err)
			}
		}
		if err != nil {
			return nil, err
		}
		// Allocations weigh twice on a loaded machine (allocating, then
		// collecting): counted beside the CPU.
		n := float64(row.Ops)
		// Elections during the import (a deposed leader's publications in
		// flight fail and are sealed and sent again): the raft term moved.
		elections := term(ctx, ln) - term0
		cfg.progress("watchfed: bulk import of %d records: %.0f records/s, %.2f s of CPU in this process (%.0f µs a record, every node; %.0f allocations, %.1f KB a record; %d GCs; %d elections)",
			row.Ops, row.PerSecond(), cpu.Seconds(), float64(cpu.Microseconds())/n,
			float64(ms1.Mallocs-ms0.Mallocs)/n, float64(ms1.TotalAlloc-ms0.TotalAlloc)/1024/n, ms1.NumGC-ms0.NumGC, elections)
		rows = append(rows, row)
	}
	return rows, nil
}

// watchfedRow runs n publishers at the federation's leader or at a follower.
func watchfedRow(ctx context.Context, l *testnet.Local, n int, at Site, net string, cfg Config) (Row, error) {
	ln, err := site(ctx, l, at)
	if err != nil {
		return Row{}, err
	}
	cfg.progress("watchfed (%s): %d publishers at the %s (%s) for %s", net, n, at, ln.Agency, cfg.Duration)
	var writes atomic.Int64
	cpu0 := processCPU()
	row, err := createRecords(ctx, ln, n, cfg.Duration, cfg.ValueSize, &writes)
	cfg.progress("watchfed (%s): %d publishers at the %s: %.0f ops/s, %.0f µs of CPU in this process a write (every node, warm-up included)",
		net, n, at, row.PerSecond(), float64((processCPU()-cpu0).Microseconds())/float64(max(writes.Load(), 1)))
	row.At, row.Net = at, net
	return row, err
}

// site is the node that leads (AtLeader) or the first that does not,
// waiting up to a minute for a leader (an election may be under way on a
// loaded machine or across slow links).
func site(ctx context.Context, l *testnet.Local, at Site) (*testnet.LocalNode, error) {
	var found *testnet.LocalNode
	err := waitFor(ctx, time.Minute, func() (bool, error) {
		var leader, follower *testnet.LocalNode
		for _, ln := range l.Nodes {
			conn, err := ln.Dial()
			if err != nil {
				return false, err
			}
			st, err := pb.NewFederationServiceClient(conn).GetStatus(ctx, &pb.GetStatusRequest{})
			conn.Close()
			if err != nil {
				return false, nil // a node busy or restarting: ask again
			}
			if st.Role == "leader" && leader == nil {
				leader = ln
			} else if st.Role == "follower" && follower == nil {
				follower = ln
			}
		}
		if leader == nil {
			return false, nil // only once a leader is known is a follower's write forwarded
		}
		found = leader
		if at == AtFollower {
			found = follower
		}
		return found != nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("no node at the %s: %w", at, err)
	}
	return found, nil
}

// term is ln's raft term (0 if it cannot be read).
func term(ctx context.Context, ln *testnet.LocalNode) uint64 {
	conn, err := ln.Dial()
	if err != nil {
		return 0
	}
	defer conn.Close()
	st, err := pb.NewFederationServiceClient(conn).GetStatus(ctx, &pb.GetStatusRequest{})
	if err != nil {
		return 0
	}
	return st.Term
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

// createRecords runs n publishers of CreateRecord against ln.
// Publishers share connections, 8 to a connection, as an importer would.
func createRecords(ctx context.Context, ln *testnet.LocalNode, n int, d time.Duration, size int, writes *atomic.Int64) (Row, error) {
	conns, err := dialN(ln, (n+7)/8)
	if err != nil {
		return Row{}, err
	}
	defer closeAll(conns)
	var seq atomic.Int64
	return Load(ctx, "watchfed", Workload, n, d, func(ctx context.Context, c int) error {
		_, _, err := create(ctx, conns[c%len(conns)], int(seq.Add(1)), size)
		if err == nil {
			writes.Add(1)
		}
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

// processCPU is the CPU time this process used so far (user and system):
// every node of an in-process federation, a measure of work that a busy
// machine does not stretch as it stretches the wall clock.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
