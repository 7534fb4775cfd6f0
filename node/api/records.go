package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/auth"
	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/diskfull"
)

type recordService struct {
	pb.UnimplementedRecordServiceServer
	writer
}

func (s *recordService) CreateRecord(ctx context.Context, req *pb.CreateRecordRequest) (*pb.CreateRecordResponse, error) {
	return unary(ctx, s.audit, req, s.createRecord)
}

func (s *recordService) createRecord(ctx context.Context, req *pb.CreateRecordRequest, ev *Event) (*pb.CreateRecordResponse, error) {
	// The request is this call's own (decoded for it by gRPC): its record
	// is filled in place rather than copied.
	rec := req.GetRecord()
	if rec == nil {
		return nil, status.Error(codes.InvalidArgument, "record: must be set")
	}
	if err := assignedByNode(rec); err != nil {
		return nil, err
	}
	idx, err := s.create(ctx, ev, rec)
	if err != nil {
		return nil, err
	}
	return &pb.CreateRecordResponse{Record: rec, LogIndex: idx, NotShared: s.notShared(rec, idx)}, nil
}

// create normalises and validates a new record, gives it this agency's
// identity and stores it as version 1.
func (w *writer) create(ctx context.Context, ev *Event, rec *pb.Record) (uint64, error) {
	now := w.now().UTC()
	record.Normalize(rec, now)
	if err := record.Validate(rec); err != nil {
		return 0, status.Error(codes.InvalidArgument, err.Error())
	}
	rec.Id = record.NewID(w.agency, now)
	rec.Version = 1
	rec.Origin = w.agency
	rec.CreatedAt = timestamppb.New(now)
	return w.put(ctx, ev, rec, nil, now)
}

// assignedByNode refuses identity fields in a new record: they are the
// node's to assign, and silently overwriting them would hide a client bug.
func assignedByNode(rec *pb.Record) error {
	var bad []string
	if rec.Id != "" {
		bad = append(bad, "record.id")
	}
	if rec.Version != 0 {
		bad = append(bad, "record.version")
	}
	if rec.Origin != "" {
		bad = append(bad, "record.origin")
	}
	if rec.CreatedAt != nil {
		bad = append(bad, "record.created_at")
	}
	if rec.UpdatedAt != nil {
		bad = append(bad, "record.updated_at")
	}
	if rec.UpdatedBy != "" {
		bad = append(bad, "record.updated_by")
	}
	if len(bad) > 0 {
		return status.Errorf(codes.InvalidArgument, "invalid record: %v: assigned by the node, must be empty", bad)
	}
	return notConsultation(rec)
}

// notConsultation keeps consultations to the consultation service, which
// seals them to the other agency alone and keeps the thread consistent.
func notConsultation(rec *pb.Record) error {
	if rec.GetConsultation() != nil || rec.GetConsultationAnswer() != nil || rec.GetKind() == pb.Kind_KIND_CONSULTATION {
		return status.Error(codes.InvalidArgument, "invalid record: record.detail: consultations are written with `watchfed consult`, not as records")
	}
	return nil
}

func (s *recordService) AmendRecord(ctx context.Context, req *pb.AmendRecordRequest) (*pb.AmendRecordResponse, error) {
	return unary(ctx, s.audit, req, s.amendRecord)
}

func (s *recordService) amendRecord(ctx context.Context, req *pb.AmendRecordRequest, ev *Event) (*pb.AmendRecordResponse, error) {
	in := req.GetRecord()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "record: must be set")
	}
	if err := notConsultation(in); err != nil {
		return nil, err
	}
	cur, err := s.current(ctx, ev, in.GetId(), req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	if err := notConsultation(cur); err != nil {
		return nil, err
	}
	next := proto.Clone(in).(*pb.Record)
	if next.Origin != "" && next.Origin != cur.Origin {
		return nil, status.Errorf(codes.InvalidArgument, "invalid record: record.origin: is %s and cannot change", cur.Origin)
	}
	now := s.now().UTC()
	record.Normalize(next, now)
	if next.Kind != cur.Kind {
		return nil, status.Errorf(codes.InvalidArgument, "invalid record: record.kind: is %s and cannot change", cur.Kind)
	}
	if err := record.Validate(next); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	idx, err := s.put(ctx, ev, next, cur, now)
	if err != nil {
		return nil, err
	}
	return &pb.AmendRecordResponse{Record: next, LogIndex: idx, NotShared: s.notShared(next, idx)}, nil
}

func (s *recordService) DelistDesignation(ctx context.Context, req *pb.DelistDesignationRequest) (*pb.DelistDesignationResponse, error) {
	return unary(ctx, s.audit, req, s.delistDesignation)
}

func (s *recordService) delistDesignation(ctx context.Context, req *pb.DelistDesignationRequest, ev *Event) (*pb.DelistDesignationResponse, error) {
	cur, err := s.current(ctx, ev, req.GetId(), req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	des := cur.GetDesignation()
	if des == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is a denial, not a designation", cur.Id)
	}
	if des.Status == pb.DesignationStatus_DESIGNATION_STATUS_DELISTED {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is already delisted (version %d)", cur.Id, cur.Version)
	}
	now := s.now().UTC()
	next := proto.Clone(cur).(*pb.Record)
	d := next.GetDesignation()
	d.Status = pb.DesignationStatus_DESIGNATION_STATUS_DELISTED
	d.DelistedOn = req.GetDelistedOn()
	if d.DelistedOn == "" {
		d.DelistedOn = now.Format(time.DateOnly)
	}
	d.DelistingReason = req.GetReason()
	next.ChangeNote = req.GetReason()
	record.Normalize(next, now)
	if err := record.Validate(next); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	idx, err := s.put(ctx, ev, next, cur, now)
	if err != nil {
		return nil, err
	}
	return &pb.DelistDesignationResponse{Record: next, LogIndex: idx, NotShared: s.notShared(next, idx)}, nil
}

func (s *recordService) SetDenialStatus(ctx context.Context, req *pb.SetDenialStatusRequest) (*pb.SetDenialStatusResponse, error) {
	return unary(ctx, s.audit, req, s.setDenialStatus)
}

func (s *recordService) setDenialStatus(ctx context.Context, req *pb.SetDenialStatusRequest, ev *Event) (*pb.SetDenialStatusResponse, error) {
	if _, ok := pb.DenialStatus_name[int32(req.GetStatus())]; !ok || req.GetStatus() == pb.DenialStatus_DENIAL_STATUS_UNSPECIFIED {
		return nil, status.Errorf(codes.InvalidArgument, "status: %d is not a denial status", req.GetStatus())
	}
	if req.GetReason() == "" {
		return nil, status.Error(codes.InvalidArgument, "reason: must not be empty: a status change is notified to partners with its reason")
	}
	cur, err := s.current(ctx, ev, req.GetId(), req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	if cur.GetDenial() == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is a designation, not a denial", cur.Id)
	}
	if cur.GetDenial().Status == req.GetStatus() {
		return nil, status.Errorf(codes.FailedPrecondition, "%s already has status %s", cur.Id, req.GetStatus())
	}
	now := s.now().UTC()
	next := proto.Clone(cur).(*pb.Record)
	next.GetDenial().Status = req.GetStatus()
	next.GetDenial().StatusReason = req.GetReason()
	next.ChangeNote = req.GetReason()
	if err := record.Validate(next); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	idx, err := s.put(ctx, ev, next, cur, now)
	if err != nil {
		return nil, err
	}
	return &pb.SetDenialStatusResponse{Record: next, LogIndex: idx, NotShared: s.notShared(next, idx)}, nil
}

func (s *recordService) GetRecord(ctx context.Context, req *pb.GetRecordRequest) (*pb.GetRecordResponse, error) {
	return unary(ctx, s.audit, req, s.getRecord)
}

func (s *recordService) getRecord(ctx context.Context, req *pb.GetRecordRequest, ev *Event) (*pb.GetRecordResponse, error) {
	ev.Target = req.GetId()
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "id: must not be empty")
	}
	var (
		rec *pb.Record
		err error
	)
	switch {
	case req.GetVersion() != 0 && req.GetAsOf() != nil:
		return nil, status.Error(codes.InvalidArgument, "version, as_of: give one, not both")
	case req.GetVersion() != 0:
		rec, err = s.records.Version(ctx, req.GetId(), req.GetVersion())
	case req.GetAsOf() != nil:
		rec, err = s.records.At(ctx, req.GetId(), req.GetAsOf().AsTime())
	default:
		rec, err = s.records.Current(ctx, req.GetId())
	}
	if err != nil {
		return nil, storeError(err, req.GetId())
	}
	ev.Detail = fmt.Sprintf("version %d", rec.Version)
	return &pb.GetRecordResponse{Record: rec}, nil
}

func (s *recordService) ListRecords(ctx context.Context, req *pb.ListRecordsRequest) (*pb.ListRecordsResponse, error) {
	return unary(ctx, s.audit, req, s.listRecords)
}

func (s *recordService) listRecords(ctx context.Context, req *pb.ListRecordsRequest, ev *Event) (*pb.ListRecordsResponse, error) {
	limit, err := pageSize(req.GetPageSize(), "page_size")
	if err != nil {
		return nil, err
	}
	opts := store.ListOptions{Kind: req.GetKind(), IncludeInactive: req.GetIncludeInactive(), After: req.GetPageToken(), Limit: limit}
	if req.GetAsOf() != nil {
		opts.AsOf = req.GetAsOf().AsTime()
	}
	recs, next, err := s.records.List(ctx, opts)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "list records: %v", err)
	}
	ev.Detail = fmt.Sprintf("%d records", len(recs))
	return &pb.ListRecordsResponse{Records: recs, NextPageToken: next}, nil
}

func (s *recordService) GetRecordHistory(ctx context.Context, req *pb.GetRecordHistoryRequest) (*pb.GetRecordHistoryResponse, error) {
	return unary(ctx, s.audit, req, s.getRecordHistory)
}

func (s *recordService) getRecordHistory(ctx context.Context, req *pb.GetRecordHistoryRequest, ev *Event) (*pb.GetRecordHistoryResponse, error) {
	ev.Target = req.GetId()
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "id: must not be empty")
	}
	recs, err := s.records.History(ctx, req.GetId())
	if err != nil {
		return nil, storeError(err, req.GetId())
	}
	return &pb.GetRecordHistoryResponse{Records: recs}, nil
}

// current loads the record to change and checks the caller's expected version.
func (w *writer) current(ctx context.Context, ev *Event, id string, expected uint64) (*pb.Record, error) {
	ev.Target = id
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "id: must not be empty")
	}
	cur, err := w.records.Current(ctx, id)
	if err != nil {
		return nil, storeError(err, id)
	}
	if cur.Origin != w.agency {
		return nil, status.Errorf(codes.PermissionDenied, "%s belongs to %s: only the originator changes its records", id, cur.Origin)
	}
	if expected != 0 && cur.Version != expected {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is at version %d, not %d", id, cur.Version, expected)
	}
	return cur, nil
}

// put stores rec as the version after prev (or as the first version) together
// with the call's audit event, in one fsynced transaction, then waits (up to
// PublishWait) for its shared entry to commit and returns the log index.
func (w *writer) put(ctx context.Context, ev *Event, rec, prev *pb.Record, now time.Time) (uint64, error) {
	if prev != nil {
		rec.Id, rec.Origin, rec.CreatedAt = prev.Id, prev.Origin, prev.CreatedAt
		rec.Version = prev.Version + 1
		// Versions are ordered in time even if the wall clock steps back:
		// an as-of read must never see an older version after a newer one.
		if p := prev.UpdatedAt.AsTime(); !now.After(p) {
			now = p.Add(time.Microsecond)
		}
	}
	rec.UpdatedAt = timestamppb.New(now)
	if id, ok := auth.FromContext(ctx); ok {
		rec.UpdatedBy = id.String()
	}
	ev.Target = rec.Id
	ev.Outcome = "ok"
	ev.Detail = "version " + strconv.FormatUint(rec.Version, 10)
	wait, drop := w.pub.ExpectPublished(rec)
	if _, err := w.records.Put(ctx, rec, ev.AuditEvent); err != nil {
		drop()
		return 0, storeError(err, rec.Id)
	}
	ev.written = true
	w.pub.WakeUp() // publish while the screening index takes the version in
	w.index.Follow(rec, false)
	if w.ackEarly {
		// The deliberate bug the reliability checker must catch: claim a
		// log index for a version that is only queued.
		return w.pub.LastIndex() + 1, nil
	}
	wctx, cancel := context.WithTimeout(ctx, w.publishWait)
	defer cancel()
	return wait(wctx), nil
}

func storeError(err error, id string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s: not found", id)
	case errors.Is(err, store.ErrConflict):
		return status.Errorf(codes.Aborted, "%s changed concurrently, read it again and retry: %v", id, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case diskfull.Is(err):
		return status.Errorf(codes.Unavailable, "%v", diskfull.Wrap("node.db", err))
	}
	return status.Errorf(codes.Internal, "%s: %v", id, err)
}
