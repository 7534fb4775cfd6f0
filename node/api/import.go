package api

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/auth"
	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/node/store"
	"github.com/watchfed/watchfed/policy/seal"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

const (
	// importBatch is how many record versions one transaction writes: large
	// enough to amortise the fsync, small enough to keep a transaction short.
	importBatch = 1000
	// maxImport bounds one edition (OFAC SDN has some 15,000 entries).
	maxImport = 2_000_000
)

type importService struct {
	pb.UnimplementedImportServiceServer
	writer
}

func (s *importService) Import(stream pb.ImportService_ImportServer) error {
	return streaming(stream.Context(), s.audit, func(ev *Event) error { return s.doImport(stream, ev) })
}

func (s *importService) doImport(stream pb.ImportService_ImportServer, ev *Event) error {
	ctx := stream.Context()
	var (
		source  string
		marking pb.Marking
		dryRun  bool
		limits  importLimits
		rowsRej int
		recs    []*pb.Record
		unread  = map[string]bool{}
	)
	for first := true; ; first = false {
		req, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if first {
			source, marking, dryRun = strings.TrimSpace(req.GetSource()), req.GetMarking(), req.GetDryRun()
			limits, rowsRej = limitsOf(req), int(req.GetRowsRejected())
		}
		recs = append(recs, req.GetRecords()...)
		for _, ref := range req.GetUnreadRefs() {
			unread[ref] = true
		}
		if len(recs) > maxImport {
			return status.Errorf(codes.InvalidArgument, "records: more than %d in one import", maxImport)
		}
	}
	if source == "" || strings.ContainsAny(source, ": ") {
		return status.Errorf(codes.InvalidArgument, "source: %q must name the list, without spaces or colons (e.g. ofac-sdn)", source)
	}
	if marking == pb.Marking_MARKING_UNSPECIFIED {
		marking = pb.Marking_MARKING_CLEAR
	}
	if _, ok := pb.Marking_name[int32(marking)]; !ok {
		return status.Errorf(codes.InvalidArgument, "marking: %d is not a marking", marking)
	}
	if err := limits.check(); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	plan, err := s.planImport(ctx, source, marking, recs, unread)
	if err != nil {
		return err
	}
	resp := plan.summary()
	ev.Target = source
	ev.Detail = fmt.Sprintf("read %d, rows rejected %d, in force %d: added %d, changed %d, delisted %d, unchanged %d, rejected %d",
		len(recs), rowsRej, plan.inForce, resp.Added, resp.Changed, resp.Delisted, resp.Unchanged, len(resp.Rejected))
	if o := limits.overrides(); o != "" {
		ev.Detail += "; limits overridden: " + o
	}
	if dryRun {
		ev.Detail = "dry run: " + ev.Detail
	}
	// An edition that looks like a wrong, empty or damaged file is refused
	// whole: nothing is written, so nothing is published to partners.
	if why := limits.refusal(source, len(recs), rowsRej, plan.inForce, plan); why != "" {
		return status.Errorf(codes.InvalidArgument, "import of %s refused, nothing written: %s; read %d, added %d, changed %d, delisted %d, unchanged %d, rejected %d",
			source, why, len(recs), resp.Added, resp.Changed, resp.Delisted, resp.Unchanged, rowsRej+len(resp.Rejected))
	}
	if dryRun {
		return stream.SendAndClose(resp)
	}
	if resp.LogIndex, err = s.putMany(ctx, ev, plan.writes, "import "+source); err != nil {
		return err
	}
	return stream.SendAndClose(resp)
}

// importPlan is the difference between an edition of a list and what the
// node holds from it.
type importPlan struct {
	writes                   []*pb.Record // in order: new versions to store
	added, changed, delisted int
	unchanged                int
	rejected                 []*pb.ImportRejection
	inForce                  int  // records of the list in force before
	revoking                 bool // the delistings are denials' revocations
}

func (p *importPlan) summary() *pb.ImportResponse {
	return &pb.ImportResponse{Added: uint32(p.added), Changed: uint32(p.changed), Delisted: uint32(p.delisted),
		Unchanged: uint32(p.unchanged), Rejected: p.rejected, InForce: uint32(p.inForce)}
}

// planImport compares an edition with the records the node holds from the
// same source (by source_ref): a new ref is an addition, a ref whose
// content differs an amendment, a held ref in force that the edition lacks a
// delisting (designations) or revocation (denials). Re-importing the same
// edition plans nothing. A held ref among unread (rows of the edition the
// client could not read) is left as it is.
func (s *importService) planImport(ctx context.Context, source string, marking pb.Marking, in []*pb.Record, unread map[string]bool) (*importPlan, error) {
	held, _, err := s.records.List(ctx, store.ListOptions{SourcePrefix: source + ":", IncludeInactive: true})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "list %s records: %v", source, err)
	}
	byRef := make(map[string]*pb.Record, len(held))
	p := &importPlan{}
	for _, r := range held {
		if r.Origin == s.agency {
			byRef[r.SourceRef] = r
			if store.Active(r) {
				p.inForce++
			}
		}
	}
	now := s.now().UTC()
	today := now.Format(time.DateOnly)
	// Each record normalised and validated on every core (the edition is
	// planned whole before anything is written, so this is wall time of
	// the import with one core idle); the verdicts are taken in order below.
	invalid := make([]error, len(in))
	_ = seal.Parallel(len(in), func(i int) error {
		invalid[i] = normalized(in[i], byRef[in[i].GetSourceRef()], marking, now)
		return nil
	})
	seen := make(map[string]bool, len(in))
	for i, r := range in {
		rec := r // the request's own message: normalised in place, not copied
		ref := rec.GetSourceRef()
		reject := func(format string, args ...any) {
			p.rejected = append(p.rejected, &pb.ImportRejection{SourceRef: ref, Reason: fmt.Sprintf(format, args...)})
		}
		if !strings.HasPrefix(ref, source+":") || len(ref) == len(source)+1 {
			reject("source_ref: %q does not start with %q", ref, source+":")
			continue
		}
		if seen[ref] {
			reject("source_ref: %q appears twice in the edition", ref)
			continue
		}
		seen[ref] = true
		if rec.Id != "" || rec.Version != 0 || rec.Origin != "" {
			reject("id, version, origin: assigned by the node, must be empty")
			continue
		}
		if err := invalid[i]; err != nil {
			reject("%v", err)
			continue
		}
		prev := byRef[ref]
		if prev == nil {
			rec.Id = record.NewID(s.agency, now)
			rec.Version = 1
			rec.Origin = s.agency
			rec.CreatedAt = timestamppb.New(now)
			rec.ChangeNote = "added by import of " + source
			p.writes = append(p.writes, rec)
			p.added++
			continue
		}
		if sameContent(prev, rec) {
			p.unchanged++
			continue
		}
		rec.Id, rec.Origin, rec.CreatedAt, rec.Version = prev.Id, prev.Origin, prev.CreatedAt, prev.Version+1
		rec.Local, rec.RelTo, rec.OriginatorControl = prev.Local, prev.RelTo, prev.OriginatorControl
		rec.ChangeNote = "amended by import of " + source
		if !store.Active(prev) {
			rec.ChangeNote = "listed again by import of " + source
		}
		p.writes = append(p.writes, rec)
		p.changed++
	}
	for _, prev := range held {
		if seen[prev.SourceRef] || unread[prev.SourceRef] || prev.Origin != s.agency || !store.Active(prev) {
			continue
		}
		next := proto.Clone(prev).(*pb.Record)
		next.Version++
		reason := fmt.Sprintf("no longer on %s (import of %s)", source, today)
		switch d := next.Detail.(type) {
		case *pb.Record_Designation:
			d.Designation.Status = pb.DesignationStatus_DESIGNATION_STATUS_DELISTED
			d.Designation.DelistedOn = today
			if d.Designation.DelistedOn < d.Designation.ListedOn {
				d.Designation.DelistedOn = d.Designation.ListedOn
			}
			d.Designation.DelistingReason = reason
		case *pb.Record_Denial:
			d.Denial.Status = pb.DenialStatus_DENIAL_STATUS_REVOKED
			d.Denial.StatusReason = reason
			p.revoking = true
		}
		next.ChangeNote = reason
		p.writes = append(p.writes, next)
		p.delisted++
	}
	return p, nil
}

// normalized gives rec the edition's marking (and a held version's listing
// date if the edition has none), normalises it in place and validates it.
func normalized(rec, prev *pb.Record, marking pb.Marking, now time.Time) error {
	rec.Marking = marking
	if prev != nil {
		// Lists without listing dates (OFAC's legacy files) keep the
		// date the node first took the entry in.
		if d, pd := rec.GetDesignation(), prev.GetDesignation(); d != nil && pd != nil && d.ListedOn == "" {
			d.ListedOn = pd.ListedOn
		}
		if d, pd := rec.GetDenial(), prev.GetDenial(); d != nil && pd != nil && d.DeniedOn == "" {
			d.DeniedOn = pd.DeniedOn
		}
	}
	record.Normalize(rec, now)
	return record.Validate(rec)
}

// sameContent reports whether an edition's record says what the held
// version says: what the node assigns (ids, times, authors) does not count.
func sameContent(held, rec *pb.Record) bool {
	return held.Kind == rec.Kind && held.Marking == rec.Marking && store.Active(held) &&
		proto.Equal(held.Subject, rec.Subject) &&
		proto.Equal(held.GetDesignation(), rec.GetDesignation()) && proto.Equal(held.GetDenial(), rec.GetDenial())
}

// putMany stores new record versions in batches, each batch in one
// transaction with one audit event per version, and keeps the screening
// index in step. Publication follows from the outbox; it waits (up to
// PublishWait) for the last version's shared entry and returns its index.
func (w *writer) putMany(ctx context.Context, ev *Event, recs []*pb.Record, note string) (uint64, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	// Listen for the last version's publication before it is stored.
	wait, drop := w.pub.ExpectPublished(recs[len(recs)-1])
	base := ev.AuditEvent
	by := ""
	if id, ok := auth.FromContext(ctx); ok {
		by = id.String()
	}
	for start := 0; start < len(recs); start += importBatch {
		batch := recs[start:min(start+importBatch, len(recs))]
		now := w.now().UTC()
		evs := make([]*pb.AuditEvent, len(batch))
		for i, rec := range batch {
			t := now
			if rec.Version > 1 && rec.UpdatedAt != nil && !t.After(rec.UpdatedAt.AsTime()) {
				t = rec.UpdatedAt.AsTime().Add(time.Microsecond)
			}
			rec.UpdatedAt = timestamppb.New(t)
			rec.UpdatedBy = by
			evs[i] = &pb.AuditEvent{Time: timestamppb.New(now), Agency: base.Agency, Actor: base.Actor, Roles: base.Roles,
				Action: base.Action, Target: rec.Id, Outcome: "ok", Detail: fmt.Sprintf("%s: version %d (%s)", note, rec.Version, rec.SourceRef)}
		}
		if _, err := w.records.PutBatch(ctx, batch, evs); err != nil {
			drop()
			return 0, storeError(err, fmt.Sprintf("import batch at %s", batch[0].SourceRef))
		}
		w.pub.WakeUp() // publish this batch while the next is stored
		for _, rec := range batch {
			w.index.Follow(rec, false)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, w.publishWait)
	defer cancel()
	return wait(wctx), nil
}
