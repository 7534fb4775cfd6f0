package peerwatch

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// fake is a federation of DE (this node, leader), FR and NL, and an invited BE.
type fake struct {
	self    *pb.GetStatusResponse
	answers map[string]*pb.GetStatusResponse // by address; missing: unreachable
}

func (f *fake) Members() ([]*pb.Member, error) {
	return []*pb.Member{
		{Agency: "DE", Address: "de:1", Joined: true}, {Agency: "FR", Address: "fr:1", Joined: true},
		{Agency: "NL", Address: "nl:1", Joined: true}, {Agency: "BE", Address: "be:1"},
	}, nil
}
func (f *fake) Voters() (map[string]bool, error) {
	return map[string]bool{"DE": true, "FR": true, "NL": true}, nil
}
func (f *fake) Status() *pb.GetStatusResponse { return f.self }
func (f *fake) PeerStatus(_ context.Context, addr string) (*pb.GetStatusResponse, error) {
	if st, ok := f.answers[addr]; ok {
		return st, nil
	}
	return nil, errors.New("connection refused")
}

func TestPollRemembersUnreachable(t *testing.T) {
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	f := &fake{self: &pb.GetStatusResponse{Role: "leader", LastIndex: 100, AppliedIndex: 100},
		answers: map[string]*pb.GetStatusResponse{"fr:1": {Role: "follower", LastIndex: 100, AppliedIndex: 97}}}
	w := New("DE", f, func() time.Time { return now })
	type view struct {
		reach   bool
		role    string
		applied uint64
		lag     uint64
		contact time.Time
	}
	check := func(want map[string]view) {
		t.Helper()
		peers, err := w.Poll(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range peers {
			got := view{p.Reachable, p.Role, p.AppliedIndex, p.Lag, time.Time{}}
			if p.LastContact != nil {
				got.contact = p.LastContact.AsTime()
			}
			if got != want[p.Agency] {
				t.Errorf("%s: %+v, want %+v", p.Agency, got, want[p.Agency])
			}
		}
	}
	first := now
	check(map[string]view{
		"DE": {true, "leader", 100, 0, first},
		"FR": {true, "follower", 97, 3, first},
		"NL": {false, "unreachable", 0, 100, time.Time{}}, // never answered: the whole log behind
		"BE": {false, "invited", 0, 0, time.Time{}},
	})

	// FR is killed; the log grows: FR keeps its last applied index and
	// contact time, and its lag grows from it.
	now = now.Add(time.Minute)
	delete(f.answers, "fr:1")
	f.self = &pb.GetStatusResponse{Role: "leader", LastIndex: 150, AppliedIndex: 150}
	check(map[string]view{
		"DE": {true, "leader", 150, 0, now},
		"FR": {false, "unreachable", 97, 53, first},
		"NL": {false, "unreachable", 0, 150, time.Time{}},
		"BE": {false, "invited", 0, 0, time.Time{}},
	})

	// The metrics say the same.
	reg := prometheus.NewRegistry()
	reg.MustRegister(w.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()+"/"+m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	for k, v := range map[string]float64{
		"watchfed_peer_reachable/DE": 1, "watchfed_peer_reachable/FR": 0, "watchfed_peer_reachable/NL": 0,
		"watchfed_peer_last_contact_seconds/DE": 0, "watchfed_peer_last_contact_seconds/FR": 60, "watchfed_peer_last_contact_seconds/NL": math.Inf(1),
		"watchfed_peer_lag_entries/DE": 0, "watchfed_peer_lag_entries/FR": 53, "watchfed_peer_lag_entries/NL": 150,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if len(got) != 9 {
		t.Errorf("metrics %v: want 9 (the invited member has none)", got)
	}

	// This node is no longer leader and the new leader (NL) answers: lag is
	// from NL's last index; FR's memory is kept.
	f.self = &pb.GetStatusResponse{Role: "follower", LastIndex: 160, AppliedIndex: 158}
	f.answers["nl:1"] = &pb.GetStatusResponse{Role: "leader", LastIndex: 160, AppliedIndex: 160}
	check(map[string]view{
		"DE": {true, "follower", 158, 2, now},
		"FR": {false, "unreachable", 97, 63, first},
		"NL": {true, "leader", 160, 0, now},
		"BE": {false, "invited", 0, 0, time.Time{}},
	})
}
