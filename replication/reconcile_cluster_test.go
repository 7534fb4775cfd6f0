package replication_test

import (
	"errors"
	"testing"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/replication/replicationtest"
)

// TestRegistryDecidesConfiguration: a removal through the log takes the
// member out of raft's configuration on every member, with no raft call by
// anyone; a server the registry does not hold (added to raft behind its
// back) is removed, by a new leader after a leadership transfer too.
func TestRegistryDecidesConfiguration(t *testing.T) {
	c := cluster(t, replicationtest.Options{})
	ctx := ctxT(t)
	l := leader(t, c)
	gone := c.Follower(l)
	remove := &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{Change: &peerpb.MemberChange_Remove{Remove: gone.ID}}}}
	for retried := false; ; retried = true {
		// Through whichever member leads: under load leadership can move.
		// A removal cut short by that may have committed; again, it is
		// refused as the removal of a non-member.
		cur := leader(t, c)
		_, err := cur.Rep.Apply(ctx, remove)
		if err == nil || retried && errors.Is(err, replication.ErrRejected) {
			break
		}
		if !errors.Is(err, replication.ErrNotLeader) {
			t.Fatal(err)
		}
	}
	absent := func(id string) func(map[string]bool) bool {
		return func(s map[string]bool) bool { _, in := s[id]; return !in }
	}
	for _, m := range c.Members {
		if m == gone {
			continue
		}
		if err := m.Rep.WaitConfiguration(ctx, absent(gone.ID)); err != nil {
			t.Fatalf("%s still sees %s in raft's configuration: %v", m.ID, gone.ID, err)
		}
	}
	gone.Stop()

	l = leader(t, c)
	if err := replication.AddBehindRegistry(l.Rep, "GHOST", "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Rep.WaitConfiguration(ctx, absent("GHOST")); err != nil {
		t.Fatalf("GHOST stayed in raft's configuration: %v", err)
	}

	if err := l.Rep.TransferLeadership("", ""); err != nil {
		t.Fatal(err)
	}
	next := leader(t, c)
	if next == l {
		t.Fatalf("%s still leads after the transfer", l.ID)
	}
	if err := replication.AddBehindRegistry(next.Rep, "GHOST2", "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if err := next.Rep.WaitConfiguration(ctx, absent("GHOST2")); err != nil {
		t.Fatalf("GHOST2 stayed in raft's configuration: %v", err)
	}
}
