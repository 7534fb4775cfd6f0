package replication_test

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/replication/replicationtest"
)

// TestEntriesForAnAgency: an agency's reader gets every index of the log,
// in order, and in full every publication that names it (its own, those
// sealed to it); the others come back empty, as they hold nothing it can
// read.
func TestEntriesForAnAgency(t *testing.T) {
	c := cluster(t, replicationtest.Options{Prefix: "agency-"})
	ctx := ctxT(t)
	a, b, other := c.Members[0], c.Members[1], c.Members[2]
	sealedTo := func(from *replicationtest.Member, entry, to string) *peerpb.Command {
		env := &peerpb.Envelope{
			Header: &peerpb.EnvelopeHeader{EntryId: entry, Version: 1, Origin: from.ID, Recipients: []string{to}},
			Bodies: []*peerpb.Body{{Recipients: []string{to}, Ciphertext: []byte("sealed")}},
		}
		body, _ := proto.Marshal(&peerpb.PublicationBody{Origin: from.ID, Envelopes: []*peerpb.Envelope{env}})
		return &peerpb.Command{Command: &peerpb.Command_Publication{Publication: &peerpb.Publication{Origin: from.ID, Body: body, Signature: ed25519.Sign(from.Sign, body)}}}
	}
	var last uint64
	for _, cmd := range []*peerpb.Command{
		a.Publication("a/1", 1, 16),  // a's own
		b.Publication("b/1", 1, 16),  // names neither a nor other
		sealedTo(b, "b/2", a.ID),     // sealed to a
		sealedTo(other, "o/1", b.ID), // names b only
		a.Publication("a/2", 1, 16),  // a's own
		sealedTo(other, "o/2", a.ID), // sealed to a
		b.Publication("b/3", 1, 16),  // names b only
	} {
		idx, err := c.Apply(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		last = idx
	}
	waitApplied(t, c, last)
	replication.ForgetBodies(a.Rep) // else the bodies applied last come back from the cache
	all, err := a.Rep.Entries(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1 << 20, 2} {
		var got []replicationEntry
		for after := uint64(0); ; {
			es, err := a.Rep.EntriesFor(after, limit, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) == 0 {
				break
			}
			for _, e := range es {
				got = append(got, replicationEntry{e.Index, e.Body})
			}
			after = es[len(es)-1].Index
		}
		if len(got) != len(all) {
			t.Fatalf("limit %d: %d entries, want %d", limit, len(got), len(all))
		}
		var full []string
		for i, e := range got {
			if e.index != all[i].Index {
				t.Fatalf("limit %d: entry %d at index %d, want %d", limit, i, e.index, all[i].Index)
			}
			named := all[i].Body.Origin == a.ID || slices.Contains(all[i].Body.Envelopes[0].Header.Recipients, a.ID)
			switch {
			case named && !proto.Equal(e.body, all[i].Body):
				t.Fatalf("limit %d: index %d names %s but comes back as %v", limit, e.index, a.ID, e.body)
			case !named && proto.Size(e.body) != 0:
				t.Fatalf("limit %d: index %d does not name %s but comes back decoded: %v", limit, e.index, a.ID, e.body)
			case named:
				full = append(full, all[i].Body.Envelopes[0].Header.EntryId)
			}
		}
		if want := "[a/1 b/2 a/2 o/2]"; fmt.Sprint(full) != want {
			t.Fatalf("limit %d: entries in full %v, want %s", limit, full, want)
		}
	}
}

type replicationEntry struct {
	index uint64
	body  *peerpb.PublicationBody
}
