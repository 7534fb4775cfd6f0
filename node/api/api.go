// Package api serves a node's public gRPC services: records and denial
// reviews, screening, import, shared entries, policy explanations,
// consultations, the audit log, and the operators' federation calls. Each
// handler is thin: it checks the request (an error names the field), works
// through the narrow interfaces its service is given (defined here, where
// they are used), and fills in the call's audit event, which it is handed
// explicitly. The interceptors authenticate and authorise every call and
// audit the refused ones; a handler's event is written when it returns, or
// with the records it writes, in the same transaction.
package api

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/auth"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/diskfull"
)

// Event is the audit event of one call. Handlers set its target and detail.
// A handler that writes records hands it to the store with them and marks
// it written; any other is appended when the handler returns.
type Event struct {
	*pb.AuditEvent
	audited bool // the call's method is audited (else the event is dropped)
	written bool // committed with the records the call wrote
}

// auditor starts and ends the audit events of calls.
type auditor struct {
	rules auth.Rules
	log   AuditLog
	now   func() time.Time
	slog  *slog.Logger
}

// begin starts the event of the call in ctx (its method and caller).
func (a *auditor) begin(ctx context.Context) *Event {
	method, _ := grpc.Method(ctx)
	ev := &Event{AuditEvent: &pb.AuditEvent{}, audited: a.rules.Audited(method)}
	if !ev.audited {
		return ev
	}
	id, _ := auth.FromContext(ctx)
	roles := make([]string, len(id.Roles))
	for i, r := range id.Roles {
		roles[i] = string(r)
	}
	ev.AuditEvent = &pb.AuditEvent{Time: timestamppb.New(a.now()), Agency: id.Agency, Actor: id.Name, Roles: roles, Action: actionName(method)}
	return ev
}

// end appends the event of a call that did not write it with a record.
func (a *auditor) end(ctx context.Context, ev *Event, err error) {
	if !ev.audited || ev.written {
		return
	}
	ev.Outcome = outcome(err)
	if err != nil && ev.Detail == "" {
		ev.Detail = status.Convert(err).Message()
	}
	// The call's context may be cancelled already; the audit entry must still land.
	// On a full disk the store logs the outage once, not each event it refuses.
	if _, aerr := a.log.AppendAudit(context.WithoutCancel(ctx), ev.AuditEvent); aerr != nil && !diskfull.Is(aerr) {
		a.slog.Error("audit append failed", "action", ev.Action, "err", aerr)
	}
}

// unary runs a unary handler with its audit event.
func unary[Req, Resp any](ctx context.Context, a *auditor, req Req, h func(context.Context, Req, *Event) (Resp, error)) (Resp, error) {
	ev := a.begin(ctx)
	resp, err := h(ctx, req, ev)
	a.end(ctx, ev, err)
	return resp, err
}

// streaming runs a streaming handler with its audit event.
func streaming(ctx context.Context, a *auditor, h func(*Event) error) error {
	ev := a.begin(ctx)
	err := h(ev)
	a.end(ctx, ev, err)
	return err
}

// Guard authenticates and authorises every call to the node's server
// (public, node-to-node and raft) and holds public requests to the size
// limit. A refused call that is audited is written to the audit log here:
// its handler never runs.
type Guard struct {
	auditor
	agency   string
	maxBytes int
}

// NewGuard makes the interceptors' guard.
func NewGuard(agency string, maxMessageBytes int, log AuditLog, now func() time.Time, logger *slog.Logger) *Guard {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Guard{auditor: auditor{rules: Rules(), log: log, now: now, slog: logger}, agency: agency, maxBytes: maxMessageBytes}
}

// check authenticates and authorises a call; the returned context carries
// the caller's identity.
func (g *Guard) check(ctx context.Context, method string, req any) (context.Context, error) {
	id, err := auth.PeerIdentity(ctx)
	if err != nil {
		return ctx, err
	}
	ctx = auth.WithIdentity(ctx, id)
	if err := g.rules.Authorize(method, id, g.agency); err != nil {
		return ctx, err
	}
	if m, ok := req.(proto.Message); ok && !g.rules[method].Partners && proto.Size(m) > g.maxBytes {
		return ctx, status.Errorf(codes.ResourceExhausted, "request of %d bytes exceeds max_message_bytes %d", proto.Size(m), g.maxBytes)
	}
	return ctx, nil
}

// refused audits a call refused before its handler ran.
func (g *Guard) refused(ctx context.Context, err error) {
	if _, ok := auth.FromContext(ctx); !ok {
		return // not authenticated: no one to name in the audit log
	}
	g.end(ctx, g.begin(ctx), err)
}

// Unary is the unary server interceptor.
func (g *Guard) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := g.check(ctx, info.FullMethod, req)
	if err != nil {
		g.refused(ctx, err)
		return nil, err
	}
	return handler(ctx, req)
}

// Stream is the stream server interceptor.
func (g *Guard) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := g.check(ss.Context(), info.FullMethod, nil)
	if err != nil {
		g.refused(ctx, err)
		return err
	}
	return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }
