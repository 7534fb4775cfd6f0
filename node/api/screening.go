package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/node/screen"
	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

type screeningService struct {
	pb.UnimplementedScreeningServiceServer
	audit   *auditor
	records RecordStore
	shared  SharedStore
	index   Index
	policy  Policy
	now     func() time.Time
}

const maxScreenLimit = 100

func (s *screeningService) query(req *pb.ScreenRequest) (screen.Query, error) {
	q := screen.Query{
		Name:      strings.TrimSpace(req.GetName()),
		Schema:    req.GetSchema(),
		BirthDate: strings.TrimSpace(req.GetBirthDate()),
		IDs:       req.GetIdentifiers(),
		Threshold: threshold(req.Threshold),
		Limit:     int(req.GetLimit()),
	}
	if q.Name == "" && len(q.IDs) == 0 {
		return q, status.Error(codes.InvalidArgument, "name: give a name or an identifier to screen")
	}
	if len(q.Name) > 4*record.MaxNameRunes {
		return q, status.Errorf(codes.InvalidArgument, "name: longer than %d characters", record.MaxNameRunes)
	}
	if _, ok := pb.Schema_name[int32(q.Schema)]; !ok {
		return q, status.Errorf(codes.InvalidArgument, "schema: %d is not a schema", q.Schema)
	}
	if q.BirthDate != "" && !validPartialDate(q.BirthDate) {
		return q, status.Errorf(codes.InvalidArgument, "birth_date: %q is not YYYY, YYYY-MM or YYYY-MM-DD", q.BirthDate)
	}
	for i, c := range req.GetCountries() {
		c = strings.ToUpper(strings.TrimSpace(c))
		if !record.IsCountry(c) {
			return q, status.Errorf(codes.InvalidArgument, "countries[%d]: %q is not an ISO 3166 country code", i, c)
		}
		q.Countries = append(q.Countries, c)
	}
	if t := req.GetThreshold(); t < 0 || t > 1 {
		return q, status.Errorf(codes.InvalidArgument, "threshold: %v is not within 0..1", t)
	}
	if q.Limit < 0 {
		return q, status.Error(codes.InvalidArgument, "limit: must not be negative")
	}
	q.Limit = min(q.Limit, maxScreenLimit)
	k := req.GetKind()
	if _, ok := pb.Kind_name[int32(k)]; !ok {
		return q, status.Errorf(codes.InvalidArgument, "kind: %d is not a kind", k)
	}
	q.Filter = s.screenFilter(k)
	return q, nil
}

// screenFilter admits entries of a kind (unspecified: any) that this agency
// uses: its own, and shared ones from partners and kinds the receive block
// of the policy trusts. Trust is applied when screening, not when indexing,
// so a policy change takes effect at once without a rebuild.
func (s *screeningService) screenFilter(kind pb.Kind) func(*screen.Entry) bool {
	pol := s.policy.Current()
	return func(e *screen.Entry) bool {
		if kind != pb.Kind_KIND_UNSPECIFIED && e.Kind != kind {
			return false
		}
		return !e.Shared || pol.Trusts(e.Origin, e.Kind)
	}
}

// threshold is the score from which results are returned: as asked, 0
// included, or the default when the request leaves it unset.
func threshold(t *float64) float64 {
	if t == nil {
		return screen.DefaultThreshold
	}
	return *t
}

func validPartialDate(s string) bool {
	for _, layout := range []string{"2006", "2006-01", time.DateOnly} {
		if len(s) == len(layout) {
			if _, err := time.Parse(layout, s); err == nil {
				return true
			}
		}
	}
	return false
}

func (s *screeningService) Screen(ctx context.Context, req *pb.ScreenRequest) (*pb.ScreenResponse, error) {
	return unary(ctx, s.audit, req, s.screenOne)
}

func (s *screeningService) screenOne(ctx context.Context, req *pb.ScreenRequest, ev *Event) (*pb.ScreenResponse, error) {
	resp, err := s.screen(ctx, req, nil)
	if err != nil {
		return nil, err
	}
	ev.Target = clipDetail(req.GetName())
	ev.Detail = screenDetail(resp)
	return resp, nil
}

// screen answers one query. asOfIndexes, if set, keeps the as-of indexes
// built for earlier queries of the same batch: a batch screened as of a date
// builds that date's index once.
func (s *screeningService) screen(ctx context.Context, req *pb.ScreenRequest, asOfIndexes map[time.Time]*screen.Index) (*pb.ScreenResponse, error) {
	q, err := s.query(req)
	if err != nil {
		return nil, err
	}
	x, asOf := s.index.Current(), time.Time{}
	if req.GetAsOf() != nil {
		asOf = req.GetAsOf().AsTime()
		if cached, ok := asOfIndexes[asOf]; ok {
			x = cached
		} else if x, err = s.index.AsOf(ctx, asOf); err != nil {
			return nil, err
		} else if asOfIndexes != nil && len(asOfIndexes) < 4 {
			asOfIndexes[asOf] = x
		}
	}
	results, err := s.results(ctx, x.Search(q), asOf)
	if err != nil {
		return nil, err
	}
	return &pb.ScreenResponse{Results: results, Ref: req.GetRef()}, nil
}

// results loads the records of matched entries and turns scores and
// explanations into their wire form.
func (s *screeningService) results(ctx context.Context, rs []screen.Result, asOf time.Time) ([]*pb.ScreenResult, error) {
	out := make([]*pb.ScreenResult, 0, len(rs))
	for _, r := range rs {
		var rec *pb.Record
		var err error
		if r.Entry.Shared {
			var e *pb.SharedEntry
			if e, err = s.shared.Shared(ctx, r.Entry.ID); err == nil {
				rec = e.Record
			}
		} else if !asOf.IsZero() {
			rec, err = s.records.At(ctx, r.Entry.ID, asOf)
		} else {
			rec, err = s.records.Current(ctx, r.Entry.ID)
		}
		if errors.Is(err, store.ErrNotFound) {
			continue // gone since the index saw it (as-of indexes only)
		}
		if err != nil {
			return nil, status.Errorf(codes.Internal, "load %s: %v", r.Entry.ID, err)
		}
		out = append(out, &pb.ScreenResult{
			Record:      rec,
			Origin:      r.Entry.Origin,
			Shared:      r.Entry.Shared,
			Score:       r.Score,
			Explanation: explanation(r.Explanation),
		})
	}
	return out, nil
}

func explanation(e screen.Explanation) *pb.Explanation {
	out := &pb.Explanation{Query: e.Query, MatchedName: e.Matched, NameScore: e.NameScore, Summary: e.String()}
	for _, w := range e.Words {
		out.Words = append(out.Words, &pb.WordMatch{Query: w.Query, Listed: w.Listed, Similarity: w.Similarity, How: w.How})
	}
	for _, f := range e.Features {
		out.Features = append(out.Features, &pb.FeatureMatch{Name: f.Name, Agrees: f.Agrees, Effect: f.Effect, Detail: f.Detail})
	}
	return out
}

func screenDetail(resp *pb.ScreenResponse) string {
	if len(resp.Results) == 0 {
		return "no match"
	}
	top := resp.Results[0]
	return fmt.Sprintf("%d matches; top %s %.3f", len(resp.Results), top.GetRecord().GetId(), top.Score)
}

func clipDetail(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}

func (s *screeningService) ScreenBatch(stream pb.ScreeningService_ScreenBatchServer) error {
	return streaming(stream.Context(), s.audit, func(ev *Event) error { return s.screenBatch(stream, ev) })
}

func (s *screeningService) screenBatch(stream pb.ScreeningService_ScreenBatchServer, ev *Event) error {
	ctx := stream.Context()
	var queries, matched int
	asOfIndexes := map[time.Time]*screen.Index{}
	defer func() {
		ev.Detail = fmt.Sprintf("%d queries, %d with matches", queries, matched)
	}()
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		queries++
		resp, err := s.screen(ctx, req.GetQuery(), asOfIndexes)
		if err != nil {
			return status.Errorf(status.Code(err), "query %d (ref %q): %s", queries, req.GetQuery().GetRef(), status.Convert(err).Message())
		}
		if len(resp.Results) > 0 {
			matched++
		}
		if err := stream.Send(&pb.ScreenBatchResponse{Response: resp}); err != nil {
			return err
		}
	}
}

func (s *screeningService) ScreenApplication(ctx context.Context, req *pb.ScreenApplicationRequest) (*pb.ScreenApplicationResponse, error) {
	return unary(ctx, s.audit, req, s.screenApplication)
}

func (s *screeningService) screenApplication(ctx context.Context, req *pb.ScreenApplicationRequest, ev *Event) (*pb.ScreenApplicationResponse, error) {
	item, err := record.ParseControlListEntry(req.GetControlListEntry())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "control_list_entry: %v", err)
	}
	dest := strings.ToUpper(strings.TrimSpace(req.GetDestination()))
	if !record.IsCountry(dest) {
		return nil, status.Errorf(codes.InvalidArgument, "destination: %q is not an ISO 3166 country code", req.GetDestination())
	}
	if len(req.GetParties()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "parties: at least one party is needed")
	}
	if t := req.GetThreshold(); t < 0 || t > 1 {
		return nil, status.Errorf(codes.InvalidArgument, "threshold: %v is not within 0..1", t)
	}
	today := s.now().UTC().Format(time.DateOnly)
	if req.GetAsOf() != nil {
		today = req.GetAsOf().AsTime().UTC().Format(time.DateOnly)
	}
	resp := &pb.ScreenApplicationResponse{}
	seenDenial := map[string]bool{}
	for i, party := range req.GetParties() {
		if strings.TrimSpace(party) == "" {
			return nil, status.Errorf(codes.InvalidArgument, "parties[%d]: must not be empty", i)
		}
		base := screen.Query{Name: party, Threshold: threshold(req.Threshold), Limit: maxScreenLimit}
		dq := base
		dq.Filter = s.screenFilter(pb.Kind_KIND_DENIAL)
		hits, err := s.results(ctx, s.index.Current().Search(dq), time.Time{})
		if err != nil {
			return nil, err
		}
		for _, h := range hits {
			d := h.GetRecord().GetDenial()
			if d == nil || seenDenial[h.Record.Id] {
				continue
			}
			denied, err := record.ParseControlListEntry(d.ControlListEntry)
			// An agency's own denial refused a licence for one destination;
			// an order denying the party's export privileges binds it for
			// any destination.
			if err != nil || !(item.Within(denied) || denied.Within(item)) || !(d.AnyDestination || d.Destination == dest) {
				continue
			}
			if !denialInForce(d, today) {
				continue
			}
			seenDenial[h.Record.Id] = true
			resp.Denials = append(resp.Denials, &pb.DenialMatch{
				Result: h,
				Party:  party,
				Reason: fmt.Sprintf("%s within denied %s; %s; denied %s, %s", item, denied, destinationReason(d, dest), d.DeniedOn, inForceUntil(d)),
			})
		}
		gq := base
		gq.Filter = s.screenFilter(pb.Kind_KIND_DESIGNATION)
		gq.Limit = 10
		des, err := s.results(ctx, s.index.Current().Search(gq), time.Time{})
		if err != nil {
			return nil, err
		}
		resp.Designations = append(resp.Designations, des...)
	}
	ev.Target = clipDetail(strings.Join(req.GetParties(), "; "))
	ev.Detail = fmt.Sprintf("%s to %s: %d denials, %d designations", item, dest, len(resp.Denials), len(resp.Designations))
	return resp, nil
}

// denialInForce says whether a denial binds on a day (YYYY-MM-DD): it has
// taken effect, has not expired (an imported order's own end), and is not
// past its review (an own denial not renewed in time no longer binds
// partners). Status (revoked, annulled) is the index's business.
func denialInForce(d *pb.Denial, day string) bool {
	return (d.DeniedOn == "" || d.DeniedOn <= day) &&
		(d.ExpiresOn == "" || d.ExpiresOn >= day) &&
		(d.ReviewBy == "" || d.ReviewBy >= day)
}

func destinationReason(d *pb.Denial, dest string) string {
	if d.AnyDestination {
		return fmt.Sprintf("destination %s: the party's export privileges are denied for any destination", dest)
	}
	return "destination " + dest
}

func inForceUntil(d *pb.Denial) string {
	switch {
	case d.ExpiresOn != "":
		return "in force until " + d.ExpiresOn
	case d.ReviewBy != "":
		return "in force until its review by " + d.ReviewBy
	}
	return "in force with no end date"
}
