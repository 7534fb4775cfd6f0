package bench

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// B is the part of a *testing.B that RunN drives. The watchfed binary links
// this package for its bench command, so the package must not import testing.
type B interface {
	Helper()
	ResetTimer()
	StopTimer()
	Elapsed() time.Duration
	Fatal(args ...any)
	ReportMetric(n float64, unit string)
}

// RunN runs n calls of op (a benchmark's b.N) from clients concurrent
// callers and reports ops/s and the latency percentiles.
func RunN(b B, n, clients int, op Op) {
	b.Helper()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		lat  []time.Duration
		errs []error
	)
	ctx := context.Background()
	b.ResetTimer()
	cpu0 := processCPU()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for next.Add(1) <= int64(n) {
				t := time.Now()
				if err := op(ctx, c); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	b.StopTimer()
	cpu := processCPU() - cpu0
	if len(errs) > 0 {
		b.Fatal(errs[0])
	}
	slices.Sort(lat)
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(ms(Percentile(lat, 0.50)), "p50-ms")
	b.ReportMetric(ms(Percentile(lat, 0.99)), "p99-ms")
	// CPU time of the whole process (every node of an in-process
	// federation, and the clients): steadier than ops/s on a busy machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/op")
}
