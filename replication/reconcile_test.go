package replication

import (
	"fmt"
	"slices"
	"testing"

	"github.com/hashicorp/raft"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestPlan: raft's configuration is brought to what the registry says.
func TestPlan(t *testing.T) {
	joined := func(agency string, idx uint64, voter bool) *pb.Member {
		return &pb.Member{Agency: agency, Address: agency + ":7400", Joined: true, JoinedIndex: idx, Voter: voter}
	}
	invited := &pb.Member{Agency: "NEW", Address: "NEW:7400", Voter: true}
	server := func(id string, voter bool) raft.Server {
		s := raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id + ":7400"), Suffrage: raft.Nonvoter}
		if voter {
			s.Suffrage = raft.Voter
		}
		return s
	}
	cfg := func(ss ...raft.Server) raft.Configuration { return raft.Configuration{Servers: ss} }
	all := func(string) bool { return true }
	none := func(string) bool { return false }
	var eight []*pb.Member
	var eightVoting []raft.Server
	for i := range 8 {
		id := fmt.Sprintf("A%d", i)
		eight = append(eight, joined(id, uint64(i+1), true))
		eightVoting = append(eightVoting, server(id, true))
	}
	tests := []struct {
		name    string
		members []*pb.Member
		cfg     raft.Configuration
		healthy func(string) bool
		want    []string
	}{
		{"in step", []*pb.Member{joined("A", 1, true), joined("B", 2, true)}, cfg(server("A", true), server("B", true)), all, nil},
		{"founding: no joined member yet", []*pb.Member{{Agency: "A", Address: "A:7400"}}, cfg(server("A", true)), all, nil},
		{"removed from the registry: a hidden voter goes", []*pb.Member{joined("A", 1, true)}, cfg(server("A", true), server("B", true)), all, []string{"remove B"}},
		{"joined: enters as a non-voter", []*pb.Member{joined("A", 1, true), joined("B", 2, true)}, cfg(server("A", true)), none, []string{"add B"}},
		{"caught up: promoted", []*pb.Member{joined("A", 1, true), joined("B", 2, true)}, cfg(server("A", true), server("B", false)), all, []string{"promote B"}},
		{"not caught up: waits", []*pb.Member{joined("A", 1, true), joined("B", 2, true)}, cfg(server("A", true), server("B", false)), none, nil},
		{"invited as a non-voter: never promoted", []*pb.Member{joined("A", 1, true), joined("B", 2, false)}, cfg(server("A", true), server("B", false)), all, nil},
		{"voting but registered non-voter: demoted", []*pb.Member{joined("A", 1, true), joined("B", 2, false)}, cfg(server("A", true), server("B", true)), all, []string{"demote B"}},
		{"invited, not joined: left alone", []*pb.Member{joined("A", 1, true), invited}, cfg(server("A", true), server("NEW", true)), all, nil},
		{"moved: readdressed", []*pb.Member{joined("A", 1, true), {Agency: "B", Address: "B2:7400", Joined: true, JoinedIndex: 2, Voter: true}}, cfg(server("A", true), server("B", true)), all, []string{"readdress B"}},
		{"eighth voter: stays a non-voter", eight, cfg(append(eightVoting[:7:7], server("A7", false))...), all, nil},
		{"eight voting: the latest joined demoted", eight, cfg(eightVoting...), all, []string{"demote A7"}},
		{"the leader left the registry: it goes", []*pb.Member{joined("B", 2, true)}, cfg(server("A", true), server("B", true)), all, []string{"remove A"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range plan(tc.members, tc.cfg, "A", DefaultMaxVoters, tc.healthy) {
				got = append(got, c.op+" "+c.id)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("plan = %v, want %v", got, tc.want)
			}
		})
	}
}
