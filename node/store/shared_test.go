package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestSharedListPages: a partner holding thousands of entries is read page
// by page, each entry once, in id order; filters and origin apply before
// the page is cut; a received consultation is recorded in the audit log.
func TestSharedListPages(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	var batch []Received
	for i := range 250 {
		origin := "DE-BAFA"
		if i%5 == 0 {
			origin = "NL-CDIU"
		}
		st := pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE
		if i%10 == 1 {
			st = pb.DesignationStatus_DESIGNATION_STATUS_DELISTED
		}
		r := version(fmt.Sprintf("%s/%03d", origin, i), 1, t0, fmt.Sprintf("Name %d", i), st)
		r.Origin = origin
		batch = append(batch, Received{Index: uint64(i + 1), Entries: []*pb.SharedEntry{{Origin: origin, Record: r}}})
	}
	batch[7].Audit = []*pb.AuditEvent{ev("consultation.received")}
	if err := s.TakeIn(ctx, batch, 250, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    SharedListOptions
		want int
	}{
		{"all", SharedListOptions{IncludeInactive: true}, 250},
		{"in force", SharedListOptions{}, 225},
		{"one origin", SharedListOptions{Origin: "NL-CDIU", IncludeInactive: true}, 50},
		{"filtered", SharedListOptions{IncludeInactive: true, Filter: func(e *pb.SharedEntry) bool { return e.Record.Id[len(e.Record.Id)-1] == '3' }}, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]bool{}
			last := ""
			o := tc.o
			o.Limit = 40
			for {
				page, next, err := s.SharedList(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > 40 {
					t.Fatalf("page of %d entries, limit 40", len(page))
				}
				for _, e := range page {
					if seen[e.Record.Id] || e.Record.Id <= last {
						t.Fatalf("%s out of order or twice", e.Record.Id)
					}
					seen[e.Record.Id], last = true, e.Record.Id
				}
				if next == "" {
					break
				}
				o.After = next
			}
			if len(seen) != tc.want {
				t.Fatalf("paged through %d entries, want %d", len(seen), tc.want)
			}
		})
	}
	evs, err := s.ListAudit(ctx, 0, 10)
	if err != nil || len(evs) != 1 || evs[0].Action != "consultation.received" {
		t.Fatalf("audit of taking in: %v %v", evs, err)
	}
}

// TestReceivedIndexOfEmptyEntries: entries that bring this agency nothing
// advance the received index without a commit of their own; the index is
// still written at Close, and entries that bring something write it at once.
func TestReceivedIndexOfEmptyEntries(t *testing.T) {
	s, path := open(t)
	ctx := context.Background()
	if err := s.TakeIn(ctx, []Received{{Index: 1}, {Index: 2}}, 2, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ReceivedIndex(); got != 2 {
		t.Fatalf("received index %d, want 2", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, _ := s.ReceivedIndex(); got != 2 {
		t.Fatalf("received index after reopening %d, want 2", got)
	}
	r := version("NL-CDIU/1", 1, t0, "Someone", pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE)
	r.Origin = "NL-CDIU"
	s.noteReceived(5) // empty entries 3..5, then one that brings a record
	if err := s.TakeIn(ctx, []Received{{Index: 6, Entries: []*pb.SharedEntry{{Origin: "NL-CDIU", Record: r}}}}, 6, false); err != nil {
		t.Fatal(err)
	}
	var stored uint64
	_ = s.db.View(func(tx *bolt.Tx) error { stored = u64(get(tx, bucketMeta, keyReceived)); return nil })
	if stored != 6 {
		t.Fatalf("received index written %d, want 6", stored)
	}
}

// TestMarkPublishedAlone: taking versions off the outbox waits for another
// write's commit, but not forever: alone, it commits by itself.
func TestMarkPublishedAlone(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	r := version("DEV/1", 1, t0, "Someone", pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE)
	if _, err := s.Put(ctx, r, ev("record.create")); err != nil {
		t.Fatal(err)
	}
	if out, _ := s.Outbox(ctx, 10); len(out) != 1 {
		t.Fatalf("outbox holds %d versions, want 1", len(out))
	}
	if err := s.MarkPublished(ctx, []*pb.Record{r}); err != nil {
		t.Fatal(err)
	}
	if out, _ := s.Outbox(ctx, 10); len(out) != 0 {
		t.Fatalf("outbox holds %d versions after MarkPublished", len(out))
	}
}

// TestSharedFromBoundedByBytes: a Watch batch is cut by size, so large
// entries come a few at a time and small ones many at a time; the batch
// resumes where the last ended, and one entry larger than the budget still
// comes alone.
func TestSharedFromBoundedByBytes(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	big := strings.Repeat("statement ", 2000) // ~20 KiB
	var batch []Received
	for i := range 40 {
		r := version(fmt.Sprintf("DE-BAFA/%03d", i), 1, t0, fmt.Sprintf("Name %d", i), pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE)
		r.Origin = "DE-BAFA"
		if i < 20 {
			r.ChangeNote = big
		}
		batch = append(batch, Received{Index: uint64(i + 1), Entries: []*pb.SharedEntry{{Origin: "DE-BAFA", LogIndex: uint64(i + 1), Record: r}}})
	}
	if err := s.TakeIn(ctx, batch, 40, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		from     uint64
		maxBytes int
		want     int
	}{
		{"large entries, 100 KiB", 1, 100 << 10, 5},
		{"small entries, 100 KiB", 21, 100 << 10, 20},
		{"an entry over the budget comes alone", 1, 1, 1},
		{"nothing after the last", 41, 100 << 10, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := s.SharedFrom(ctx, tc.from, 0, tc.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != tc.want {
				t.Fatalf("%d entries from index %d within %d bytes, want %d", len(es), tc.from, tc.maxBytes, tc.want)
			}
			for i, e := range es {
				if e.LogIndex != tc.from+uint64(i) {
					t.Fatalf("entry %d at index %d, want %d", i, e.LogIndex, tc.from+uint64(i))
				}
			}
		})
	}
}

// TestOutboxReadsOnlySettledCommits: bbolt shows a commit to readers once
// its meta page is written, before that page's fsync returns. A version seen
// then could be published and partners hold it, and a power cut still take it
// from this store. The outbox waits for such a commit to return; here one is
// made by committing past the store's group commit, which never notes it as
// settled, as if its last fsync were under way. The next commit that returns
// (another writer's, or the publish loop's own take-off) releases it.
func TestOutboxReadsOnlySettledCommits(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	active := pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE
	mustPut(t, s, version("DEV/A", 1, t0, "Alpha", active))
	unsettled := version("DEV/B", 1, t0, "Beta", active)
	if err := s.db.Update(func(tx *bolt.Tx) error { return putVersion(tx, unsettled) }); err != nil {
		t.Fatal(err)
	}

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if out, err := s.OutboxExcept(short, 10, nil, nil); err == nil {
		t.Fatalf("outbox read during an unsettled commit returned %d versions", len(out))
	}

	got := make(chan []*pb.Record, 1)
	go func() {
		out, err := s.OutboxExcept(ctx, 10, nil, nil)
		if err != nil {
			t.Error(err)
		}
		got <- out
	}()
	mustPut(t, s, version("DEV/C", 1, t0, "Gamma", active))
	select {
	case out := <-got:
		var ids []string
		for _, r := range out {
			ids = append(ids, r.Id)
		}
		if want := []string{"DEV/A", "DEV/B", "DEV/C"}; !slices.Equal(ids, want) {
			t.Fatalf("outbox after the next commit settled: %v, want %v", ids, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("outbox read still waiting after a later commit returned")
	}
}

// TestOutboxPos: a reader that reads from where its last read ended, and
// puts everything it read in flight, still gets every version queued: new
// ones after the position, amends of records before it, the rest of a read
// cut by its limit, and, after Reset, versions put back.
func TestOutboxPos(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	active := pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE
	put := func(id string, v uint64) {
		t.Helper()
		mustPut(t, s, version(id, v, t0.Add(time.Duration(v)*time.Second), "Name", active))
	}
	var pos OutboxPos
	inflight := map[string]bool{}
	read := func(limit int) []string {
		t.Helper()
		out, err := s.OutboxExcept(ctx, limit, inflight, &pos)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range out {
			inflight[OutboxKey(r.Id, r.Version)] = true
			got = append(got, fmt.Sprintf("%s/%d", r.Id, r.Version))
		}
		return got
	}
	steps := []struct {
		name  string
		do    func()
		limit int
		want  []string
	}{
		{"first read", func() { put("DEV/B", 1); put("DEV/D", 1) }, 10, []string{"DEV/B/1", "DEV/D/1"}},
		{"nothing new", func() {}, 10, nil},
		{"a new record after the position", func() { put("DEV/E", 1) }, 10, []string{"DEV/E/1"}},
		{"an amend and a new record before it", func() { put("DEV/B", 2); put("DEV/A", 1) }, 10, []string{"DEV/A/1", "DEV/B/2"}},
		{"cut by the limit", func() { put("DEV/F", 1); put("DEV/G", 1); put("DEV/H", 1) }, 2, []string{"DEV/F/1", "DEV/G/1"}},
		{"the rest of the cut read", func() {}, 2, []string{"DEV/H/1"}},
		{"put back, then Reset", func() {
			delete(inflight, OutboxKey("DEV/D", 1))
			pos.Reset()
		}, 10, []string{"DEV/D/1"}},
		{"a record in flight amended", func() { put("DEV/E", 2) }, 10, []string{"DEV/E/2"}},
	}
	for _, st := range steps {
		st.do()
		if got := read(st.limit); !slices.Equal(got, st.want) {
			t.Fatalf("%s: read %v, want %v", st.name, got, st.want)
		}
	}
	// Everything in the outbox was read exactly once.
	all, err := s.Outbox(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(inflight) {
		t.Fatalf("outbox holds %d versions, the reader took %d", len(all), len(inflight))
	}
}

// BenchmarkOutboxRead is the publish loop's read of the outbox with 200
// versions in flight and one new each turn, from the first version (as it
// was) and from where the last read ended.
func BenchmarkOutboxRead(b *testing.B) {
	active := pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE
	for _, fromPos := range []bool{false, true} {
		b.Run(fmt.Sprintf("from-position=%v", fromPos), func(b *testing.B) {
			s, _ := open(b)
			ctx := context.Background()
			inflight := map[string]bool{}
			var recs []*pb.Record
			for i := range 200 {
				r := version(fmt.Sprintf("DEV/%06d", i), 1, t0, "Name", active)
				recs = append(recs, r)
				inflight[OutboxKey(r.Id, 1)] = true
			}
			if _, err := s.PutBatch(ctx, recs, nil); err != nil {
				b.Fatal(err)
			}
			var pos *OutboxPos
			if fromPos {
				pos = &OutboxPos{}
			}
			if _, err := s.OutboxExcept(ctx, 1024, inflight, pos); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				// The oldest in flight leaves the outbox: 200 stay in flight.
				old := versionKey(fmt.Sprintf("DEV/%06d", i), 1)
				if err := s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketOutbox).Delete(old) }); err != nil {
					b.Fatal(err)
				}
				delete(inflight, string(old))
				r := version(fmt.Sprintf("DEV/%06d", 200+i), 1, t0, "Name", active)
				if _, err := s.PutBatch(ctx, []*pb.Record{r}, nil); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				out, err := s.OutboxExcept(ctx, 1024, inflight, pos)
				if err != nil || len(out) != 1 {
					b.Fatalf("read %d versions, %v", len(out), err)
				}
				inflight[OutboxKey(out[0].Id, 1)] = true
			}
		})
	}
}
