package federation

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/record"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestBoundBytes: a publication takes records up to maxBatchBytes, and
// always at least one, however large.
func TestBoundBytes(t *testing.T) {
	rec := func(size int) *pb.Record {
		return &pb.Record{Id: "X", Subject: &pb.Subject{Name: strings.Repeat("n", size)}}
	}
	mib := func(n int) []*pb.Record {
		var out []*pb.Record
		for range n {
			out = append(out, rec(1<<20))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		recs []*pb.Record
		want int
	}{
		{"small ones all fit", []*pb.Record{rec(10), rec(10), rec(10)}, 3},
		{"cut at the limit", mib(6), 3},
		{"one oversized record alone", []*pb.Record{rec(6 << 20), rec(10)}, 1},
		{"none", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(boundBytes(tc.recs)); got != tc.want {
				t.Fatalf("kept %d records, want %d", got, tc.want)
			}
		})
	}
}

// TestSealedAhead: a lone writer's version is sealed while its store commit
// runs, but what partners read is always what was stored, under the policy
// in force when it is published: a version that changed after it was
// registered, a policy changed meanwhile, or a write that failed and whose
// version another write took, are all sealed again.
func TestSealedAhead(t *testing.T) {
	for _, tc := range []struct {
		name string
		// meanwhile runs once the registered version is sealed and returns
		// the version to store.
		meanwhile func(t *testing.T, h *harness, rec *pb.Record, drop func()) *pb.Record
		want      string // the name the partner reads; "" nothing
	}{
		{"stored as registered", func(t *testing.T, h *harness, rec *pb.Record, drop func()) *pb.Record {
			return rec
		}, "Ivan Petrov"},
		{"changed after it was registered", func(t *testing.T, h *harness, rec *pb.Record, drop func()) *pb.Record {
			rec.Subject.Name = "Ivan Petrovich"
			return rec
		}, "Ivan Petrovich"},
		{"policy changed meanwhile", func(t *testing.T, h *harness, rec *pb.Record, drop func()) *pb.Record {
			h.policy.set(t, shareNothing)
			return rec
		}, ""},
		{"write failed, its version written by another", func(t *testing.T, h *harness, rec *pb.Record, drop func()) *pb.Record {
			drop()
			other := proto.Clone(rec).(*pb.Record)
			other.Subject.Name = "Olga Petrova"
			return other
		}, "Olga Petrova"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, shareWithPartner, true)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			now := time.Now().UTC()
			rec := &pb.Record{
				Id: record.NewID(self, now), Version: 1, Origin: self, Kind: pb.Kind_KIND_DESIGNATION, Marking: pb.Marking_MARKING_GREEN,
				Subject:   &pb.Subject{Schema: pb.Schema_SCHEMA_PERSON, Name: "Ivan Petrov"},
				Detail:    &pb.Record_Designation{Designation: &pb.Designation{Program: "RUSSIA-EO14024"}},
				CreatedAt: timestamppb.New(now), UpdatedAt: timestamppb.New(now),
			}
			sealed := h.fed.verified.len()
			_, drop := h.fed.ExpectPublished(rec)
			// The loop seals it at once: nothing is in flight, and the
			// store does not hold it yet.
			waitUntil(t, ctx, func() bool { return h.fed.verified.len() > sealed }, "the version to be sealed ahead")
			stored := tc.meanwhile(t, h, rec, drop)
			if _, err := h.store.Put(ctx, stored, &pb.AuditEvent{Action: "test"}); err != nil {
				t.Fatal(err)
			}
			h.fed.WakeUp()
			waitUntil(t, ctx, func() bool {
				out, err := h.store.Outbox(ctx, 10)
				return err == nil && len(out) == 0
			}, "the version to be published")
			got := h.partnerReads(t, rec.Id)
			if got.GetSubject().GetName() != tc.want {
				t.Fatalf("partner reads %q, want %q", got.GetSubject().GetName(), tc.want)
			}
		})
	}
}

// len is the number of publications remembered.
func (v *verifiedOnce) len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.m)
}

// TestPolicyReadBeforeSealing: a record written after the policy file was
// edited is sealed under the edited file, though nothing else made the node
// read it: a partner taken out of the file gets nothing written after.
func TestPolicyReadBeforeSealing(t *testing.T) {
	h := start(t, shareWithPartner, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := h.write(t, ctx, "reasons")
	if h.partnerReads(t, before.Id) == nil {
		t.Fatalf("%s: nothing sealed to %s under the first policy", before.Id, partner)
	}
	h.policy.edit(t, shareNothing)
	after := h.write(t, ctx, "reasons")
	if got := h.partnerReads(t, after.Id); got != nil {
		t.Fatalf("%s written after the edit was sealed to %s: %v", after.Id, partner, got)
	}
}
