package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/checksum"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func open(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func version(id string, v uint64, at time.Time, name string, status pb.DesignationStatus) *pb.Record {
	return &pb.Record{
		Id: id, Version: v, Kind: pb.Kind_KIND_DESIGNATION, Origin: "DEV", UpdatedAt: timestamppb.New(at),
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_PERSON, Name: name},
		Detail:  &pb.Record_Designation{Designation: &pb.Designation{Program: "P", Status: status}},
	}
}

func ev(action string) *pb.AuditEvent {
	return &pb.AuditEvent{Time: timestamppb.New(t0), Agency: "DEV", Actor: "tester", Action: action, Outcome: "ok"}
}

func mustPut(t *testing.T, s *Store, r *pb.Record) {
	t.Helper()
	if _, err := s.Put(context.Background(), r, ev("put")); err != nil {
		t.Fatal(err)
	}
}

func TestVersionsAndPointInTime(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	active, delisted := pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE, pb.DesignationStatus_DESIGNATION_STATUS_DELISTED
	mustPut(t, s, version("DEV/A", 1, t0, "Alpha", active))
	mustPut(t, s, version("DEV/A", 2, t0.Add(time.Hour), "Alpha Two", active))
	mustPut(t, s, version("DEV/A", 3, t0.Add(2*time.Hour), "Alpha Two", delisted))
	mustPut(t, s, version("DEV/B", 1, t0.Add(30*time.Minute), "Beta", active))

	cases := []struct {
		name    string
		asOf    time.Time
		wantA   uint64 // 0: not found
		listAll int
		active  int
	}{
		{"before creation", t0.Add(-time.Second), 0, 0, 0},
		{"at creation", t0, 1, 1, 1},
		{"between versions", t0.Add(45 * time.Minute), 1, 2, 2},
		{"after amendment", t0.Add(90 * time.Minute), 2, 2, 2},
		{"after delisting", t0.Add(3 * time.Hour), 3, 2, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.At(ctx, "DEV/A", tc.asOf)
			if tc.wantA == 0 {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("At: %v, %v; want not found", r, err)
				}
			} else if err != nil || r.Version != tc.wantA {
				t.Fatalf("At: version %v, %v; want %d", r.GetVersion(), err, tc.wantA)
			}
			all, _, err := s.List(ctx, ListOptions{AsOf: tc.asOf, IncludeInactive: true})
			if err != nil || len(all) != tc.listAll {
				t.Fatalf("List all: %d records, %v; want %d", len(all), err, tc.listAll)
			}
			act, _, _ := s.List(ctx, ListOptions{AsOf: tc.asOf})
			if len(act) != tc.active {
				t.Fatalf("List active: %d; want %d", len(act), tc.active)
			}
		})
	}
	h, err := s.History(ctx, "DEV/A")
	if err != nil || len(h) != 3 || h[0].Subject.Name != "Alpha" || h[2].GetDesignation().Status != delisted {
		t.Fatalf("History: %v, %v", h, err)
	}
	if _, err := s.History(ctx, "DEV/none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("History of unknown id: %v", err)
	}
}

// TestVersionsInTheOrderNamed: Versions reads the versions named, in the
// order named, and fails as a whole when one is missing.
func TestVersionsInTheOrderNamed(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	active := pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE
	mustPut(t, s, version("DEV/A", 1, t0, "Alpha", active))
	mustPut(t, s, version("DEV/A", 2, t0.Add(time.Hour), "Alpha Two", active))
	mustPut(t, s, version("DEV/B", 1, t0, "Beta", active))
	for _, tc := range []struct {
		name string
		refs []VersionRef
		want []string // subject names; nil: not found
	}{
		{"none", nil, []string{}},
		{"out of key order", []VersionRef{{"DEV/B", 1}, {"DEV/A", 2}, {"DEV/A", 1}}, []string{"Beta", "Alpha Two", "Alpha"}},
		{"a version missing", []VersionRef{{"DEV/A", 1}, {"DEV/A", 3}}, nil},
		{"a record missing", []VersionRef{{"DEV/C", 1}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := s.Versions(ctx, tc.refs)
			if tc.want == nil {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Versions: %v, %v; want not found", recs, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, r := range recs {
				got = append(got, r.Subject.Name)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("Versions: %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConflictStoresNothing(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	mustPut(t, s, version("DEV/A", 1, t0, "Alpha", 1))
	for _, bad := range []*pb.Record{
		version("DEV/A", 1, t0.Add(time.Hour), "Again", 1),         // same version
		version("DEV/A", 3, t0.Add(time.Hour), "Skip", 1),          // gap
		version("DEV/A", 2, t0.Add(-time.Hour), "Back in time", 1), // clock went back
		version("DEV/B", 2, t0, "No first", 1),                     // new id must start at 1
	} {
		if _, err := s.Put(ctx, bad, ev("bad")); err == nil {
			t.Fatalf("accepted %v", bad)
		}
	}
	cur, err := s.Current(ctx, "DEV/A")
	if err != nil || cur.Version != 1 || cur.Subject.Name != "Alpha" {
		t.Fatalf("current after rejected writes: %v %v", cur, err)
	}
	// A rejected write appends no audit event either (the caller audits the refusal).
	evs, _ := s.ListAudit(ctx, 0, 100)
	if len(evs) != 1 {
		t.Fatalf("%d audit events, want 1", len(evs))
	}
}

func TestListPaging(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	var recs []*pb.Record
	var evs []*pb.AuditEvent
	for i := 0; i < 25; i++ {
		r := version(fmt.Sprintf("DEV/%03d", i), 1, t0, "N", 1)
		if i%2 == 0 {
			r.Kind, r.Detail = pb.Kind_KIND_DENIAL, &pb.Record_Denial{Denial: &pb.Denial{Status: pb.DenialStatus_DENIAL_STATUS_DENIED}}
		}
		r.SourceRef = fmt.Sprintf("src-%d:%d", i%3, i)
		recs, evs = append(recs, r), append(evs, ev("import"))
	}
	if _, err := s.PutBatch(ctx, recs, evs); err != nil {
		t.Fatal(err)
	}
	var got []string
	after := ""
	for {
		page, next, err := s.List(ctx, ListOptions{Limit: 10, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			got = append(got, r.Id)
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(got) != 25 || got[0] != "DEV/000" || got[24] != "DEV/024" {
		t.Fatalf("paged list: %v", got)
	}
	den, _, _ := s.List(ctx, ListOptions{Kind: pb.Kind_KIND_DENIAL})
	src, _, _ := s.List(ctx, ListOptions{SourcePrefix: "src-1:"})
	if len(den) != 13 || len(src) != 8 {
		t.Fatalf("filters: %d denials, %d from src-1", len(den), len(src))
	}
}

func TestConcurrentWritersAllPresent(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				id := fmt.Sprintf("DEV/w%02d-%02d", w, i)
				if _, err := s.Put(ctx, version(id, 1, t0, id, 1), ev("put")); err != nil {
					t.Error(err)
				}
				if _, err := s.AppendAudit(ctx, ev("read")); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	all, _, _ := s.List(ctx, ListOptions{})
	if len(all) != 320 {
		t.Fatalf("%d records, want 320", len(all))
	}
	res, err := s.VerifyAudit(ctx)
	if err != nil || !res.OK || res.Checked != 640 {
		t.Fatalf("verify: %+v %v", res, err)
	}
}

func TestAuditTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(b *bolt.Bucket, meta *bolt.Bucket) error
		seq    uint64
	}{
		{"edited detail", func(b, _ *bolt.Bucket) error {
			return edit(b, 3, func(e *pb.AuditEvent) { e.Detail = "nothing happened" })
		}, 3},
		{"edited and rehashed without relinking", func(b, _ *bolt.Bucket) error {
			return edit(b, 2, func(e *pb.AuditEvent) { e.Actor = "x"; e.Hash = chainHash(e.PrevHash, e) })
		}, 3},
		{"deleted middle", func(b, _ *bolt.Bucket) error { return b.Delete(be64(4)) }, 4},
		{"deleted tail", func(b, _ *bolt.Bucket) error { return b.Delete(be64(5)) }, 5},
		{"swapped", func(b, _ *bolt.Bucket) error {
			two, three := append([]byte(nil), b.Get(be64(2))...), append([]byte(nil), b.Get(be64(3))...)
			if err := b.Put(be64(2), three); err != nil {
				return err
			}
			return b.Put(be64(3), two)
		}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, path := open(t)
			ctx := context.Background()
			for i := 0; i < 5; i++ {
				if _, err := s.AppendAudit(ctx, ev(fmt.Sprint("action", i))); err != nil {
					t.Fatal(err)
				}
			}
			if res, _ := s.VerifyAudit(ctx); !res.OK || res.Checked != 5 {
				t.Fatalf("intact chain: %+v", res)
			}
			s.Close()
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error { return tc.tamper(tx.Bucket(bucketAudit), tx.Bucket(bucketMeta)) }); err != nil {
				t.Fatal(err)
			}
			db.Close()
			s2, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			res, err := s2.VerifyAudit(ctx)
			if err != nil || res.OK || res.FirstBrokenSeq != tc.seq {
				t.Fatalf("after tampering: %+v, %v; want broken at %d", res, err, tc.seq)
			}
		})
	}
}

// edit changes an audit event as a dishonest insider would: its checksum
// made anew, so only the chain can tell.
func edit(b *bolt.Bucket, seq uint64, fn func(*pb.AuditEvent)) error {
	k := binary.BigEndian.AppendUint64(nil, seq)
	raw, err := checksum.Open("node.db", bucketAudit, k, b.Get(k))
	if err != nil {
		return err
	}
	e := &pb.AuditEvent{}
	if err := proto.Unmarshal(raw, e); err != nil {
		return err
	}
	fn(e)
	data, err := proto.Marshal(e)
	if err != nil {
		return err
	}
	return put(b, be64(seq), data)
}

func TestSecondOpenFailsFast(t *testing.T) {
	_, path := open(t)
	start := time.Now()
	_, err := Open(path, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v; want ErrLocked", err)
	}
	t.Logf("second open refused after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

func BenchmarkPut(b *testing.B) {
	s, _ := open(b)
	ctx := context.Background()
	var mu sync.Mutex
	n := 0
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			mu.Lock()
			n++
			id := fmt.Sprintf("DEV/%09d", n)
			mu.Unlock()
			if _, err := s.Put(ctx, version(id, 1, t0, id, 1), ev("put")); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkCurrent(b *testing.B) {
	s, _ := open(b)
	ctx := context.Background()
	if _, err := s.Put(ctx, version("DEV/A", 1, t0, "A", 1), ev("put")); err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			if _, err := s.Current(ctx, "DEV/A"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestSharedCommitIsolatesAFailedWriter: writers that share a transaction
// with one whose write is refused still commit, and the refused one stores
// nothing (neither the record nor its audit event).
func TestSharedCommitIsolatesAFailedWriter(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	mustPut(t, s, version("DEV/taken", 1, t0, "first", 1))
	var wg sync.WaitGroup
	errs := make([]error, 33)
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := version(fmt.Sprintf("DEV/w%02d", w), 1, t0, "ok", 1)
			if w%8 == 0 {
				r = version("DEV/taken", 1, t0, "conflicting", 1) // version 1 exists
			}
			_, errs[w] = s.Put(ctx, r, ev("put"))
		}()
	}
	wg.Wait()
	for w, err := range errs {
		if w%8 == 0 {
			if !errors.Is(err, ErrConflict) {
				t.Errorf("writer %d: err %v, want a conflict", w, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("writer %d: %v", w, err)
		}
	}
	all, _, _ := s.List(ctx, ListOptions{})
	if len(all) != 1+28 {
		t.Errorf("%d records, want 29", len(all))
	}
	if cur, err := s.Current(ctx, "DEV/taken"); err != nil || cur.Subject.Name != "first" {
		t.Errorf("DEV/taken is %v (%v), want the first write", cur, err)
	}
	res, err := s.VerifyAudit(ctx)
	if err != nil || !res.OK || res.Checked != 29 {
		t.Errorf("audit: %+v %v, want 29 events in a valid chain", res, err)
	}
}
