package node

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node/importer"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestImportGuard: an edition that looks like a wrong, empty or damaged file
// is refused whole with the figures and nothing written; the operator's
// overrides import it and are audited; a field over its limit is rejected by
// line, never cut, and its held record is not delisted.
func TestImportGuard(t *testing.T) {
	conn := startTestNode(t)
	imp, rc := pb.NewImportServiceClient(conn), pb.NewRecordServiceClient(conn)
	ctx := context.Background()
	edition := filepath.Join("importer", "testdata", "ofac-sdn-2024-04-26.csv")
	if got, want := countsOf(importFile(t, imp, "ofac-sdn", edition)), (counts{added: 13}); got != want {
		t.Fatalf("first edition: %+v, want %+v", got, want)
	}
	held := func() []*pb.Record {
		t.Helper()
		resp, err := rc.ListRecords(ctx, &pb.ListRecordsRequest{IncludeInactive: true, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Records
	}
	before := held()
	send := func(res *importer.Result, o importer.Options) (*pb.ImportResponse, error) {
		o.Marking = pb.Marking_MARKING_CLEAR
		return importer.SendWith(ctx, imp, res, o, nil)
	}
	for _, tc := range []struct {
		name string
		res  func() *importer.Result
		o    importer.Options
		want string
	}{
		{"empty", func() *importer.Result { return &importer.Result{Source: "ofac-sdn"} }, importer.Options{},
			"reads no entries"},
		{"junk: nothing read, rows rejected", func() *importer.Result {
			return &importer.Result{Source: "ofac-sdn", Rejects: []importer.Reject{{Line: 1, Reason: "wrong number of fields"}, {Line: 2, Reason: "wrong number of fields"}}}
		}, importer.Options{AllowRejects: true}, "reads no entries (2 rows rejected)"},
		{"truncated", func() *importer.Result {
			res := parseFile(t, "ofac-sdn", edition)
			res.Items = res.Items[:3]
			return res
		}, importer.Options{}, "it would delist 10 of the 13 ofac-sdn records in force (76.9 %; limit 10 %"},
		{"truncated, dry run", func() *importer.Result {
			res := parseFile(t, "ofac-sdn", edition)
			res.Items = res.Items[:3]
			return res
		}, importer.Options{DryRun: true}, "it would delist 10 of the 13"},
		{"too many rejects", func() *importer.Result {
			res := parseFile(t, "ofac-sdn", edition)
			res.Items[0].Record.Subject.BirthDates = []string{"1965-02-30"}
			return res
		}, importer.Options{}, "1 of the edition's 13 rows are rejected (7.7 %; limit 1 %"},
		{"delisting over the raised limit", func() *importer.Result {
			res := parseFile(t, "ofac-sdn", edition)
			res.Items = res.Items[:3]
			return res
		}, importer.Options{MaxDelistPct: proto.Float64(50)}, "limit 50 %, from --max-delist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := send(tc.res(), tc.o)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "refused, nothing written") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want InvalidArgument refusing: %s", err, tc.want)
			}
			if after := held(); !sameRecords(before, after) {
				t.Fatalf("a refused import changed the records")
			}
		})
	}

	// A 50 MB name is rejected by its line, not cut and imported; the
	// entry's held version stays in force. With the reject allowed, the
	// rest imports and the override is audited.
	res := parseFile(t, "ofac-sdn", edition)
	big := res.Items[0]
	big.Record.Subject.Name = strings.Repeat("A", 50<<20)
	resp, err := send(res, importer.Options{AllowRejects: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := countsOf(resp), (counts{unchanged: 12}); got != want {
		t.Fatalf("%+v, want %+v", got, want)
	}
	if len(res.Rejects) != 1 || res.Rejects[0].Line != big.Line || !strings.Contains(res.Rejects[0].Reason, "subject.name: longer than 300 characters") {
		t.Fatalf("rejects %v: want line %d, the name too long", res.Rejects, big.Line)
	}
	if after := held(); !sameRecords(before, after) {
		t.Fatalf("the rejected entry's record changed")
	}
	events, err := pb.NewAuditServiceClient(conn).ListAuditEvents(ctx, &pb.ListAuditEventsRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	audited := 0
	for _, ev := range events.Events {
		if ev.Target == "ofac-sdn" && strings.Contains(ev.Detail, "rows rejected 1, in force 13: added 0, changed 0, delisted 0, unchanged 12, rejected 0; limits overridden: allow_rejects") && ev.Outcome == "ok" {
			audited++
		}
	}
	if audited != 1 {
		t.Errorf("%d audit events of the override, want 1", audited)
	}
}

// sameRecords reports whether two listings hold the same record versions.
func sameRecords(a, b []*pb.Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
