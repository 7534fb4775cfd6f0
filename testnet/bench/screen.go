package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node"
	"github.com/watchfed/watchfed/node/importer"
	"github.com/watchfed/watchfed/node/names"
	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/testnet/shareddata"
)

// ScreenConfig describes a screening benchmark run.
type ScreenConfig struct {
	// Data is the directory of the real list files (ofac-sdn-2024/, un/);
	// empty or absent skips the real-list dataset.
	Data string
	// Synthetic is the number of synthetic names; 0 skips that dataset.
	Synthetic int
	// Clients are the numbers of concurrent callers, one row each.
	Clients  []int
	Duration time.Duration
	// Variants is the number of variant queries in the load mix.
	Variants int
	// PerKind is the number of queries of each kind in each split of the
	// quality evaluation (variants of each kind, near names).
	PerKind int
	// Dir holds the nodes' data; empty makes (and removes) a temporary one.
	Dir      string
	Progress io.Writer
}

// ScreenDefaults are the figures the README reports.
func ScreenDefaults() ScreenConfig {
	return ScreenConfig{Data: shareddata.Dir(), Synthetic: 1_000_000, Clients: []int{1, 8, 32}, Duration: 10 * time.Second, Variants: 2000, PerKind: 200}
}

// ScreenRun is the result for one dataset.
type ScreenRun struct {
	Dataset string
	Entries int
	Names   int
	// Load is how the records got in (through ImportService, or written to
	// the store and indexed when the node started) and how long it took.
	Load     string
	LoadTime time.Duration
	// Start is the time the node took to start on the data, rebuilding the
	// screening index from the store.
	Start time.Duration
	// HeapBytes is the process's live heap after loading (after a GC): the
	// index plus the node's and the benchmark's own.
	HeapBytes uint64
	Rows      []Row
	// Quality is the evaluation on each split; Ordinary says where its
	// ordinary names came from.
	Quality  []Quality
	Ordinary string
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Screen runs the screening benchmark on each dataset the config names.
func Screen(ctx context.Context, cfg ScreenConfig) ([]ScreenRun, error) {
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "watchfed-screen-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	var runs []ScreenRun
	if cfg.Data != "" {
		if _, err := os.Stat(filepath.Join(cfg.Data, "ofac-sdn-2024")); err != nil {
			cfg.progress("real lists not found in %s: skipping the OFAC SDN + UN dataset", cfg.Data)
		} else {
			r, err := screenReal(ctx, filepath.Join(dir, "real"), cfg)
			if err != nil {
				return nil, err
			}
			runs = append(runs, r)
		}
	}
	if cfg.Synthetic > 0 {
		r, err := screenSynthetic(ctx, filepath.Join(dir, "synthetic"), cfg)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

func (c ScreenConfig) progress(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format+"\n", args...)
	}
}

// screenNode is a standalone node in this process with a client connection.
type screenNode struct {
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan error
	start  time.Duration
}

func startScreenNode(dir string) (*screenNode, error) {
	cfg := node.Defaults()
	cfg.Agency = node.DevAgency
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	env, err := node.EnsureDevCerts(&cfg)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	n, err := node.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), node.Options{})
	if err != nil {
		return nil, err
	}
	sn := &screenNode{start: time.Since(t0), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	sn.cancel = cancel
	go func() { sn.done <- n.Serve(ctx) }()
	tlsCfg, err := pki.Files{CACert: env.CACert, Cert: env.ClientCert, Key: env.ClientKey}.ClientConfig()
	if err != nil {
		sn.stop()
		return nil, err
	}
	if sn.conn, err = grpc.NewClient(n.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg))); err != nil {
		sn.stop()
		return nil, err
	}
	return sn, nil
}

func (sn *screenNode) stop() error {
	if sn.conn != nil {
		sn.conn.Close()
	}
	sn.cancel()
	return <-sn.done
}

func heapNow() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// screenReal imports the OFAC SDN 2024 list and the UN list through the
// API, then measures screening.
func screenReal(ctx context.Context, dir string, cfg ScreenConfig) (ScreenRun, error) {
	run := ScreenRun{Dataset: "OFAC SDN 2024 + UN"}
	var parsed []*importer.Result
	for _, f := range []struct{ format, path string }{
		{"ofac-sdn", filepath.Join(cfg.Data, "ofac-sdn-2024", "sdn_2024-05-03.csv")},
		{"un-xml", filepath.Join(cfg.Data, "un", "consolidated_2026-02.xml")},
	} {
		fh, err := os.Open(f.path)
		if err != nil {
			return run, err
		}
		res, err := importer.Parse(f.format, "", importer.Files{Main: fh})
		fh.Close()
		if err != nil {
			return run, fmt.Errorf("%s: %w", f.path, err)
		}
		parsed = append(parsed, res)
	}
	sn, err := startScreenNode(dir)
	if err != nil {
		return run, err
	}
	defer sn.stop()
	t0 := time.Now()
	for _, res := range parsed {
		resp, err := importer.Send(ctx, pb.NewImportServiceClient(sn.conn), res, pb.Marking_MARKING_CLEAR, false, nil)
		if err != nil {
			return run, fmt.Errorf("import %s: %w", res.Source, err)
		}
		run.Entries += int(resp.Added)
	}
	run.LoadTime, run.Load = time.Since(t0), "ImportService"
	var items []importer.Item
	for _, res := range parsed {
		items = append(items, res.Items...)
	}
	run.Names = countNames(items)
	qs, err := newQuerySet(items, cfg, TuneSplit(cfg.Data))
	if err != nil {
		return run, err
	}
	if cross, ok := CrossListSet(cfg.Data, items, max(1, cfg.PerKind)); ok {
		qs.evals = append(qs.evals, cross)
		SeparateSameName(qs.evals, items, names.DefaultGivenNames())
	}
	run.Ordinary = qs.ordinary
	parsed, items = nil, nil
	run.HeapBytes = heapNow()
	cfg.progress("%s: %d entries, %d names imported in %s", run.Dataset, run.Entries, run.Names, run.LoadTime.Round(time.Millisecond))
	return measure(ctx, sn, run, qs, cfg)
}

func countNames(items []importer.Item) int {
	n := 0
	for _, it := range items {
		n += 1 + len(it.Record.Subject.Aliases)
	}
	return n
}

// screenSynthetic writes synthetic records straight into a node's store
// (a million through the API would measure the import, not screening),
// starts the node on it, which builds the index, and measures screening.
func screenSynthetic(ctx context.Context, dir string, cfg ScreenConfig) (ScreenRun, error) {
	run := ScreenRun{Dataset: fmt.Sprintf("%d synthetic names", cfg.Synthetic)}
	items := Synthetic(cfg.Synthetic, 1)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return run, err
	}
	t0 := time.Now()
	st, err := store.Open(filepath.Join(dir, node.StoreFile), store.Options{})
	if err != nil {
		return run, err
	}
	now := time.Now().UTC()
	const batch = 10_000
	for i := 0; i < len(items); i += batch {
		var recs []*pb.Record
		for j, it := range items[i:min(i+batch, len(items))] {
			r := it.Record
			r.Id = fmt.Sprintf("%s/SYN%08d", node.DevAgency, i+j)
			r.Version, r.Origin, r.Marking, r.Local = 1, node.DevAgency, pb.Marking_MARKING_CLEAR, true
			r.CreatedAt, r.UpdatedAt = timestamppb.New(now), timestamppb.New(now)
			r.GetDesignation().ListedOn = now.Format(time.DateOnly)
			r.GetDesignation().Status = pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE
			recs = append(recs, r)
		}
		if _, err := st.PutBatch(ctx, recs, nil); err != nil {
			st.Close()
			return run, err
		}
	}
	if err := st.Close(); err != nil {
		return run, err
	}
	run.LoadTime, run.Load, run.Entries = time.Since(t0), "store", len(items)
	run.Names = countNames(items)
	qs, err := newQuerySet(items, cfg, TuneSplit(""))
	if err != nil {
		return run, err
	}
	run.Ordinary = qs.ordinary
	items = nil // the heap measured below is the node's
	cfg.progress("%s: %d records written to the store in %s; starting the node", run.Dataset, run.Entries, run.LoadTime.Round(time.Millisecond))
	sn, err := startScreenNode(dir)
	if err != nil {
		return run, err
	}
	defer sn.stop()
	run.Start = sn.start
	run.HeapBytes = heapNow()
	cfg.progress("node started in %s (index rebuilt from the store); heap %d MiB", run.Start.Round(time.Millisecond), run.HeapBytes>>20)
	return measure(ctx, sn, run, qs, cfg)
}

// querySet is what the load and the quality evaluation screen: derived
// from the items before the node starts, so that the items need not stay in
// memory.
type querySet struct {
	variants  []Variant // the load mix: variants of today's kinds
	unrelated []string  // and ordinary Western European names
	evals     []EvalSet
	ordinary  string // where the ordinary names came from
}

func newQuerySet(items []importer.Item, cfg ScreenConfig, tune func(ref string) bool) (querySet, error) {
	qs := querySet{variants: Variants(items, cfg.Variants, 2), unrelated: Unrelated(max(200, cfg.Variants/4), 3)}
	ordinary, from, err := LoadOrdinary(cfg.Data)
	if err != nil {
		return qs, err
	}
	qs.evals = EvalSplits(items, ordinary, tune, max(1, cfg.PerKind))
	// the node tells given names apart with the project's lexicon
	SeparateSameName(qs.evals, items, names.DefaultGivenNames())
	var listed []string
	for _, e := range qs.evals {
		listed = append(listed, e.Listed...)
	}
	qs.ordinary = fmt.Sprintf("%d ordinary names from %s", len(ordinary), from)
	if len(listed) > 0 {
		qs.ordinary += fmt.Sprintf(", less %d that are a listed name as written: %s", len(listed), strings.Join(listed[:min(len(listed), 5)], ", "))
	}
	return qs, nil
}

// measure runs the load rows and the quality report.
func measure(ctx context.Context, sn *screenNode, run ScreenRun, qs querySet, cfg ScreenConfig) (ScreenRun, error) {
	variants, unrelated := qs.variants, qs.unrelated
	if len(variants) == 0 {
		return run, fmt.Errorf("%s: no names of two words or more to derive queries from", run.Dataset)
	}
	queries := make([]string, 0, len(variants)+len(unrelated))
	for _, v := range variants {
		queries = append(queries, v.Query)
	}
	queries = append(queries, unrelated...)
	c := pb.NewScreeningServiceClient(sn.conn)
	for _, clients := range cfg.Clients {
		next := make([]int, clients)
		row, err := Load(ctx, "watchfed", "screen "+run.Dataset, clients, cfg.Duration, func(ctx context.Context, cl int) error {
			q := queries[(next[cl]*clients+cl)%len(queries)]
			next[cl]++
			_, err := c.Screen(ctx, &pb.ScreenRequest{Name: q})
			return err
		})
		if err != nil {
			return run, err
		}
		run.Rows = append(run.Rows, row)
		cfg.progress("%d clients: %.0f screens/s, p50 %.2f ms, p99 %.2f ms", clients, row.PerSecond(), ms(row.P50), ms(row.P99))
	}
	search := func(ctx context.Context, name string) ([]Hit, error) {
		resp, err := c.Screen(ctx, &pb.ScreenRequest{Name: name, Threshold: proto.Float64(0), Limit: 10})
		if err != nil {
			return nil, err
		}
		hits := make([]Hit, len(resp.Results))
		for i, r := range resp.Results {
			hits[i] = Hit{Ref: r.GetRecord().GetSourceRef(), Matched: r.GetExplanation().GetMatchedName(), Score: r.Score, Explanation: r.GetExplanation().GetSummary()}
		}
		return hits, nil
	}
	for _, set := range qs.evals {
		q, err := Evaluate(ctx, set, search)
		if err != nil {
			return run, err
		}
		run.Quality = append(run.Quality, q)
	}
	return run, nil
}

func recordNames(it importer.Item) []string {
	out := []string{it.Record.GetSubject().GetName()}
	for _, a := range it.Record.GetSubject().GetAliases() {
		out = append(out, a.Name)
	}
	return out
}

// WriteScreenTable prints the runs.
func WriteScreenTable(w io.Writer, runs []ScreenRun) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "dataset\tentries\tnames\tload\tstart\theap MiB\tclients\tscreens/s\tp50 ms\tp99 ms\t")
	for _, r := range runs {
		for i, row := range r.Rows {
			if i == 0 {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s %s\t%s\t%d\t", r.Dataset, r.Entries, r.Names, r.Load, r.LoadTime.Round(time.Millisecond), r.Start.Round(time.Millisecond), r.HeapBytes>>20)
			} else {
				fmt.Fprint(tw, "\t\t\t\t\t\t")
			}
			fmt.Fprintf(tw, "%d\t%.0f\t%.2f\t%.2f\t\n", row.Clients, row.PerSecond(), ms(row.P50), ms(row.P99))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, r := range runs {
		if len(r.Quality) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s: quality (threshold 0, first ten results; %s)\n", r.Dataset, r.Ordinary)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "split\tvariant\tqueries\trecall@10\ttop-1\tfound ≥ 0.8\tbelow 0.8\t")
		for _, q := range r.Quality {
			for _, k := range EvalKinds {
				if v, ok := q.Kinds[k]; ok {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t%.3f\t%.3f\t%d\t\n", q.Split, k, v.Queries, v.Recall(), v.Top1Share(), v.At08Share(), v.Queries-v.At08)
				}
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "split\tordinary\tnames\t≥ 0.8\tshare ≥ 0.8\t≥ 0.9\tof them a listed name as written\t")
		for _, q := range r.Quality {
			for _, k := range OrdinaryKinds {
				if v, ok := q.Ordinary[k]; ok {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.3f\t%d\t%d\t\n", q.Split, k, v.Names, v.At08, ratio(v.At08, v.Names), v.At09, v.At09Listed)
				}
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return nil
}
