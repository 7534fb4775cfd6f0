package replication

import (
	"testing"
	"time"
)

// TestCheckpointPace: a take is due after activity, once enough entries or
// time passed, and never sooner than checkpointCostFactor times the last
// hash's duration since the last take.
func TestCheckpointPace(t *testing.T) {
	p := checkpointPace{every: 1000, interval: 5 * time.Second, factor: checkpointCostFactor}
	const ms = time.Millisecond
	for _, c := range []struct {
		name          string
		active, since uint64
		elapsed, cost time.Duration
		want          bool
	}{
		{"idle", 10, 10, time.Hour, 0, false},
		{"only checkpoints since", 9, 10, time.Hour, 0, false},
		{"few entries, little time", 500, 10, time.Second, 0, false},
		{"enough entries, no hash yet", 1010, 10, 0, 0, true},
		{"enough time, no hash yet", 11, 10, 5 * time.Second, 0, true},
		{"enough entries, cheap hash", 1010, 10, 20 * ms, ms, true},
		{"enough entries, hash too dear", 1010, 10, 19 * ms, ms, false},
		{"enough time, hash too dear", 11, 10, 5 * time.Second, 300 * ms, false},
		{"enough time and factor × cost", 11, 10, 6 * time.Second, 300 * ms, true},
		{"factor × cost passed, few entries, little time", 500, 10, 3 * time.Second, 100 * ms, false},
		{"factor × cost passed, idle", 10, 10, time.Hour, 100 * ms, false},
		{"many entries wait for the cost", 100_000, 10, 3 * time.Second, 200 * ms, false},
		{"many entries, cost passed", 100_000, 10, 4 * time.Second, 200 * ms, true},
	} {
		if got := p.due(c.active, c.since, c.elapsed, c.cost); got != c.want {
			t.Errorf("%s: due(%d, %d, %v, %v) = %v, want %v", c.name, c.active, c.since, c.elapsed, c.cost, got, c.want)
		}
	}
}
