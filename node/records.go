package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/auth"
	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

type recordService struct {
	pb.UnimplementedRecordServiceServer
	n *Node
}

func (s *recordService) CreateRecord(ctx context.Context, req *pb.CreateRecordRequest) (*pb.CreateRecordResponse, error) {
	rec := proto.Clone(req.GetRecord()).(*pb.Record)
	if rec == nil {
		return nil, status.Error(codes.InvalidArgument, "record: must be set")
	}
	if err := assignedByNode(rec); err != nil {
		return nil, err
	}
	idx, err := s.n.create(ctx, rec)
	if err != nil {
		return nil, err
	}
	return &pb.CreateRecordResponse{Record: rec, LogIndex: idx}, nil
}

// create normalises and validates a new record, gives it this agency's
// identity and stores it as version 1.
func (n *Node) create(ctx context.Context, rec *pb.Record) (uint64, error) {
	now := n.now().UTC()
	record.Normalize(rec, now)
	if err := record.Validate(rec); err != nil {
		return 0, status.Error(codes.InvalidArgument, err.Error())
	}
	rec.Id = record.NewID(n.cfg.Agency, now)
	rec.Version = 1
	rec.Origin = n.cfg.Agency
	rec.CreatedAt = timestamppb.New(now)
	return n.put(ctx, rec, nil, now)
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
	in := req.GetRecord()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "record: must be set")
	}
	if err := notConsultation(in); err != nil {
		return nil, err
	}
	cur, err := s.n.current(ctx, in.GetId(), req.GetExpectedVersion())
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
	now := s.n.now().UTC()
	record.Normalize(next, now)
	if next.Kind != cur.Kind {
		return nil, status.Errorf(codes.InvalidArgument, "invalid record: record.kind: is %s and cannot change", cur.Kind)
	}
	if err := record.Validate(next); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	idx, err := s.n.put(ctx, next, cur, now)
	if err != nil {
		return nil, err
	}
	return &pb.AmendRecordResponse{Record: next, LogIndex: idx}, nil
}

func (s *recordService) DelistDesignation(ctx context.Context, req *pb.DelistDesignationRequest) (*pb.DelistDesignationResponse, error) {
	cur, err := s.n.current(ctx, req.GetId(), req.GetExpectedVersion())
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
	now := s.n.now().UTC()
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
	idx, err := s.n.put(ctx, next, cur, now)
	if err != nil {
		return nil, err
	}
	return &pb.DelistDesignationResponse{Record: next, LogIndex: idx}, nil
}

func (s *recordService) SetDenialStatus(ctx context.Context, req *pb.SetDenialStatusRequest) (*pb.SetDenialStatusResponse, error) {
	if _, ok := pb.DenialStatus_name[int32(req.GetStatus())]; !ok || req.GetStatus() == pb.DenialStatus_DENIAL_STATUS_UNSPECIFIED {
		return nil, status.Errorf(codes.InvalidArgument, "status: %d is not a denial status", req.GetStatus())
	}
	if req.GetReason() == "" {
		return nil, status.Error(codes.InvalidArgument, "reason: must not be empty: a status change is notified to partners with its reason")
	}
	cur, err := s.n.current(ctx, req.GetId(), req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	if cur.GetDenial() == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is a designation, not a denial", cur.Id)
	}
	if cur.GetDenial().Status == req.GetStatus() {
		return nil, status.Errorf(codes.FailedPrecondition, "%s already has status %s", cur.Id, req.GetStatus())
	}
	now := s.n.now().UTC()
	next := proto.Clone(cur).(*pb.Record)
	next.GetDenial().Status = req.GetStatus()
	next.GetDenial().StatusReason = req.GetReason()
	next.ChangeNote = req.GetReason()
	if err := record.Validate(next); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	idx, err := s.n.put(ctx, next, cur, now)
	if err != nil {
		return nil, err
	}
	return &pb.SetDenialStatusResponse{Record: next, LogIndex: idx}, nil
}

func (s *recordService) GetRecord(ctx context.Context, req *pb.GetRecordRequest) (*pb.GetRecordResponse, error) {
	draftFrom(ctx).ev.Target = req.GetId()
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
		rec, err = s.n.store.Version(ctx, req.GetId(), req.GetVersion())
	case req.GetAsOf() != nil:
		rec, err = s.n.store.At(ctx, req.GetId(), req.GetAsOf().AsTime())
	default:
		rec, err = s.n.store.Current(ctx, req.GetId())
	}
	if err != nil {
		return nil, storeError(err, req.GetId())
	}
	draftFrom(ctx).ev.Detail = fmt.Sprintf("version %d", rec.Version)
	return &pb.GetRecordResponse{Record: rec}, nil
}

func (s *recordService) ListRecords(ctx context.Context, req *pb.ListRecordsRequest) (*pb.ListRecordsResponse, error) {
	limit, err := pageSize(req.GetPageSize(), "page_size")
	if err != nil {
		return nil, err
	}
	opts := store.ListOptions{Kind: req.GetKind(), IncludeInactive: req.GetIncludeInactive(), After: req.GetPageToken(), Limit: limit}
	if req.GetAsOf() != nil {
		opts.AsOf = req.GetAsOf().AsTime()
	}
	recs, next, err := s.n.store.List(ctx, opts)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "list records: %v", err)
	}
	draftFrom(ctx).ev.Detail = fmt.Sprintf("%d records", len(recs))
	return &pb.ListRecordsResponse{Records: recs, NextPageToken: next}, nil
}

func (s *recordService) GetRecordHistory(ctx context.Context, req *pb.GetRecordHistoryRequest) (*pb.GetRecordHistoryResponse, error) {
	draftFrom(ctx).ev.Target = req.GetId()
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "id: must not be empty")
	}
	recs, err := s.n.store.History(ctx, req.GetId())
	if err != nil {
		return nil, storeError(err, req.GetId())
	}
	return &pb.GetRecordHistoryResponse{Records: recs}, nil
}

// current loads the record to change and checks the caller's expected version.
func (n *Node) current(ctx context.Context, id string, expected uint64) (*pb.Record, error) {
	draftFrom(ctx).ev.Target = id
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "id: must not be empty")
	}
	cur, err := n.store.Current(ctx, id)
	if err != nil {
		return nil, storeError(err, id)
	}
	if cur.Origin != n.cfg.Agency {
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
func (n *Node) put(ctx context.Context, rec, prev *pb.Record, now time.Time) (uint64, error) {
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
	d := draftFrom(ctx)
	d.ev.Target = rec.Id
	d.ev.Outcome = "ok"
	d.ev.Detail = fmt.Sprintf("version %d", rec.Version)
	wait, drop := n.fed.ExpectPublished(rec)
	if _, err := n.store.Put(ctx, rec, d.ev); err != nil {
		drop()
		return 0, storeError(err, rec.Id)
	}
	d.written = true
	n.fed.WakeUp() // publish while the screening index takes the version in
	n.follow(rec, false)
	if n.opts.AckBeforeCommit {
		// The deliberate bug the reliability checker must catch: claim a
		// log index for a version that is only queued.
		return n.fed.Replicator().Status().LastIndex + 1, nil
	}
	wctx, cancel := context.WithTimeout(ctx, n.opts.PublishWait)
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
	}
	return status.Errorf(codes.Internal, "%s: %v", id, err)
}
