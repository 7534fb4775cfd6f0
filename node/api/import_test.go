package api

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestPlanImportInOrder: an edition large enough to be checked on every
// core is planned as one pass would: every rejection in the edition's order
// with its reason, the additions normalised, in order, and only those.
func TestPlanImportInOrder(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "node.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 12, 2, 20, 0, 0, 0, time.UTC)
	s := &importService{writer: writer{records: st, agency: agency, now: func() time.Time { return now }}}
	var in []*pb.Record
	var wantRejected, wantAdded []string
	for i := range 500 {
		r := designation(fmt.Sprintf("  Person %d  ", i))
		r.SourceRef = fmt.Sprintf("un:%d", i)
		switch {
		case i%97 == 5:
			r.Subject.Name = "" // invalid
			wantRejected = append(wantRejected, r.SourceRef+" subject.name")
		case i%89 == 7:
			r.SourceRef = fmt.Sprintf("ofac:%d", i)
			wantRejected = append(wantRejected, r.SourceRef+" source_ref")
		case i%83 == 11:
			r.Version = 3
			wantRejected = append(wantRejected, r.SourceRef+" id, version, origin")
		case i%79 == 13:
			r.SourceRef = "un:0" // a second un:0
			wantRejected = append(wantRejected, r.SourceRef+" source_ref")
		default:
			wantAdded = append(wantAdded, r.SourceRef)
		}
		in = append(in, r)
	}
	p, err := s.planImport(context.Background(), "un", pb.Marking_MARKING_AMBER, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.rejected) != len(wantRejected) {
		t.Fatalf("%d rejected, want %d: %v", len(p.rejected), len(wantRejected), p.rejected)
	}
	for i, rj := range p.rejected {
		var ref, field string
		fmt.Sscanf(wantRejected[i], "%s %s", &ref, &field)
		if rj.SourceRef != ref || !strings.Contains(rj.Reason, field) {
			t.Errorf("rejection %d: %s %q, want %s about %s", i, rj.SourceRef, rj.Reason, ref, field)
		}
	}
	if p.added != len(wantAdded) || len(p.writes) != len(wantAdded) {
		t.Fatalf("added %d (%d writes), want %d", p.added, len(p.writes), len(wantAdded))
	}
	for i, w := range p.writes {
		if w.SourceRef != wantAdded[i] || w.Version != 1 || w.Origin != agency || w.Marking != pb.Marking_MARKING_AMBER {
			t.Fatalf("write %d: %s v%d of %s marked %s, want %s v1 of %s marked AMBER", i, w.SourceRef, w.Version, w.Origin, w.Marking, wantAdded[i], agency)
		}
		if n := w.Subject.Name; n != fmt.Sprintf("Person %s", wantAdded[i][len("un:"):]) {
			t.Fatalf("write %d: name %q not normalised", i, n)
		}
	}
}
