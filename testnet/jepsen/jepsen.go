// Package jepsen is the Jepsen-style reliability checker: clients write and
// read through a federation while a nemesis (a testnet behind fault proxies,
// or a Docker compose federation) injects faults; after healing it checks
// that nothing acknowledged was lost, nothing unwritten appeared, the nodes
// agree byte for byte, and the reads were linearizable (porcupine). It is
// test machinery: only tests import it, so none of it links into watchfed.
package jepsen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/testnet"
)

// Jepsen is a Jepsen-style run: clients on every node publish, amend, delist
// and read while a nemesis injects faults drawn from Seed; then everything
// heals and Check judges what the nodes hold against what was acknowledged.
type Jepsen struct {
	Target   Nemesis
	Seed     uint64
	Duration time.Duration // of the faulty phase
	Clients  int           // per node; default 2
	Faults   []string      // default: every kind Target can inject (disk-full only with a per-node disk)
	// Hold and Quiet bound how long a fault lasts and the calm after it.
	Hold, Quiet time.Duration
	// Artifacts is where a non-linearizable history's visualisation goes.
	Artifacts string
	Logf      func(format string, args ...any)

	t0 time.Time
	// What the members' status said of checkpoints, for the report.
	lastCheckpoint uint64
	disagreements  map[string]uint64
}

// Report is what a run found. Lost and Divergent must be 0, Phantom too, and
// Linearizable true.
type Report struct {
	Seed         uint64
	Cycles       int // faults injected and healed
	Ops          int // operations invoked
	Acked        int // writes acknowledged with a log index
	InFlight     int // writes with an unknown outcome (error, timeout, no index)
	Reads        int // reads answered
	Lost         int // acknowledged versions missing on some node
	Phantom      int // versions on a node that no client ever wrote
	Divergent    int // nodes whose state differs at the same applied index, or whose view of a record differs
	Linearizable bool
	// Checkpoints (protocol 4): the last checkpoint index the members
	// applied, and how many checkpoints disagreed with a member's own state
	// (the sum over the members of the most each status counted since its
	// start). Any disagreement fails the run, as does a member still set
	// apart as diverged: a healthy federation's members take the same hash
	// at every checkpoint.
	LastCheckpoint          uint64
	CheckpointDisagreements uint64
	Visualised              string // path of the history's HTML when it was not linearizable
	Problems                []string
	FaultLog                []string
}

// Table prints the report as the README's table.
func (r *Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| seed | fault cycles | operations | acknowledged | in flight | reads | lost | phantom | divergent | linearizable | last checkpoint | checkpoint disagreements |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %d | %d | %d | %d | %v | %d | %d |\n",
		r.Seed, r.Cycles, r.Ops, r.Acked, r.InFlight, r.Reads, r.Lost, r.Phantom, r.Divergent, r.Linearizable, r.LastCheckpoint, r.CheckpointDisagreements)
	return b.String()
}

// OK reports whether the run found nothing wrong.
func (r *Report) OK() bool {
	return r.Lost == 0 && r.Phantom == 0 && r.Divergent == 0 && r.Linearizable && r.CheckpointDisagreements == 0 && len(r.Problems) == 0
}

// regInput is one operation on one record's register: its version.
type regInput struct {
	write   bool
	version uint64
	tag     string
}

// written is one write a client invoked: the record version it makes and
// the tag (change note) that identifies it.
type written struct {
	origin, id string
	version    uint64
	tag        string
	acked      bool
}

type history struct {
	mu      sync.Mutex
	start   time.Time
	ops     []porcupine.Operation
	writes  map[string]*written // tag → write
	ids     []string            // records created with an acknowledgement, readable by anyone
	origin  map[string]string   // id → origin
	invoked int
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

// Run runs the workload and the nemesis for Duration, heals, and checks.
func (j *Jepsen) Run(ctx context.Context) (*Report, error) {
	if j.Clients == 0 {
		j.Clients = 2
	}
	if j.Faults == nil {
		j.Faults = j.Target.Kinds()
	}
	j.Faults = slices.DeleteFunc(slices.Clone(j.Faults), func(f string) bool { return !slices.Contains(j.Target.Kinds(), f) })
	if len(j.Faults) == 0 {
		return nil, errors.New("no fault this federation can inject")
	}
	if j.Hold == 0 {
		j.Hold = 3 * time.Second
	}
	if j.Quiet == 0 {
		j.Quiet = 2 * time.Second
	}
	if j.Logf == nil {
		j.Logf = func(string, ...any) {}
	}
	rep := &Report{Seed: j.Seed}
	j.t0 = time.Now()
	h := &history{start: time.Now(), writes: map[string]*written{}, origin: map[string]string{}}

	conns := make([]*grpc.ClientConn, len(j.Target.Nodes()))
	for i, m := range j.Target.Nodes() {
		c, err := m.Dial()
		if err != nil {
			return nil, err
		}
		defer c.Close()
		conns[i] = c
	}

	wctx, stop := context.WithTimeout(ctx, j.Duration)
	defer stop()
	var wg sync.WaitGroup
	for i := range j.Target.Nodes() {
		for c := 0; c < j.Clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl := &client{j: j, h: h, node: i, id: i*j.Clients + c, conn: conns[i],
					rng: rand.New(rand.NewPCG(j.Seed, uint64(i*j.Clients+c+1)))}
				cl.run(wctx)
			}()
		}
	}
	nemErr := j.nemesis(wctx, rep)
	wg.Wait()
	if err := j.Target.HealAll(ctx); err != nil {
		return rep, fmt.Errorf("heal: %w", err)
	}
	if nemErr != nil && ctx.Err() == nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("nemesis: %v", nemErr))
	}
	rep.Ops = h.invoked
	for _, w := range h.writes {
		if w.acked {
			rep.Acked++
		} else {
			rep.InFlight++
		}
	}
	for _, op := range h.ops {
		if !op.Input.(regInput).write {
			rep.Reads++
		}
	}
	if err := j.check(ctx, h, conns, rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// nemesis injects a fault, holds it, heals, waits for calm, until ctx ends.
func (j *Jepsen) nemesis(ctx context.Context, rep *Report) error {
	rng := rand.New(rand.NewPCG(j.Seed, 0))
	n := len(j.Target.Nodes())
	for ctx.Err() == nil {
		// Every draw comes from the seed, in the same order, whatever happens:
		// the schedule replays exactly.
		kind := j.Faults[rng.IntN(len(j.Faults))]
		a, b := rng.IntN(n), rng.IntN(n-1)
		if b >= a {
			b++
		}
		perm := rng.Perm(n)
		latency := time.Duration(20+rng.IntN(180)) * time.Millisecond
		hold := j.Hold/2 + time.Duration(rng.Int64N(int64(j.Hold)))
		desc, heal, err := j.Target.Inject(ctx, kind, testnet.Draw{A: a, B: b, Perm: perm, Latency: latency})
		if err != nil {
			return fmt.Errorf("cycle %d %s: %w", rep.Cycles+1, kind, err)
		}
		rep.Cycles++
		line := fmt.Sprintf("%6.1fs cycle %d: %s for %v", time.Since(j.t0).Seconds(), rep.Cycles, desc, hold.Round(time.Millisecond))
		rep.FaultLog = append(rep.FaultLog, line)
		j.Logf("%s", line)
		wait(ctx, hold)
		hctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = heal(hctx)
		cancel()
		if err != nil {
			return fmt.Errorf("cycle %d heal %s: %w", rep.Cycles, kind, err)
		}
		wait(ctx, j.Quiet)
	}
	return nil
}

// wait lets a fault last: the schedule's time, not a synchronisation.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Nemesis is a federation the Jepsen run can hurt: testnet.Net (processes
// behind fault proxies) and testnet.Compose (containers on a Docker network).
type Nemesis interface {
	Nodes() []*testnet.Member
	// Kinds are the fault kinds it can inject.
	Kinds() []string
	// Inject starts a fault and returns what it did and how to end it.
	Inject(ctx context.Context, kind string, d testnet.Draw) (desc string, heal func(context.Context) error, err error)
	// HealAll ends every fault and waits until every node serves.
	HealAll(ctx context.Context) error
}

// registerModel is one record's version, partitioned by record id.
var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Metadata.(string)
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return uint64(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.write {
			return true, in.version
		}
		return output.(uint64) == state.(uint64), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.write {
			return fmt.Sprintf("write v%d (%s)", in.version, in.tag)
		}
		return fmt.Sprintf("read → v%d", output.(uint64))
	},
	DescribeState:             func(s any) string { return fmt.Sprintf("v%d", s.(uint64)) },
	DescribeOperationMetadata: func(m any) string { return m.(string) },
}

// check waits for the healed federation to settle, then compares.
func (j *Jepsen) check(ctx context.Context, h *history, conns []*grpc.ClientConn, rep *Report) error {
	res, info := porcupine.CheckOperationsVerbose(registerModel, h.ops, 2*time.Minute)
	rep.Linearizable = res == porcupine.Ok
	if res != porcupine.Ok {
		if res == porcupine.Unknown {
			rep.Problems = append(rep.Problems, "linearizability check timed out")
		}
		if j.Artifacts != "" {
			rep.Visualised = filepath.Join(j.Artifacts, fmt.Sprintf("history-seed%d.html", j.Seed))
			if err := porcupine.VisualizePath(registerModel, info, rep.Visualised); err != nil {
				return fmt.Errorf("visualise: %w", err)
			}
		}
	}

	// The federation settled: every node at the same applied index, and
	// every node's view of every record equal to what its origin holds.
	deadline := time.Now().Add(90 * time.Second)
	var last []string
	for {
		lost, phantom, divergent, problems := j.compare(ctx, h, conns)
		if (lost == 0 && phantom == 0 && divergent == 0 && len(problems) == 0) || time.Now().After(deadline) || ctx.Err() != nil {
			rep.Lost, rep.Phantom, rep.Divergent = lost, phantom, divergent
			rep.LastCheckpoint = j.lastCheckpoint
			for _, a := range slices.Sorted(maps.Keys(j.disagreements)) {
				if n := j.disagreements[a]; n > 0 {
					rep.CheckpointDisagreements += n
					problems = append(problems, fmt.Sprintf("%s checkpoint disagreements: %d (its node log names each)", a, n))
				}
			}
			rep.Problems = append(rep.Problems, problems...)
			return nil
		}
		if !slices.Equal(problems, last) {
			j.Logf("not settled yet: lost %d phantom %d divergent %d %v", lost, phantom, divergent, first(problems, 3))
			last = problems
		}
		wait(ctx, 500*time.Millisecond)
	}
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// compare counts acknowledged versions missing somewhere, versions nobody
// wrote, and nodes that disagree.
func (j *Jepsen) compare(ctx context.Context, h *history, conns []*grpc.ClientConn) (lost, phantom, divergent int, problems []string) {
	ms := j.Target.Nodes()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	// 1. Byte-for-byte state at one applied index.
	hashes := make([]*pb.GetStatusResponse, len(ms))
	for i := range ms {
		st, err := pb.NewFederationServiceClient(conns[i]).GetStatus(cctx, &pb.GetStatusRequest{WithStateHash: true})
		if err != nil {
			return 0, 0, 0, []string{fmt.Sprintf("%s status: %v", ms[i].Agency, err)}
		}
		hashes[i] = st
	}
	for i := 1; i < len(ms); i++ {
		if hashes[i].StateHashIndex != hashes[0].StateHashIndex {
			return 0, 0, 0, []string{fmt.Sprintf("applied index differs: %s at %d, %s at %d",
				ms[0].Agency, hashes[0].StateHashIndex, ms[i].Agency, hashes[i].StateHashIndex)}
		}
	}
	if j.disagreements == nil {
		j.disagreements = map[string]uint64{}
	}
	for i, st := range hashes {
		j.lastCheckpoint = max(j.lastCheckpoint, st.LastCheckpointIndex)
		j.disagreements[ms[i].Agency] = max(j.disagreements[ms[i].Agency], st.CheckpointDisagreements)
		if st.Diverged {
			problems = append(problems, fmt.Sprintf("%s diverged from a checkpoint: %s", ms[i].Agency, st.DivergedReason))
		}
	}
	for i := 1; i < len(ms); i++ {
		if !bytes.Equal(hashes[i].StateHash, hashes[0].StateHash) {
			divergent++
			problems = append(problems, fmt.Sprintf("state at index %d: %s %x ≠ %s %x", hashes[0].StateHashIndex,
				ms[i].Agency, hashes[i].StateHash[:8], ms[0].Agency, hashes[0].StateHash[:8]))
		}
	}

	// 2. What each origin holds now is what every partner shows.
	current := map[string]*pb.Record{} // id → origin's current version
	for i, m := range ms {
		token := ""
		for {
			resp, err := pb.NewRecordServiceClient(conns[i]).ListRecords(cctx, &pb.ListRecordsRequest{IncludeInactive: true, PageSize: 1000, PageToken: token})
			if err != nil {
				return 0, 0, 0, []string{fmt.Sprintf("%s records: %v", m.Agency, err)}
			}
			for _, r := range resp.Records {
				current[r.Id] = r
			}
			if token = resp.NextPageToken; token == "" {
				break
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	acked := map[string]uint64{} // id → highest acknowledged version
	for _, w := range h.writes {
		if w.acked && w.version > acked[w.id] {
			acked[w.id] = w.version
		}
	}
	for i, m := range ms {
		entries, err := allShared(cctx, pb.NewSharedServiceClient(conns[i]), &pb.ListSharedRequest{IncludeInactive: true})
		if err != nil {
			return 0, 0, 0, []string{fmt.Sprintf("%s shared: %v", m.Agency, err)}
		}
		seen := map[string]*pb.Record{}
		for _, e := range entries {
			r := e.Record
			seen[r.Id] = r
			if w, ok := h.writes[r.ChangeNote]; !ok || w.version != r.Version || (w.id != "" && w.id != r.Id) {
				phantom++
				problems = append(problems, fmt.Sprintf("%s holds %s v%d (%q), which no client wrote", m.Agency, r.Id, r.Version, r.ChangeNote))
			}
			if cur, ok := current[r.Id]; !ok || cur.Version != r.Version || cur.ChangeNote != r.ChangeNote {
				divergent++
				problems = append(problems, fmt.Sprintf("%s shows %s v%d, its origin holds v%d", m.Agency, r.Id, r.Version, cur.GetVersion()))
			}
		}
		for id, v := range acked {
			if h.origin[id] == m.Agency || id == "" {
				continue
			}
			if got := seen[id]; got == nil || got.Version < v {
				lost++
				problems = append(problems, fmt.Sprintf("%s lacks acknowledged %s v%d (has v%d)", m.Agency, id, v, got.GetVersion()))
			}
		}
	}
	for id, v := range acked {
		if cur := current[id]; cur == nil || cur.Version < v {
			lost++
			problems = append(problems, fmt.Sprintf("origin lacks acknowledged %s v%d", id, v))
		}
	}
	slices.Sort(problems)
	return lost, phantom, divergent, problems
}

// allShared pages through ListShared.
func allShared(ctx context.Context, c pb.SharedServiceClient, req *pb.ListSharedRequest) ([]*pb.SharedEntry, error) {
	req = proto.Clone(req).(*pb.ListSharedRequest)
	req.PageSize = 1000
	var out []*pb.SharedEntry
	for {
		resp, err := c.ListShared(ctx, req)
		if err != nil {
			return nil, err
		}
		out = append(out, resp.Entries...)
		if req.PageToken = resp.NextPageToken; req.PageToken == "" {
			return out, nil
		}
	}
}
