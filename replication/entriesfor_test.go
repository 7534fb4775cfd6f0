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
// sealed to it), or with EntriesFrom every publication from it; the others
// come back empty, as they hold nothing its reader needs.
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
	for _, tc := range []struct {
		name  string
		read  func(after uint64, limit int) ([]replication.Entry, error)
		named func(body *peerpb.PublicationBody) bool
		full  string // the entries that come back decoded
	}{
		{"for a", func(after uint64, limit int) ([]replication.Entry, error) {
			return a.Rep.EntriesFor(after, limit, a.ID)
		},
			func(body *peerpb.PublicationBody) bool {
				return body.Origin == a.ID || slices.Contains(body.Envelopes[0].Header.Recipients, a.ID)
			}, "[a/1 b/2 a/2 o/2]"},
		{"from a", func(after uint64, limit int) ([]replication.Entry, error) {
			return a.Rep.EntriesFrom(after, limit, a.ID)
		},
			func(body *peerpb.PublicationBody) bool { return body.Origin == a.ID }, "[a/1 a/2]"},
		{"from b", func(after uint64, limit int) ([]replication.Entry, error) {
			return a.Rep.EntriesFrom(after, limit, b.ID)
		},
			func(body *peerpb.PublicationBody) bool { return body.Origin == b.ID }, "[b/1 b/2 b/3]"},
	} {
		for _, limit := range []int{1 << 20, 2} {
			t.Run(fmt.Sprintf("%s limit %d", tc.name, limit), func(t *testing.T) {
				var got []replicationEntry
				for after := uint64(0); ; {
					es, err := tc.read(after, limit)
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
					t.Fatalf("%d entries, want %d", len(got), len(all))
				}
				var full []string
				for i, e := range got {
					if e.index != all[i].Index {
						t.Fatalf("entry %d at index %d, want %d", i, e.index, all[i].Index)
					}
					named := tc.named(all[i].Body)
					switch {
					case named && !proto.Equal(e.body, all[i].Body):
						t.Fatalf("index %d is needed but comes back as %v", e.index, e.body)
					case !named && proto.Size(e.body) != 0:
						t.Fatalf("index %d is not needed but comes back decoded: %v", e.index, e.body)
					case named:
						full = append(full, all[i].Body.Envelopes[0].Header.EntryId)
					}
				}
				if fmt.Sprint(full) != tc.full {
					t.Fatalf("entries in full %v, want %s", full, tc.full)
				}
			})
		}
	}
}

type replicationEntry struct {
	index uint64
	body  *peerpb.PublicationBody
}
