package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/anchor"
	"github.com/watchfed/watchfed/node/auth"
	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Rules is who may call what. Reads of records are analyst or operator work;
// writes are analysts'; the audit log is operators'.
func Rules() auth.Rules {
	r := auth.Rules{}
	analyst := auth.Rule{Roles: []pki.Role{pki.RoleAnalyst}, Audit: true}
	reader := auth.Rule{Roles: []pki.Role{pki.RoleAnalyst, pki.RoleOperator}, Audit: true}
	operator := auth.Rule{Roles: []pki.Role{pki.RoleOperator}, Audit: true}
	anyone := auth.Rule{Roles: pki.Roles}
	r.Service("watchfed.v1.RecordService", []string{"CreateRecord", "AmendRecord", "DelistDesignation", "SetDenialStatus", "ReviewDenial"}, analyst)
	r.Service("watchfed.v1.RecordService", []string{"GetRecord", "ListRecords", "GetRecordHistory", "ListDueDenials"}, reader)
	r.Service("watchfed.v1.PolicyService", []string{"ExplainPolicy"}, reader)
	r.Service("watchfed.v1.ConsultationService", []string{"OpenConsultation", "AnswerConsultation", "ExtendConsultation", "DecideConsultation", "ListConsultations", "GetConsultation"}, analyst)
	r.Service("watchfed.v1.AuditService", []string{"ListAuditEvents", "VerifyAuditLog", "ListAuditAnchors", "AcceptRestore"}, operator)
	partnerNode := auth.Rule{Roles: []pki.Role{pki.RoleNode}, Partners: true}
	r.Service("watchfed.v1.FederationService", []string{"InitFederation", "InvitePeer", "RemovePeer", "RebindPeer", "TransferLeadership", "GetStatus", "ListPeers", "SaveSnapshot",
		"ListProposals", "ApproveProposal", "RejectProposal", "LeaveFederation"}, operator)
	r.Service("watchfed.peer.v1.PeerService", []string{"Join", "Forward", "ForwardStream", "GetNodeStatus"}, partnerNode)
	r.Service("watchfed.raft.v1.RaftService", []string{"AppendEntries", "AppendEntriesPipeline", "RequestVote", "RequestPreVote", "TimeoutNow", "InstallSnapshot"}, partnerNode)
	r.Service("watchfed.v1.SharedService", []string{"ListShared", "GetShared", "Watch"}, auth.Rule{Roles: []pki.Role{pki.RoleAnalyst, pki.RoleConsumer}, Audit: true})
	r.Service("watchfed.v1.ScreeningService", []string{"Screen", "ScreenBatch", "ScreenApplication"}, analyst)
	r.Service("watchfed.v1.ImportService", []string{"Import"}, analyst)
	r.Service("grpc.health.v1.Health", []string{"Check", "Watch", "List"}, anyone)
	r.Service("grpc.reflection.v1.ServerReflection", []string{"ServerReflectionInfo"}, anyone)
	r.Service("grpc.reflection.v1alpha.ServerReflection", []string{"ServerReflectionInfo"}, anyone)
	return r
}

// actionName turns "/watchfed.v1.RecordService/GetRecord" into "RecordService.GetRecord".
func actionName(method string) string {
	m := strings.TrimPrefix(method, "/")
	m = strings.TrimPrefix(m, "watchfed.v1.")
	return strings.Replace(m, "/", ".", 1)
}

func outcome(err error) string {
	switch status.Code(err) {
	case codes.OK:
		return "ok"
	case codes.PermissionDenied, codes.Unauthenticated:
		return "denied"
	case codes.InvalidArgument:
		return "invalid"
	case codes.NotFound:
		return "not_found"
	case codes.FailedPrecondition, codes.Aborted, codes.AlreadyExists:
		return "conflict"
	default:
		return "error"
	}
}

type auditService struct {
	pb.UnimplementedAuditServiceServer
	audit   *auditor
	log     AuditLog
	anchors AuditAnchors
}

func (s *auditService) ListAuditEvents(ctx context.Context, req *pb.ListAuditEventsRequest) (*pb.ListAuditEventsResponse, error) {
	return unary(ctx, s.audit, req, s.listAuditEvents)
}

func (s *auditService) listAuditEvents(ctx context.Context, req *pb.ListAuditEventsRequest, ev *Event) (*pb.ListAuditEventsResponse, error) {
	limit, err := pageSize(req.GetLimit(), "limit")
	if err != nil {
		return nil, err
	}
	evs, err := s.log.ListAudit(ctx, req.GetAfterSeq(), limit)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "list audit: %v", err)
	}
	return &pb.ListAuditEventsResponse{Events: evs}, nil
}

func (s *auditService) VerifyAuditLog(ctx context.Context, req *pb.VerifyAuditLogRequest) (*pb.VerifyAuditLogResponse, error) {
	return unary(ctx, s.audit, req, s.verifyAuditLog)
}

func (s *auditService) verifyAuditLog(ctx context.Context, _ *pb.VerifyAuditLogRequest, ev *Event) (*pb.VerifyAuditLogResponse, error) {
	own, err := s.anchors.Own()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "audit anchors: %v", err)
	}
	res, err := anchor.Verify(ctx, s.log, own)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "verify audit: %v", err)
	}
	ev.Detail = res.Reason
	return VerifyResponse(res, own), nil
}

// VerifyResponse is a verification's result as the API reports it.
func VerifyResponse(res store.VerifyResult, anchors []store.Anchor) *pb.VerifyAuditLogResponse {
	return &pb.VerifyAuditLogResponse{Ok: res.OK, Checked: res.Checked, FirstBrokenSeq: res.FirstBrokenSeq, Reason: res.Reason, HeadHash: res.HeadHash,
		AnchoredSeq: res.AnchoredSeq, AnchoredAt: res.AnchoredAt, AnchorNote: anchor.Note(anchors)}
}

func (s *auditService) ListAuditAnchors(ctx context.Context, req *pb.ListAuditAnchorsRequest) (*pb.ListAuditAnchorsResponse, error) {
	return unary(ctx, s.audit, req, s.listAuditAnchors)
}

func (s *auditService) listAuditAnchors(ctx context.Context, req *pb.ListAuditAnchorsRequest, ev *Event) (*pb.ListAuditAnchorsResponse, error) {
	as, err := s.anchors.Held(req.GetAgency())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "audit anchors: %v", err)
	}
	out := &pb.ListAuditAnchorsResponse{}
	for _, a := range as {
		out.Anchors = append(out.Anchors, &pb.AuditAnchorInfo{Agency: a.Agency, Sequence: a.Sequence, HeadHash: a.HeadHash, LogIndex: a.Index, SignedAt: timestamppb.New(a.SignedAt)})
	}
	return out, nil
}

// pageSize applies the default of 100 and the cap of 1000.
func pageSize(v int32, field string) (int, error) {
	switch {
	case v < 0:
		return 0, status.Errorf(codes.InvalidArgument, "%s: must not be negative", field)
	case v == 0:
		return 100, nil
	case v > 1000:
		return 1000, nil
	}
	return int(v), nil
}

func (s *auditService) AcceptRestore(ctx context.Context, req *pb.AcceptRestoreRequest) (*pb.AcceptRestoreResponse, error) {
	return unary(ctx, s.audit, req, s.acceptRestore)
}

func (s *auditService) acceptRestore(ctx context.Context, _ *pb.AcceptRestoreRequest, ev *Event) (*pb.AcceptRestoreResponse, error) {
	acc, err := s.anchors.AcceptRestore(ctx)
	if errors.Is(err, anchor.ErrNothingToAccept) {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "accept the restore: %v", err)
	}
	out := &pb.AcceptRestoreResponse{HeadSeq: acc.HeadSeq, BeforeRestore: acc.BeforeRestore}
	var seqs []string
	for _, a := range acc.Superseded {
		out.Superseded = append(out.Superseded, &pb.AuditAnchorInfo{Sequence: a.Seq, HeadHash: a.Hash, SignedAt: timestamppb.New(a.At)})
		seqs = append(seqs, fmt.Sprintf("%d (%s)", a.Seq, a.Where))
	}
	// The event says what was accepted: the chain's head, the restores,
	// and the anchors of the replaced chain set aside.
	ev.Detail = fmt.Sprintf("restore accepted at event %d (%s); anchors superseded: %s", acc.HeadSeq,
		strings.Join(acc.BeforeRestore, ", "), cmp.Or(strings.Join(seqs, ", "), "none"))
	return out, nil
}
