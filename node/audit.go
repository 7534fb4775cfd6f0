package node

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/auth"
	"github.com/watchfed/watchfed/node/pki"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// rules is who may call what. Reads of records are analyst or operator work;
// writes are analysts'; the audit log is operators'.
func rules() auth.Rules {
	r := auth.Rules{}
	analyst := auth.Rule{Roles: []pki.Role{pki.RoleAnalyst}, Audit: true}
	reader := auth.Rule{Roles: []pki.Role{pki.RoleAnalyst, pki.RoleOperator}, Audit: true}
	operator := auth.Rule{Roles: []pki.Role{pki.RoleOperator}, Audit: true}
	anyone := auth.Rule{Roles: pki.Roles}
	r.Service("watchfed.v1.RecordService", []string{"CreateRecord", "AmendRecord", "DelistDesignation", "SetDenialStatus", "ReviewDenial"}, analyst)
	r.Service("watchfed.v1.RecordService", []string{"GetRecord", "ListRecords", "GetRecordHistory", "ListDueDenials"}, reader)
	r.Service("watchfed.v1.PolicyService", []string{"ExplainPolicy"}, reader)
	r.Service("watchfed.v1.ConsultationService", []string{"OpenConsultation", "AnswerConsultation", "ExtendConsultation", "DecideConsultation", "ListConsultations", "GetConsultation"}, analyst)
	r.Service("watchfed.v1.AuditService", []string{"ListAuditEvents", "VerifyAuditLog"}, operator)
	partnerNode := auth.Rule{Roles: []pki.Role{pki.RoleNode}, Partners: true}
	r.Service("watchfed.v1.FederationService", []string{"InitFederation", "InvitePeer", "RemovePeer", "TransferLeadership", "GetStatus", "ListPeers", "SaveSnapshot"}, operator)
	r.Service("watchfed.peer.v1.PeerService", []string{"Join", "Forward", "GetNodeStatus"}, partnerNode)
	r.Service("watchfed.raft.v1.RaftService", []string{"AppendEntries", "AppendEntriesPipeline", "RequestVote", "RequestPreVote", "TimeoutNow", "InstallSnapshot"}, partnerNode)
	r.Service("watchfed.v1.SharedService", []string{"ListShared", "GetShared", "Watch"}, auth.Rule{Roles: []pki.Role{pki.RoleAnalyst, pki.RoleConsumer}, Audit: true})
	r.Service("watchfed.v1.ScreeningService", []string{"Screen", "ScreenBatch", "ScreenApplication"}, analyst)
	r.Service("watchfed.v1.ImportService", []string{"Import"}, analyst)
	r.Service("grpc.health.v1.Health", []string{"Check", "Watch", "List"}, anyone)
	r.Service("grpc.reflection.v1.ServerReflection", []string{"ServerReflectionInfo"}, anyone)
	r.Service("grpc.reflection.v1alpha.ServerReflection", []string{"ServerReflectionInfo"}, anyone)
	return r
}

// auditDraft is the audit event of the call in progress. A handler that
// writes records passes it to the store, which commits it in the same
// transaction as the write (so no acknowledged write lacks its audit entry)
// and marks it written; otherwise the interceptor appends it when the call ends.
type auditDraft struct {
	ev      *pb.AuditEvent
	written bool
}

type draftKey struct{}

func draftFrom(ctx context.Context) *auditDraft {
	d, _ := ctx.Value(draftKey{}).(*auditDraft)
	if d == nil {
		// Not inside an audited call: a throwaway draft keeps callers simple.
		d = &auditDraft{ev: &pb.AuditEvent{}}
	}
	return d
}

// begin authenticates and authorises a call and starts its audit draft.
func (n *Node) begin(ctx context.Context, method string) (context.Context, *auditDraft, error) {
	id, err := auth.PeerIdentity(ctx)
	if err != nil {
		return ctx, nil, err
	}
	ctx = auth.WithIdentity(ctx, id)
	var d *auditDraft
	if n.rules.Audited(method) {
		roles := make([]string, len(id.Roles))
		for i, r := range id.Roles {
			roles[i] = string(r)
		}
		d = &auditDraft{ev: &pb.AuditEvent{
			Time:   timestamppb.New(n.now()),
			Agency: id.Agency,
			Actor:  id.Name,
			Roles:  roles,
			Action: actionName(method),
		}}
		ctx = context.WithValue(ctx, draftKey{}, d)
	}
	return ctx, d, n.rules.Authorize(method, id, n.cfg.Agency)
}

// end writes the audit event of a call that did not write it with a record.
func (n *Node) end(ctx context.Context, d *auditDraft, err error) {
	if d == nil || d.written {
		return
	}
	d.ev.Outcome = outcome(err)
	if err != nil && d.ev.Detail == "" {
		d.ev.Detail = status.Convert(err).Message()
	}
	// The call's context may be cancelled already; the audit entry must still land.
	if _, aerr := n.store.AppendAudit(context.WithoutCancel(ctx), d.ev); aerr != nil {
		n.log.Error("audit append failed", "action", d.ev.Action, "err", aerr)
	}
}

func (n *Node) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, d, err := n.begin(ctx, info.FullMethod)
	if m, ok := req.(proto.Message); ok && err == nil && !n.rules[info.FullMethod].Partners && proto.Size(m) > n.cfg.MaxMessageBytes {
		err = status.Errorf(codes.ResourceExhausted, "request of %d bytes exceeds max_message_bytes %d", proto.Size(m), n.cfg.MaxMessageBytes)
	}
	var resp any
	if err == nil {
		resp, err = handler(ctx, req)
	}
	n.end(ctx, d, err)
	return resp, err
}

func (n *Node) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, d, err := n.begin(ss.Context(), info.FullMethod)
	if err == nil {
		err = handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	}
	n.end(ctx, d, err)
	return err
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

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
	n *Node
}

func (s *auditService) ListAuditEvents(ctx context.Context, req *pb.ListAuditEventsRequest) (*pb.ListAuditEventsResponse, error) {
	limit, err := pageSize(req.GetLimit(), "limit")
	if err != nil {
		return nil, err
	}
	evs, err := s.n.store.ListAudit(ctx, req.GetAfterSeq(), limit)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "list audit: %v", err)
	}
	return &pb.ListAuditEventsResponse{Events: evs}, nil
}

func (s *auditService) VerifyAuditLog(ctx context.Context, _ *pb.VerifyAuditLogRequest) (*pb.VerifyAuditLogResponse, error) {
	res, err := s.n.store.VerifyAudit(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "verify audit: %v", err)
	}
	d := draftFrom(ctx)
	d.ev.Detail = res.Reason
	return &pb.VerifyAuditLogResponse{Ok: res.OK, Checked: res.Checked, FirstBrokenSeq: res.FirstBrokenSeq, Reason: res.Reason, HeadHash: res.HeadHash}, nil
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
