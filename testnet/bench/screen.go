package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node"
	"github.com/watchfed/watchfed/node/importer"
	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/node/screen"
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
	// Variants is the number of variant queries in the quality report.
	Variants int
	// Dir holds the nodes' data; empty makes (and removes) a temporary one.
	Dir      string
	Progress io.Writer
}

// ScreenDefaults are the figures the README reports.
func ScreenDefaults() ScreenConfig {
	return ScreenConfig{Data: shareddata.Dir(), Synthetic: 1_000_000, Clients: []int{1, 8, 32}, Duration: 10 * time.Second, Variants: 2000}
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
	Quality   Quality
}

// Quality is recall and precision on variant names of listed entries and on
// unrelated names.
type Quality struct {
	Variants int // variant queries (typos, transliteration, reordering, dropped words, legal forms)
	InTop10  int // variant queries whose source entry was among the top 10 (any score)
	// Queries (variants and unrelated) whose best result scored at or above
	// the default threshold, and how many of those were the right entry.
	TopAbove, TopRight int
	Unrelated          int // unrelated names screened
	UnrelatedHits      int // of them, with a result at or above the threshold
	ByKind             map[string][2]int
}

// Recall is the share of variant queries that found their entry in the top 10.
func (q Quality) Recall() float64 { return ratio(q.InTop10, q.Variants) }

// Precision is the share of queries answered above the threshold whose best
// result was right.
func (q Quality) Precision() float64 { return ratio(q.TopRight, q.TopAbove) }

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
	qs := newQuerySet(items, cfg)
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
	qs := newQuerySet(items, cfg)
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

// querySet is what the load and the quality report screen, and the names
// each listed entry goes by: derived from the items before the node starts,
// so that the items need not stay in memory.
type querySet struct {
	variants  []Variant
	unrelated []string
	sameName  map[string]map[string]bool // normalised name → source refs
}

func newQuerySet(items []importer.Item, cfg ScreenConfig) querySet {
	qs := querySet{variants: Variants(items, cfg.Variants, 2), unrelated: Unrelated(max(200, cfg.Variants/4), 3), sameName: map[string]map[string]bool{}}
	want := map[string]bool{}
	for _, v := range qs.variants {
		want[screen.Normalize(v.Source)] = true
	}
	for _, it := range items {
		for _, n := range names(it.Record) {
			if k := screen.Normalize(n); want[k] {
				if qs.sameName[k] == nil {
					qs.sameName[k] = map[string]bool{}
				}
				qs.sameName[k][it.Record.SourceRef] = true
			}
		}
	}
	return qs
}

// measure runs the load rows and the quality report.
func measure(ctx context.Context, sn *screenNode, run ScreenRun, qs querySet, cfg ScreenConfig) (ScreenRun, error) {
	variants, unrelated := qs.variants, qs.unrelated
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
	q, err := quality(ctx, c, qs)
	if err != nil {
		return run, err
	}
	run.Quality = q
	return run, nil
}

// quality screens every variant and unrelated name once. The right entry
// for a variant is its source, or any entry listed under the same name
// (lists carry the same party more than once, e.g. OFAC and the UN).
func quality(ctx context.Context, c pb.ScreeningServiceClient, qs querySet) (Quality, error) {
	variants, unrelated, sameName := qs.variants, qs.unrelated, qs.sameName
	q := Quality{Variants: len(variants), Unrelated: len(unrelated), ByKind: map[string][2]int{}}
	for _, v := range variants {
		resp, err := c.Screen(ctx, &pb.ScreenRequest{Name: v.Query, Threshold: 0.01, Limit: 10})
		if err != nil {
			return q, fmt.Errorf("screen %q: %w", v.Query, err)
		}
		right := func(r *pb.ScreenResult) bool {
			ref := r.GetRecord().GetSourceRef()
			return ref == v.Ref || sameName[screen.Normalize(v.Source)][ref]
		}
		found := false
		for _, r := range resp.Results {
			found = found || right(r)
		}
		k := q.ByKind[v.Kind]
		k[1]++
		if found {
			q.InTop10++
			k[0]++
		}
		q.ByKind[v.Kind] = k
		if len(resp.Results) > 0 && resp.Results[0].Score >= screen.DefaultThreshold {
			q.TopAbove++
			if right(resp.Results[0]) {
				q.TopRight++
			}
		}
	}
	for _, name := range unrelated {
		resp, err := c.Screen(ctx, &pb.ScreenRequest{Name: name})
		if err != nil {
			return q, fmt.Errorf("screen %q: %w", name, err)
		}
		if len(resp.Results) > 0 {
			q.UnrelatedHits++
			q.TopAbove++
		}
	}
	return q, nil
}

func names(r *pb.Record) []string {
	out := []string{r.GetSubject().GetName()}
	for _, a := range r.GetSubject().GetAliases() {
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
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "dataset\tvariants\trecall@10\tunrelated\tunrelated hits\tanswered ≥ 0.8\tprecision\t")
	for _, r := range runs {
		q := r.Quality
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%d\t%d\t%d\t%.3f\t\n", r.Dataset, q.Variants, q.Recall(), q.Unrelated, q.UnrelatedHits, q.TopAbove, q.Precision())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "dataset\tvariant\tqueries\trecall@10\t")
	for _, r := range runs {
		for _, k := range variantKinds {
			if v, ok := r.Quality.ByKind[k]; ok {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t\n", r.Dataset, k, v[1], ratio(v[0], v[1]))
			}
		}
	}
	return tw.Flush()
}

// Variant is a query derived from a listed name.
type Variant struct {
	Kind   string // one of variantKinds
	Query  string
	Source string // the listed name it came from
	Ref    string // the source entry's source_ref
}

var variantKinds = []string{"typo1", "typo2", "reorder", "drop", "cyrillic", "legal-form"}

// Variants derives n variant queries from the primary names of items with
// at least two identifying words: one and two typos, reordered words, a
// dropped middle word, Cyrillic transliteration of persons, another legal
// form for organisations.
func Variants(items []importer.Item, n int, seed uint64) []Variant {
	rng := rand.New(rand.NewPCG(seed, 0))
	var pool []importer.Item
	for _, it := range items {
		if len(strings.Fields(screen.Normalize(it.Record.Subject.Name))) >= 2 {
			pool = append(pool, it)
		}
	}
	if len(pool) == 0 {
		return nil
	}
	var out []Variant
	for len(out) < n {
		it := pool[rng.IntN(len(pool))]
		src := it.Record.Subject.Name
		words := strings.Fields(screen.Normalize(src))
		kind := variantKinds[len(out)%len(variantKinds)]
		var q string
		switch kind {
		case "typo1":
			q = typo(rng, words, 1)
		case "typo2":
			q = typo(rng, words, 2)
		case "reorder":
			ws := append([]string(nil), words...)
			for i, j := 0, len(ws)-1; i < j; i, j = i+1, j-1 {
				ws[i], ws[j] = ws[j], ws[i]
			}
			q = strings.Join(ws, " ")
		case "drop":
			if len(words) < 3 {
				continue
			}
			i := 1 + rng.IntN(len(words)-2)
			q = strings.Join(append(append([]string(nil), words[:i]...), words[i+1:]...), " ")
		case "cyrillic":
			if it.Record.Subject.Schema != pb.Schema_SCHEMA_PERSON {
				continue
			}
			q = toCyrillic(strings.Join(words, " "))
		case "legal-form":
			if it.Record.Subject.Schema != pb.Schema_SCHEMA_ORGANIZATION {
				continue
			}
			q = strings.Join(words, " ") + " " + []string{"LLC", "GmbH", "OOO", "S.A.", "Ltd", "JSC"}[rng.IntN(6)]
		}
		out = append(out, Variant{Kind: kind, Query: q, Source: src, Ref: it.Record.SourceRef})
	}
	return out
}

// typo applies edits (substitution, deletion, insertion, transposition) to
// words of four letters or more, at most one per word.
func typo(rng *rand.Rand, words []string, edits int) string {
	ws := append([]string(nil), words...)
	var long []int
	for i, w := range ws {
		if len(w) >= 4 {
			long = append(long, i)
		}
	}
	rng.Shuffle(len(long), func(i, j int) { long[i], long[j] = long[j], long[i] })
	for e := 0; e < edits; e++ {
		var i int
		if e < len(long) {
			i = long[e]
		} else if len(long) > 0 {
			i = long[0] // a second edit in the same word
		} else {
			break
		}
		w := []byte(ws[i])
		p := 1 + rng.IntN(len(w)-1) // keep the first letter, as most typos do
		c := byte('a' + rng.IntN(26))
		switch rng.IntN(4) {
		case 0:
			w[p] = c
		case 1:
			w = append(w[:p], w[p+1:]...)
		case 2:
			w = append(w[:p], append([]byte{c}, w[p:]...)...)
		default:
			if p+1 < len(w) {
				w[p], w[p+1] = w[p+1], w[p]
			} else {
				w[p] = c
			}
		}
		ws[i] = string(w)
	}
	return strings.Join(ws, " ")
}

var cyrillic = []struct{ lat, cyr string }{
	{"shch", "щ"}, {"sh", "ш"}, {"ch", "ч"}, {"kh", "х"}, {"zh", "ж"}, {"ts", "ц"}, {"ya", "я"}, {"yu", "ю"}, {"yo", "ё"},
	{"a", "а"}, {"b", "б"}, {"v", "в"}, {"g", "г"}, {"d", "д"}, {"e", "е"}, {"z", "з"}, {"i", "и"}, {"y", "й"},
	{"k", "к"}, {"l", "л"}, {"m", "м"}, {"n", "н"}, {"o", "о"}, {"p", "п"}, {"r", "р"}, {"s", "с"}, {"t", "т"},
	{"u", "у"}, {"f", "ф"}, {"h", "х"}, {"c", "к"}, {"j", "дж"}, {"q", "к"}, {"w", "в"}, {"x", "кс"},
}

// toCyrillic writes a Latin name in Cyrillic letters, as a Russian
// document would.
func toCyrillic(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		matched := false
		for _, m := range cyrillic {
			if strings.HasPrefix(s[i:], m.lat) {
				b.WriteString(m.cyr)
				i += len(m.lat)
				matched = true
				break
			}
		}
		if !matched {
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

var (
	commonFirst = strings.Fields(`Emily Oliver Sophie Lukas Hannah Jack Chloe Noah Amelia Leon Laura Thomas Emma Liam Olivia
		Mia Lucas Ella Felix Grace Henry Isla Oscar Ruby Jonas Clara Elias Lena Paul Julia Max Anna Theo Marie Finn Nora Jan Eva
		Hugo Alice Louis Camille Mateo Lucia Daniel Sara Martin Ines Pablo Elena David Carla`)
	commonLast = strings.Fields(`Johnson Schneider Dupont Williams Fischer Martin Brown Weber Bernard Taylor Meyer Dubois Wilson
		Wagner Moreau Evans Becker Laurent Thompson Hoffmann Simon Walker Schulz Michel Wright Koch Lefebvre Robinson Richter
		Leroy Wood Klein Roux Hall Wolf Fournier Green Schroeder Girard Clarke Neumann Bonnet Hughes Braun Lambert Edwards
		Zimmermann Fontaine Jackson Hartmann Rousseau Lewis Lange Vincent Turner Krause Muller Harris Lehmann Blanc`)
)

// Unrelated returns n names of ordinary Western Europeans, which a
// sanctions list should not match.
func Unrelated(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 0))
	out := make([]string, n)
	for i := range out {
		out[i] = commonFirst[rng.IntN(len(commonFirst))] + " " + commonLast[rng.IntN(len(commonLast))]
	}
	return out
}

var syllables = strings.Fields(`ka ri mo ta ne lu sa vi do re mi ko na be zu fa lo gi ha ru te pa si ya no ma ki bu de
	ro la tu ze po ni va go su ho me xa qi we jo ba ke ti ra du le sho cha kha zhe ts al am an ar as el em en er es il im in ir is or os un ur`)

// Synthetic returns n synthetic designations: persons (two or three words
// from a syllable grammar, about 0.8 billion possible names) and
// organisations (two words and a legal form), with a birth year or a
// country, so that word frequencies look like a real list's.
func Synthetic(n int, seed uint64) []importer.Item {
	rng := rand.New(rand.NewPCG(seed, 0))
	word := func() string {
		var b strings.Builder
		for k := 2 + rng.IntN(2); k > 0; k-- {
			b.WriteString(syllables[rng.IntN(len(syllables))])
		}
		w := b.String()
		return strings.ToUpper(w[:1]) + w[1:]
	}
	forms := []string{"LLC", "Ltd", "GmbH", "Trading", "Group", "S.A.", "JSC", "Holding"}
	countries := []string{"RU", "IR", "SY", "KP", "CN", "AE", "TR", "VE", "BY", "IQ"}
	out := make([]importer.Item, n)
	for i := range out {
		s := &pb.Subject{Countries: []string{countries[rng.IntN(len(countries))]}}
		if rng.IntN(4) > 0 {
			s.Schema = pb.Schema_SCHEMA_PERSON
			if rng.IntN(2) == 0 {
				s.Name = word() + " " + word() + " " + word()
			} else {
				s.Name = word() + " " + word()
			}
			s.BirthDates = []string{fmt.Sprint(1940 + rng.IntN(60))}
		} else {
			s.Schema = pb.Schema_SCHEMA_ORGANIZATION
			s.Name = word() + " " + word() + " " + forms[rng.IntN(len(forms))]
		}
		out[i] = importer.Item{Line: i + 1, Record: &pb.Record{Kind: pb.Kind_KIND_DESIGNATION, Subject: s, SourceRef: fmt.Sprintf("synthetic:%d", i),
			Detail: &pb.Record_Designation{Designation: &pb.Designation{Program: "SYNTHETIC"}}}}
	}
	return out
}
