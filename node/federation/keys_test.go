package federation

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestKeysFollowMembership: the partner is removed and joins again with new
// keys. What it was entitled to before reaches its new keys again (key
// grants under a new epoch); what is published afterwards opens with the
// new keys only, never with any key the departed member held.
func TestKeysFollowMembership(t *testing.T) {
	h := start(t, shareWithPartner, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := h.write(t, ctx, "first")
	old := h.partner
	if opens(t, h, old, before.Id) == nil {
		t.Fatalf("%s: the partner cannot read it before leaving", before.Id)
	}

	h.apply(t, ctx, &peerpb.MemberChange{Change: &peerpb.MemberChange_Remove{Remove: partner}})
	var err error
	if h.partner, err = seal.GenerateKeys(); err != nil {
		t.Fatal(err)
	}
	h.addPartner(t, ctx, false)
	h.fed.WakeUp()
	waitUntil(t, ctx, func() bool { return opens(t, h, h.partner, before.Id) != nil }, before.Id+" to reach the partner's new keys")

	after := h.write(t, ctx, "second")
	if opens(t, h, h.partner, after.Id) == nil {
		t.Fatalf("%s: the partner's new keys cannot read it", after.Id)
	}
	if got := opens(t, h, old, after.Id); got != nil {
		t.Fatalf("%s published after the departure opens with the departed member's keys: %v", after.Id, got)
	}
}

// opens is what keys open of an entry in the log, as the partner's node
// would, holding only those keys: nil if nothing.
func opens(t *testing.T, h *harness, keys *seal.Keys, id string) *pb.Record {
	t.Helper()
	opener := seal.NewOpener(partner, keys)
	es, err := h.fed.rep.Entries(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	epochs := map[uint64][]byte{}
	epochKey := func(_ string, epoch uint64) ([]byte, bool) { k, ok := epochs[epoch]; return k, ok }
	var got *pb.Record
	open := func(plain []byte, err error) {
		if err != nil {
			return // sealed to other keys
		}
		got = &pb.Record{}
		if err := proto.Unmarshal(plain, got); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range es {
		for _, g := range e.Body.EpochGrants {
			if g.Recipient != partner {
				continue
			}
			if k, err := opener.OpenEpochGrant(g); err == nil {
				epochs[g.Epoch] = k
			}
		}
		for _, env := range e.Body.Envelopes {
			for i, b := range env.Bodies {
				if env.Header.EntryId == id && slices.Contains(b.Recipients, partner) {
					open(opener.OpenBody(env.Header, uint32(i), b, epochKey))
				}
			}
		}
		for _, g := range e.Body.KeyGrants {
			if g.EntryId != id || g.GetKey().GetRecipient() != partner {
				continue
			}
			env, err := h.fed.rep.Envelope(g.EntryId, g.Version)
			if err != nil {
				t.Fatal(err)
			}
			open(opener.OpenGranted(env.Header, env.Bodies[g.BodyIndex], g, epochKey))
		}
	}
	return got
}
