package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// rechain rewrites the chain from event from on (each event's prev_hash and
// hash) and the count and head beside it, as an insider who knows the
// format would after editing or removing events: VerifyAudit alone then
// finds nothing.
func rechain(tx *bolt.Tx, from uint64) error {
	b, meta := tx.Bucket(bucketAudit), tx.Bucket(bucketMeta)
	var prev []byte
	var last uint64
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		e := &pb.AuditEvent{}
		if err := proto.Unmarshal(val(tx, bucketAudit, k, v), e); err != nil {
			return err
		}
		if e.Seq >= from {
			e.PrevHash = prev
			e.Hash = nil
			e.Hash = chainHash(prev, e)
			data, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
			if err != nil {
				return err
			}
			if err := put(b, bytes.Clone(k), data); err != nil {
				return err
			}
		}
		prev, last = e.Hash, e.Seq
	}
	if err := put(meta, keyAuditHead, prev); err != nil {
		return err
	}
	return put(meta, keyAuditCount, be64(last))
}

// TestCheckAnchor: a chain shortened or edited and re-chained passes
// VerifyAudit, and fails against an anchor of its head taken before,
// naming the anchored event; an intact chain that grew since passes.
func TestCheckAnchor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(tx *bolt.Tx) error
		broken uint64 // first broken seq; 0 intact
		reason string
	}{
		{"intact and grown", nil, 0, ""},
		{"last events removed", func(tx *bolt.Tx) error {
			for seq := uint64(8); seq <= 10; seq++ {
				if err := tx.Bucket(bucketAudit).Delete(be64(seq)); err != nil {
					return err
				}
			}
			return rechain(tx, 8)
		}, 8, "it ends at event 7, but event 10 was anchored (test anchor): events 8 to 10 were removed"},
		{"an event edited and the chain recomputed", func(tx *bolt.Tx) error {
			if err := edit(tx.Bucket(bucketAudit), 4, func(e *pb.AuditEvent) { e.Detail = "nothing happened" }); err != nil {
				return err
			}
			return rechain(tx, 4)
		}, 10, "event 10 does not have the anchored hash (test anchor)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, path := open(t)
			ctx := context.Background()
			for i := range 10 {
				if _, err := s.AppendAudit(ctx, ev(fmt.Sprint("action", i))); err != nil {
					t.Fatal(err)
				}
			}
			seq, head, err := s.AuditHead()
			if err != nil || seq != 10 || len(head) != 32 {
				t.Fatalf("head %d %x, %v", seq, head, err)
			}
			a := Anchor{Seq: seq, Hash: head, Where: "test anchor"}
			if tc.tamper == nil {
				if _, err := s.AppendAudit(ctx, ev("later")); err != nil {
					t.Fatal(err)
				}
			} else {
				s.Close()
				db, err := bolt.Open(path, 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := db.Update(tc.tamper); err != nil {
					t.Fatal(err)
				}
				db.Close()
				if s, err = Open(path, Options{}); err != nil {
					t.Fatal(err)
				}
				defer s.Close()
			}
			res, err := s.VerifyAudit(ctx)
			if err != nil || !res.OK {
				t.Fatalf("the chain alone: %+v, %v; want it to pass", res, err)
			}
			res, err = s.CheckAnchor(ctx, res, a)
			if err != nil {
				t.Fatal(err)
			}
			if res.AnchoredSeq != 10 || res.AnchoredAt != "test anchor" {
				t.Fatalf("anchored %d at %q", res.AnchoredSeq, res.AnchoredAt)
			}
			if tc.broken == 0 {
				if !res.OK {
					t.Fatalf("intact chain reported broken: %s", res.Reason)
				}
				return
			}
			if res.OK || res.FirstBrokenSeq != tc.broken || !strings.Contains(res.Reason, tc.reason) {
				t.Fatalf("got ok %v at %d: %q; want broken at %d saying %q", res.OK, res.FirstBrokenSeq, res.Reason, tc.broken, tc.reason)
			}
		})
	}
}
