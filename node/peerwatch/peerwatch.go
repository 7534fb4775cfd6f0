// Package peerwatch keeps what this node last learned of every member of
// its federation: whether it answers, its applied index, its role and when
// it last answered. It asks each member for its status (GetNodeStatus) in
// the background and whenever peers are listed, and remembers the last
// answer, so a member that stops answering is shown with its last known
// applied index, a lag from it and the time of the last contact, not as
// lag 0. Every node keeps its own memory, so a new leader knows as much as
// the old one did.
package peerwatch

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Members is what the watch asks: the member registry, this node's own
// status and a member's status over the network.
type Members interface {
	Members() ([]*pb.Member, error)
	Voters() (map[string]bool, error)
	Status() *pb.GetStatusResponse
	PeerStatus(ctx context.Context, addr string) (*pb.GetStatusResponse, error)
}

// askTimeout bounds one member's status call: a member that does not answer
// within it is unreachable for this round.
const askTimeout = 2 * time.Second

// seen is the last answer of a member.
type seen struct {
	applied, last uint64
	role          string
	at            time.Time
}

// Watch remembers the members' last answers.
type Watch struct {
	agency string
	src    Members
	now    func() time.Time

	mu   sync.Mutex
	seen map[string]seen // by agency
	view []*pb.Peer      // the last round's
}

// New makes a watch of agency's federation.
func New(agency string, src Members, now func() time.Time) *Watch {
	if now == nil {
		now = time.Now
	}
	return &Watch{agency: agency, src: src, now: now, seen: map[string]seen{}}
}

// Run polls the members every interval until ctx ends.
func (w *Watch) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_, _ = w.Poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll asks every member for its status at once and returns every member as
// now known: a member that answered with its answer, one that did not with
// its last answer (reachable false). Lag is from the leader's last index (or
// the highest last index known, with no leader answering) to the member's
// applied index.
func (w *Watch) Poll(ctx context.Context) ([]*pb.Peer, error) {
	members, err := w.src.Members()
	if err != nil {
		return nil, err
	}
	voter, _ := w.src.Voters()
	answers := make([]*pb.GetStatusResponse, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		if m.Agency == w.agency {
			answers[i] = w.src.Status()
			continue
		}
		if !m.Joined || m.Address == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, askTimeout)
			defer cancel()
			if st, err := w.src.PeerStatus(cctx, m.Address); err == nil {
				answers[i] = st
			}
		}()
	}
	wg.Wait()
	now := w.now()

	w.mu.Lock()
	defer w.mu.Unlock()
	var leaderLast, highest uint64
	for i, st := range answers {
		if st == nil {
			continue
		}
		w.seen[members[i].Agency] = seen{applied: st.AppliedIndex, last: st.LastIndex, role: st.Role, at: now}
		if st.Role == "leader" {
			leaderLast = st.LastIndex
		}
	}
	for _, s := range w.seen {
		highest = max(highest, s.last, s.applied)
	}
	if leaderLast == 0 {
		leaderLast = highest
	}
	peers := make([]*pb.Peer, len(members))
	for i, m := range members {
		p := &pb.Peer{Id: m.Agency, Agency: m.Agency, Address: m.Address, Voter: voter[m.Agency], Role: "unreachable", Reachable: answers[i] != nil}
		if !m.Joined {
			p.Role = "invited"
		}
		if s, ok := w.seen[m.Agency]; ok {
			p.AppliedIndex, p.LastContact = s.applied, timestamppb.New(s.at)
			if p.Reachable {
				p.Role = s.role
			}
		}
		if m.Joined && leaderLast > p.AppliedIndex {
			p.Lag = leaderLast - p.AppliedIndex
		}
		peers[i] = p
	}
	w.view = peers
	return peers, nil
}

// Collector exports the last round's view per peer: reachable,
// last_contact_seconds (since the last answer; +Inf if none yet) and
// lag_entries.
func (w *Watch) Collector() prometheus.Collector { return collector{w} }

type collector struct{ w *Watch }

var (
	reachableDesc = prometheus.NewDesc("watchfed_peer_reachable", "1 if the member answered this node's last status call.", []string{"peer"}, nil)
	contactDesc   = prometheus.NewDesc("watchfed_peer_last_contact_seconds", "Seconds since the member last answered a status call (+Inf: never since this node started).", []string{"peer"}, nil)
	lagDesc       = prometheus.NewDesc("watchfed_peer_lag_entries", "Entries the member's applied index (its last known one if unreachable) is behind the leader's last index.", []string{"peer"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- reachableDesc
	ch <- contactDesc
	ch <- lagDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.w.mu.Lock()
	view, now := c.w.view, c.w.now()
	c.w.mu.Unlock()
	for _, p := range view {
		if p.Role == "invited" {
			continue
		}
		reach, age := 0.0, math.Inf(1)
		if p.Reachable {
			reach = 1
		}
		if p.LastContact != nil {
			age = max(now.Sub(p.LastContact.AsTime()).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(reachableDesc, prometheus.GaugeValue, reach, p.Agency)
		ch <- prometheus.MustNewConstMetric(contactDesc, prometheus.GaugeValue, age, p.Agency)
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(p.Lag), p.Agency)
	}
}
