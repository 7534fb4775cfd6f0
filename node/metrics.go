package node

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the node's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg        *prometheus.Registry
	published  prometheus.Counter
	received   prometheus.Counter
	publishLat prometheus.Histogram
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchfed_entries_published_total", Help: "Record versions this agency published as shared entries.",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchfed_entries_received_total", Help: "Shared entries of partners this agency took in (readable to it).",
		}),
		publishLat: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "watchfed_publish_seconds", Help: "Time from sealing a publication to its commit in the log.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	status := func() (leader, term, last, commit, applied float64) {
		st := n.fed.RaftStatus()
		if st.Role == "leader" {
			leader = 1
		}
		return leader, float64(st.Term), float64(st.LastIndex), float64(st.CommitIndex), float64(st.Applied)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.published, m.received, m.publishLat,
		gauge("watchfed_raft_leader", "1 if this node leads the federation's raft group.", func() float64 { l, _, _, _, _ := status(); return l }),
		gauge("watchfed_raft_term", "Current raft term.", func() float64 { _, t, _, _, _ := status(); return t }),
		gauge("watchfed_raft_last_index", "Last raft log index on this node.", func() float64 { _, _, l, _, _ := status(); return l }),
		gauge("watchfed_raft_commit_index", "Raft commit index known to this node.", func() float64 { _, _, _, c, _ := status(); return c }),
		gauge("watchfed_raft_applied_index", "Last log index applied to this node's state.", func() float64 { _, _, _, _, a := status(); return a }),
		gauge("watchfed_raft_apply_lag_entries", "Entries in this node's log not yet applied.", func() float64 {
			_, _, last, _, applied := status()
			return max(last-applied, 0)
		}),
		gauge("watchfed_protocol", "The federation protocol version entries are applied by.", func() float64 {
			return float64(n.fed.Protocol().Active)
		}),
		gauge("watchfed_diverged", "1 if this node's replicated state differs from the federation's after a checkpoint and a rebuild (see status).", func() float64 {
			if n.fed.Checkpoints().Diverged != "" {
				return 1
			}
			return 0
		}),
		counter("watchfed_checkpoint_disagreements_total", "Checkpoints whose state hash differed from this node's.", func() float64 {
			return float64(n.fed.Checkpoints().Disagreements)
		}),
		gauge("watchfed_halted", "1 if this node stopped applying the log at an entry its binary cannot apply (see status).", func() float64 {
			if n.fed.Protocol().Halted != nil {
				return 1
			}
			return 0
		}),
		gauge("watchfed_outbox_entries", "Record versions waiting to be published.", func() float64 {
			recs, _ := n.store.Outbox(context.Background(), 100000)
			return float64(len(recs))
		}),
	)
	return m
}

// notReady says why the node should not be sent traffic, or "" when it is
// ready: it serves, is in a federation, knows a leader and applies the log.
// (A rebuild of the replicated state happens before the node serves.)
func (n *Node) notReady() string {
	select {
	case <-n.closing:
		return "shutting down"
	default:
	}
	if err := n.store.Damaged(); err != nil {
		return "a damaged value in the record store, reads of it refused (restore node.db from a backup): " + err.Error()
	}
	if !n.fed.Joined() {
		return "in no federation (federation init, or start with --join)"
	}
	if id, _ := n.fed.Leader(); id == "" {
		return "no leader known (no quorum reachable)"
	}
	if h := n.fed.Protocol().Halted; h != nil {
		return "stopped applying the log (see status)"
	}
	if full, path := n.fed.DiskFull(); full {
		return "disk full: " + path + " (writes refused until space returns)"
	}
	if n.fed.Rebuilding() {
		return "rebuilding the replicated state from snapshot and log (shared reads refused until done)"
	}
	if n.fed.Diverged() != "" {
		return "the replicated state is diverged from the federation's (see status)"
	}
	return ""
}

// serveMetrics serves /metrics on addr until ctx ends, and beside it
// /healthz (the process answers) and /readyz (200, or 503 with the reason).
func (n *Node) serveMetrics(ctx context.Context, addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if why := n.notReady(); why != "" {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	n.log.Info("metrics serving", "addr", lis.Addr().String())
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
