package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// The handlers run here as the node's server runs them, through the Guard's
// interceptor, with a caller's certificate in the context, but over small
// fakes of the interfaces they are given: what is checked is what a caller
// sees (the code, the field the error names) and what the audit log gets.

const agency = "DE-BAFA"

// fakeRecords is a RecordStore in memory; Put keeps the audit event it was
// given with the version, as the store commits them together.
type fakeRecords struct {
	mu       sync.Mutex
	versions map[string][]*pb.Record
	audit    *fakeAudit
}

func (f *fakeRecords) Current(_ context.Context, id string) (*pb.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs := f.versions[id]
	if len(vs) == 0 {
		return nil, store.ErrNotFound
	}
	return vs[len(vs)-1], nil
}
func (f *fakeRecords) Version(ctx context.Context, id string, v uint64) (*pb.Record, error) {
	return f.Current(ctx, id)
}
func (f *fakeRecords) At(ctx context.Context, id string, _ time.Time) (*pb.Record, error) {
	return f.Current(ctx, id)
}
func (f *fakeRecords) History(_ context.Context, id string) ([]*pb.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.versions[id], nil
}
func (f *fakeRecords) List(context.Context, store.ListOptions) ([]*pb.Record, string, error) {
	return nil, "", nil
}
func (f *fakeRecords) Put(ctx context.Context, rec *pb.Record, ev *pb.AuditEvent) (*pb.AuditEvent, error) {
	evs, err := f.PutBatch(ctx, []*pb.Record{rec}, []*pb.AuditEvent{ev})
	if err != nil {
		return nil, err
	}
	return evs[0], nil
}
func (f *fakeRecords) PutBatch(ctx context.Context, recs []*pb.Record, evs []*pb.AuditEvent) ([]*pb.AuditEvent, error) {
	f.mu.Lock()
	for _, r := range recs {
		f.versions[r.Id] = append(f.versions[r.Id], r)
	}
	f.mu.Unlock()
	for _, ev := range evs {
		f.audit.AppendAudit(ctx, ev)
	}
	return evs, nil
}

// fakeAudit is an AuditLog that keeps what is appended.
type fakeAudit struct {
	mu  sync.Mutex
	evs []*pb.AuditEvent
}

func (a *fakeAudit) AppendAudit(_ context.Context, ev *pb.AuditEvent) (*pb.AuditEvent, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evs = append(a.evs, ev)
	return ev, nil
}
func (a *fakeAudit) ListAudit(context.Context, uint64, int) ([]*pb.AuditEvent, error) {
	return nil, nil
}
func (a *fakeAudit) VerifyAudit(context.Context) (store.VerifyResult, error) {
	return store.VerifyResult{OK: true}, nil
}
func (a *fakeAudit) CheckAnchor(_ context.Context, res store.VerifyResult, _ store.Anchor) (store.VerifyResult, error) {
	return res, nil
}
func (a *fakeAudit) events() []*pb.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*pb.AuditEvent(nil), a.evs...)
}

// fakePublisher acknowledges every version at log index 42.
type fakePublisher struct{}

func (fakePublisher) ExpectPublished(*pb.Record) (func(context.Context) uint64, func()) {
	return func(context.Context) uint64 { return 42 }, func() {}
}
func (fakePublisher) WakeUp()           {}
func (fakePublisher) LastIndex() uint64 { return 41 }

// fakeIndex counts the versions it follows.
type fakeIndex struct {
	Index
	mu       sync.Mutex
	followed int
}

func (x *fakeIndex) Follow(*pb.Record, bool) { x.mu.Lock(); x.followed++; x.mu.Unlock() }

// methodStream names the method of a call, as the server's transport does.
type methodStream struct {
	grpc.ServerTransportStream
	method string
}

func (s methodStream) Method() string { return s.method }

type caller struct {
	chain []*x509.Certificate
}

// newCaller issues a certificate of the agency with the roles.
func newCaller(t *testing.T, ca *pki.CA, name string, roles ...pki.Role) caller {
	t.Helper()
	is, err := ca.Issue(pki.IssueRequest{Agency: agency, Name: name, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertPEM(is.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	return caller{chain: []*x509.Certificate{cert, ca.Cert}}
}

// ctx is the context of a call by c to method, after the TLS handshake.
func (c caller) ctx(method string) context.Context {
	ctx := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: tlsState(c.chain)}})
	return grpc.NewContextWithServerTransportStream(ctx, methodStream{method: method})
}

type services struct {
	guard   *Guard
	audit   *fakeAudit
	records *fakeRecords
	index   *fakeIndex
	rec     *recordService
	log     *auditService
}

func newServices() *services {
	a := &fakeAudit{}
	now := func() time.Time { return time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC) }
	g := NewGuard(agency, 1<<20, a, now, nil)
	s := &services{guard: g, audit: a, records: &fakeRecords{versions: map[string][]*pb.Record{}, audit: a}, index: &fakeIndex{}}
	s.rec = &recordService{writer: writer{audit: &g.auditor, records: s.records, pub: fakePublisher{}, index: s.index, agency: agency, now: now, publishWait: time.Second}}
	s.log = &auditService{audit: &g.auditor, log: a}
	return s
}

// call runs a unary handler through the Guard, as the server does.
func call[Req, Resp any](s *services, c caller, method string, req Req, h func(context.Context, Req) (Resp, error)) (Resp, error) {
	var zero Resp
	resp, err := s.guard.Unary(c.ctx(method), req, &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, req any) (any, error) {
		return h(ctx, req.(Req))
	})
	if resp == nil {
		return zero, err
	}
	return resp.(Resp), err
}

func designation(name string) *pb.Record {
	return &pb.Record{
		Marking: pb.Marking_MARKING_GREEN,
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_PERSON, Name: name},
		Detail:  &pb.Record_Designation{Designation: &pb.Designation{Program: "RUSSIA-EO14024", Measures: []string{"asset freeze"}, ListedOn: "2026-02-24"}},
	}
}

// TestRecordHandlers: refusals, errors that name the field, and the audit
// event each call leaves.
func TestRecordHandlers(t *testing.T) {
	ca, err := pki.NewCA(agency)
	if err != nil {
		t.Fatal(err)
	}
	analyst := newCaller(t, ca, "anna", pki.RoleAnalyst)
	consumer := newCaller(t, ca, "feed", pki.RoleConsumer)
	operator := newCaller(t, ca, "otto", pki.RoleOperator)
	const (
		create = "/watchfed.v1.RecordService/CreateRecord"
		get    = "/watchfed.v1.RecordService/GetRecord"
		amend  = "/watchfed.v1.RecordService/AmendRecord"
		list   = "/watchfed.v1.AuditService/ListAuditEvents"
	)
	foreign := &pb.Record{Id: "FR-SBDU/01J0000000000000000000000", Version: 1, Origin: "FR-SBDU", Kind: pb.Kind_KIND_DESIGNATION}
	for _, tc := range []struct {
		name    string
		run     func(s *services) error
		code    codes.Code
		errHas  string // the field the error names
		action  string // the audit event's
		outcome string
		target  string
		follows int // versions the screening index took in
	}{
		{
			name: "analyst creates a designation",
			run: func(s *services) error {
				resp, err := call(s, analyst, create, &pb.CreateRecordRequest{Record: designation("Ivan Petrov")}, s.rec.CreateRecord)
				if err == nil && (resp.LogIndex != 42 || !strings.HasPrefix(resp.Record.Id, agency+"/") || resp.Record.Version != 1) {
					t.Errorf("created %v at index %d", resp.Record, resp.LogIndex)
				}
				return err
			},
			code: codes.OK, action: "RecordService.CreateRecord", outcome: "ok", target: agency + "/", follows: 1,
		},
		{
			name: "a consumer may not create",
			run: func(s *services) error {
				_, err := call(s, consumer, create, &pb.CreateRecordRequest{Record: designation("Ivan Petrov")}, s.rec.CreateRecord)
				return err
			},
			code: codes.PermissionDenied, action: "RecordService.CreateRecord", outcome: "denied",
		},
		{
			name: "an id in a new record is refused, naming record.id",
			run: func(s *services) error {
				r := designation("Ivan Petrov")
				r.Id = agency + "/X"
				_, err := call(s, analyst, create, &pb.CreateRecordRequest{Record: r}, s.rec.CreateRecord)
				return err
			},
			code: codes.InvalidArgument, errHas: "record.id", action: "RecordService.CreateRecord", outcome: "invalid",
		},
		{
			name: "an empty name is refused, naming the field",
			run: func(s *services) error {
				_, err := call(s, analyst, create, &pb.CreateRecordRequest{Record: designation("  ")}, s.rec.CreateRecord)
				return err
			},
			code: codes.InvalidArgument, errHas: "subject.name", action: "RecordService.CreateRecord", outcome: "invalid",
		},
		{
			name: "a missing record is refused, naming record",
			run: func(s *services) error {
				_, err := call(s, analyst, create, &pb.CreateRecordRequest{}, s.rec.CreateRecord)
				return err
			},
			code: codes.InvalidArgument, errHas: "record:", action: "RecordService.CreateRecord", outcome: "invalid",
		},
		{
			name: "get without an id names id",
			run: func(s *services) error {
				_, err := call(s, operator, get, &pb.GetRecordRequest{}, s.rec.GetRecord)
				return err
			},
			code: codes.InvalidArgument, errHas: "id:", action: "RecordService.GetRecord", outcome: "invalid",
		},
		{
			name: "get of an unknown id",
			run: func(s *services) error {
				_, err := call(s, operator, get, &pb.GetRecordRequest{Id: agency + "/NOPE"}, s.rec.GetRecord)
				return err
			},
			code: codes.NotFound, action: "RecordService.GetRecord", outcome: "not_found", target: agency + "/NOPE",
		},
		{
			name: "only the originator amends",
			run: func(s *services) error {
				s.records.versions[foreign.Id] = []*pb.Record{foreign}
				_, err := call(s, analyst, amend, &pb.AmendRecordRequest{Record: designation("Acme")}, func(ctx context.Context, req *pb.AmendRecordRequest) (*pb.AmendRecordResponse, error) {
					req.Record.Id = foreign.Id
					return s.rec.AmendRecord(ctx, req)
				})
				return err
			},
			code: codes.PermissionDenied, errHas: "only the originator", action: "RecordService.AmendRecord", outcome: "denied", target: foreign.Id,
		},
		{
			name: "an analyst may not read the audit log",
			run: func(s *services) error {
				_, err := call(s, analyst, list, &pb.ListAuditEventsRequest{}, s.log.ListAuditEvents)
				return err
			},
			code: codes.PermissionDenied, action: "AuditService.ListAuditEvents", outcome: "denied",
		},
		{
			name: "a negative limit names limit",
			run: func(s *services) error {
				_, err := call(s, operator, list, &pb.ListAuditEventsRequest{Limit: -1}, s.log.ListAuditEvents)
				return err
			},
			code: codes.InvalidArgument, errHas: "limit:", action: "AuditService.ListAuditEvents", outcome: "invalid",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServices()
			err := tc.run(s)
			if got := status.Code(err); got != tc.code {
				t.Fatalf("code %v (%v), want %v", got, err, tc.code)
			}
			if tc.errHas != "" && !strings.Contains(status.Convert(err).Message(), tc.errHas) {
				t.Errorf("error %q does not name %q", status.Convert(err).Message(), tc.errHas)
			}
			evs := s.audit.events()
			if len(evs) != 1 {
				t.Fatalf("%d audit events, want 1: %v", len(evs), evs)
			}
			ev := evs[0]
			if ev.Action != tc.action || ev.Outcome != tc.outcome || ev.Agency != agency || ev.Actor == "" || !strings.HasPrefix(ev.Target, tc.target) {
				t.Errorf("audit event %v, want action %s, outcome %s, target %s…", ev, tc.action, tc.outcome, tc.target)
			}
			if s.index.followed != tc.follows {
				t.Errorf("index followed %d versions, want %d", s.index.followed, tc.follows)
			}
		})
	}
}

// TestUnauthenticatedNotAudited: a call without a verified certificate is
// refused and names no one in the audit log.
func TestUnauthenticatedNotAudited(t *testing.T) {
	s := newServices()
	ctx := grpc.NewContextWithServerTransportStream(context.Background(), methodStream{method: "/watchfed.v1.RecordService/GetRecord"})
	_, err := s.guard.Unary(ctx, &pb.GetRecordRequest{Id: "X"}, &grpc.UnaryServerInfo{FullMethod: "/watchfed.v1.RecordService/GetRecord"}, func(context.Context, any) (any, error) {
		t.Fatal("the handler ran")
		return nil, nil
	})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("code %v, want Unauthenticated", status.Code(err))
	}
	if evs := s.audit.events(); len(evs) != 0 {
		t.Fatalf("audit events %v, want none", evs)
	}
}

func tlsState(chain []*x509.Certificate) tls.ConnectionState {
	return tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{chain}}
}
