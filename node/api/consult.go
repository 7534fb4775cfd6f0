package api

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Consultations carry the no-undercut rule of the export-control regimes.
// A thread is two records, each agency writing only its own: the consulting
// agency's Consultation (opened, extended, decided: its versions) and the
// denying agency's ConsultationAnswer (a version per answer). Both are
// marked AMBER+STRICT and released (rel_to) to the other agency alone, and
// publication seals them to exactly their rel_to, whatever the sharing
// policy says. A decided approval is released to every partner that holds
// the denial too, without the question.

const (
	consultWorkingDays    = 10 // the usual objection window
	consultMaxWorkingDays = 30 // the window once extended
)

type consultService struct {
	pb.UnimplementedConsultationServiceServer
	writer
	shared   SharedStore
	holders  Holders
	holidays []string
	// mu serialises the steps of this node's analysts, so two answers to
	// one consultation do not both create an answer record.
	mu sync.Mutex
}

// addWorkingDays counts Monday to Friday, except the holidays (dates
// YYYY-MM-DD) of the agency that computes the deadline.
func addWorkingDays(d time.Time, n int, holidays []string) time.Time {
	for n > 0 {
		d = d.AddDate(0, 0, 1)
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday && !slices.Contains(holidays, dateOnly(d)) {
			n--
		}
	}
	return d
}

func dateOnly(t time.Time) string { return t.Format(time.DateOnly) }

func (s *consultService) OpenConsultation(ctx context.Context, req *pb.OpenConsultationRequest) (*pb.OpenConsultationResponse, error) {
	return unary(ctx, s.audit, req, s.openConsultation)
}

func (s *consultService) openConsultation(ctx context.Context, req *pb.OpenConsultationRequest, ev *Event) (*pb.OpenConsultationResponse, error) {
	ev.Target = req.GetDenialId()
	var bad []string
	if req.GetApplication() == "" {
		bad = append(bad, "application: must name this agency's application")
	}
	if req.GetParty() == "" {
		bad = append(bad, "party: must name the application's consignee or end user")
	}
	if len(bad) > 0 {
		return nil, status.Errorf(codes.InvalidArgument, "invalid consultation: %v", bad)
	}
	e, err := s.shared.Shared(ctx, req.GetDenialId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "denial %s: not among the entries partners shared with this agency", req.GetDenialId())
	}
	den := e.GetRecord().GetDenial()
	if den == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is not a denial", req.GetDenialId())
	}
	if !store.Active(e.Record) {
		return nil, status.Errorf(codes.FailedPrecondition, "denial %s is %s: no consultation is needed", e.Record.Id, den.Status)
	}
	today := day(s.now())
	var countries []string
	if req.GetPartyCountry() != "" {
		countries = []string{req.GetPartyCountry()}
	}
	rec := &pb.Record{
		Marking: pb.Marking_MARKING_AMBER_STRICT,
		RelTo:   []string{e.Origin},
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: req.GetParty(), Countries: countries},
		Detail: &pb.Record_Consultation{Consultation: &pb.Consultation{
			DenialId:         e.Record.Id,
			DenialVersion:    e.Record.Version,
			ConsultedAgency:  e.Origin,
			Application:      req.GetApplication(),
			ControlListEntry: cmp.Or(req.GetControlListEntry(), den.ControlListEntry),
			Item:             cmp.Or(req.GetItem(), den.Item),
			Destination:      cmp.Or(req.GetDestination(), den.Destination),
			EndUse:           cmp.Or(req.GetEndUse(), den.EndUse),
			Question:         req.GetQuestion(),
			OpenedOn:         dateOnly(today),
			Deadline:         dateOnly(addWorkingDays(today, consultWorkingDays, s.holidays)),
		}},
		ChangeNote: "consultation opened",
	}
	idx, err := s.create(ctx, ev, rec)
	if err != nil {
		return nil, err
	}
	th, err := s.thread(ctx, ev, rec.Id)
	if err != nil {
		return nil, err
	}
	th.LogIndex, th.NotShared = idx, s.notShared(rec, idx)
	return &pb.OpenConsultationResponse{Thread: th}, nil
}

func (s *consultService) AnswerConsultation(ctx context.Context, req *pb.AnswerConsultationRequest) (*pb.AnswerConsultationResponse, error) {
	return unary(ctx, s.audit, req, s.answerConsultation)
}

func (s *consultService) answerConsultation(ctx context.Context, req *pb.AnswerConsultationRequest, ev *Event) (*pb.AnswerConsultationResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	th, err := s.thread(ctx, ev, req.GetConsultationId())
	if err != nil {
		return nil, err
	}
	if th.Consulting {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is this agency's own consultation: %s answers it", th.Consultation.Id, th.Consultation.GetConsultation().ConsultedAgency)
	}
	if th.State == pb.ConsultationState_CONSULTATION_STATE_DECIDED {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is decided already: %s", th.Consultation.Id, th.Consultation.GetConsultation().Decision)
	}
	answer := &pb.Record_ConsultationAnswer{ConsultationAnswer: &pb.ConsultationAnswer{
		ConsultationId: th.Consultation.Id, Answer: req.GetAnswer(), Text: req.GetText(), AnsweredOn: dateOnly(day(s.now())),
	}}
	note := fmt.Sprintf("answer: %s", req.GetAnswer())
	var idx uint64
	var rec *pb.Record
	if prev := th.Answer; prev == nil {
		rec = &pb.Record{
			Marking: pb.Marking_MARKING_AMBER_STRICT, RelTo: []string{th.Consultation.Origin},
			Subject: proto.Clone(th.Consultation.Subject).(*pb.Subject), Detail: answer, ChangeNote: note,
		}
		idx, err = s.create(ctx, ev, rec)
	} else {
		rec = proto.Clone(prev).(*pb.Record)
		rec.Detail, rec.ChangeNote = answer, note
		idx, err = s.amend(ctx, ev, rec, prev)
	}
	if err != nil {
		return nil, err
	}
	return &pb.AnswerConsultationResponse{Thread: s.threadAfter(ctx, th.Consultation.Id, rec, idx)}, nil
}

func (s *consultService) ExtendConsultation(ctx context.Context, req *pb.ExtendConsultationRequest) (*pb.ExtendConsultationResponse, error) {
	return unary(ctx, s.audit, req, s.extendConsultation)
}

func (s *consultService) extendConsultation(ctx context.Context, req *pb.ExtendConsultationRequest, ev *Event) (*pb.ExtendConsultationResponse, error) {
	if req.GetReason() == "" {
		return nil, status.Error(codes.InvalidArgument, "reason: must not be empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, c, err := s.ownUndecided(ctx, ev, req.GetConsultationId())
	if err != nil {
		return nil, err
	}
	if c.Extended {
		return nil, status.Errorf(codes.FailedPrecondition, "%s was extended once already, to %s", cur.Id, c.Deadline)
	}
	opened, _ := time.Parse(time.DateOnly, c.OpenedOn)
	limit := dateOnly(addWorkingDays(opened, consultMaxWorkingDays, s.holidays))
	deadline := cmp.Or(req.GetDeadline(), limit)
	if _, err := time.Parse(time.DateOnly, deadline); err != nil || deadline <= c.Deadline || deadline > limit {
		return nil, status.Errorf(codes.InvalidArgument, "deadline: %q is not a date after %s and at most %s (thirty working days after opening)", deadline, c.Deadline, limit)
	}
	next := proto.Clone(cur).(*pb.Record)
	next.GetConsultation().Deadline, next.GetConsultation().Extended = deadline, true
	next.ChangeNote = "deadline extended: " + req.GetReason()
	idx, err := s.amend(ctx, ev, next, cur)
	if err != nil {
		return nil, err
	}
	return &pb.ExtendConsultationResponse{Thread: s.threadAfter(ctx, cur.Id, next, idx)}, nil
}

func (s *consultService) DecideConsultation(ctx context.Context, req *pb.DecideConsultationRequest) (*pb.DecideConsultationResponse, error) {
	return unary(ctx, s.audit, req, s.decideConsultation)
}

func (s *consultService) decideConsultation(ctx context.Context, req *pb.DecideConsultationRequest, ev *Event) (*pb.DecideConsultationResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, c, err := s.ownUndecided(ctx, ev, req.GetConsultationId())
	if err != nil {
		return nil, err
	}
	th, err := s.thread(ctx, ev, cur.Id)
	if err != nil {
		return nil, err
	}
	if th.State == pb.ConsultationState_CONSULTATION_STATE_OPEN {
		return nil, status.Errorf(codes.FailedPrecondition, "%s waits for %s's answer until %s: decide once it answered or the deadline passed", cur.Id, c.ConsultedAgency, c.Deadline)
	}
	next := proto.Clone(cur).(*pb.Record)
	nc := next.GetConsultation()
	nc.Decision, nc.DecisionReasons, nc.DecidedOn = req.GetDecision(), req.GetReasons(), dateOnly(day(s.now()))
	next.ChangeNote = fmt.Sprintf("decision: %s", req.GetDecision())
	if req.GetDecision() == pb.ConsultationDecision_CONSULTATION_DECISION_APPROVED {
		// The regimes require notifying an approval after consultation to
		// every partner that holds the denial.
		holders, err := s.holders.Holders(c.DenialId, c.DenialVersion)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "holders of %s: %v", c.DenialId, err)
		}
		for _, h := range holders {
			if h != s.agency && !slices.Contains(next.RelTo, h) {
				next.RelTo = append(next.RelTo, h)
			}
		}
	}
	idx, err := s.amend(ctx, ev, next, cur)
	if err != nil {
		return nil, err
	}
	return &pb.DecideConsultationResponse{Thread: s.threadAfter(ctx, cur.Id, next, idx)}, nil
}

// ownUndecided loads this agency's own consultation that is still undecided.
func (s *consultService) ownUndecided(ctx context.Context, ev *Event, id string) (*pb.Record, *pb.Consultation, error) {
	cur, err := s.current(ctx, ev, id, 0)
	if err != nil {
		return nil, nil, err
	}
	c := cur.GetConsultation()
	if c == nil {
		return nil, nil, status.Errorf(codes.FailedPrecondition, "%s is not a consultation this agency opened", id)
	}
	if c.Decision != pb.ConsultationDecision_CONSULTATION_DECISION_UNSPECIFIED {
		return nil, nil, status.Errorf(codes.FailedPrecondition, "%s is decided already: %s", id, c.Decision)
	}
	return cur, c, nil
}

func (s *consultService) GetConsultation(ctx context.Context, req *pb.GetConsultationRequest) (*pb.GetConsultationResponse, error) {
	return unary(ctx, s.audit, req, s.getConsultation)
}

func (s *consultService) getConsultation(ctx context.Context, req *pb.GetConsultationRequest, ev *Event) (*pb.GetConsultationResponse, error) {
	th, err := s.thread(ctx, ev, req.GetConsultationId())
	if err != nil {
		return nil, err
	}
	return &pb.GetConsultationResponse{Thread: th}, nil
}

func (s *consultService) ListConsultations(ctx context.Context, req *pb.ListConsultationsRequest) (*pb.ListConsultationsResponse, error) {
	return unary(ctx, s.audit, req, s.listConsultations)
}

func (s *consultService) listConsultations(ctx context.Context, req *pb.ListConsultationsRequest, ev *Event) (*pb.ListConsultationsResponse, error) {
	held, err := s.heldConsultations(ctx)
	if err != nil {
		return nil, err
	}
	var out []*pb.ConsultationThread
	for _, id := range held.threadIDs(s.agency) {
		th, err := s.threadOf(ctx, ev, id, held)
		if err != nil {
			return nil, err
		}
		if req.GetState() == pb.ConsultationState_CONSULTATION_STATE_UNSPECIFIED || th.State == req.GetState() {
			out = append(out, th)
		}
	}
	ev.Detail = fmt.Sprintf("%d threads", len(out))
	return &pb.ListConsultationsResponse{Threads: out}, nil
}

// amend stores next as the version after cur, validated.
func (w *writer) amend(ctx context.Context, ev *Event, next, cur *pb.Record) (uint64, error) {
	now := w.now().UTC()
	record.Normalize(next, now)
	if err := record.Validate(next); err != nil {
		return 0, status.Error(codes.InvalidArgument, err.Error())
	}
	return w.put(ctx, ev, next, cur, now)
}

// heldConsultations is what this node holds of consultation threads: its
// own consultation records and the consultation entries it received, each
// read once per call.
type heldConsultations struct {
	own      []*pb.Record
	received []*pb.SharedEntry
}

func (s *consultService) heldConsultations(ctx context.Context) (*heldConsultations, error) {
	own, _, err := s.records.List(ctx, store.ListOptions{Kind: pb.Kind_KIND_CONSULTATION, IncludeInactive: true})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "list consultations: %v", err)
	}
	received, _, err := s.shared.SharedList(ctx, store.SharedListOptions{IncludeInactive: true,
		Filter: func(e *pb.SharedEntry) bool { return e.GetRecord().GetKind() == pb.Kind_KIND_CONSULTATION }})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "list shared: %v", err)
	}
	return &heldConsultations{own: own, received: received}, nil
}

// threadIDs lists the threads agency takes part in: those it opened and
// those addressed to it, oldest first (ids are ULIDs).
func (h *heldConsultations) threadIDs(agency string) []string {
	var ids []string
	for _, r := range h.own {
		if r.GetConsultation() != nil {
			ids = append(ids, r.Id)
		}
	}
	for _, e := range h.received {
		if c := e.GetRecord().GetConsultation(); c != nil && c.ConsultedAgency == agency {
			ids = append(ids, e.Record.Id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return cmp.Compare(ulidOf(a), ulidOf(b)) })
	return ids
}

// answerID finds the denying agency's answer record of a thread: this
// agency's own if it was consulted, else the one it received.
func (h *heldConsultations) answerID(consultationID string, consulting bool) string {
	if consulting {
		for _, e := range h.received {
			if e.GetRecord().GetConsultationAnswer().GetConsultationId() == consultationID {
				return e.Record.Id
			}
		}
		return ""
	}
	for _, r := range h.own {
		if r.GetConsultationAnswer().GetConsultationId() == consultationID {
			return r.Id
		}
	}
	return ""
}

func ulidOf(id string) string {
	for i := len(id) - 1; i >= 0; i-- {
		if id[i] == '/' {
			return id[i+1:]
		}
	}
	return id
}

// threadAfter is the thread after a step this call wrote (written) at log
// index idx, saying if it was not shared in time. The step is stored; only
// reading the thread back failed if th is bare.
func (s *consultService) threadAfter(ctx context.Context, id string, written *pb.Record, idx uint64) *pb.ConsultationThread {
	// The write's audit event is already written: a throwaway one here.
	th, err := s.thread(ctx, &Event{AuditEvent: &pb.AuditEvent{}}, id)
	if err != nil {
		th = &pb.ConsultationThread{}
	}
	th.LogIndex, th.NotShared = idx, s.notShared(written, idx)
	return th
}

// thread assembles both sides of a consultation as this agency holds them.
func (s *consultService) thread(ctx context.Context, ev *Event, id string) (*pb.ConsultationThread, error) {
	held, err := s.heldConsultations(ctx)
	if err != nil {
		return nil, err
	}
	return s.threadOf(ctx, ev, id, held)
}

func (s *consultService) threadOf(ctx context.Context, ev *Event, id string, held *heldConsultations) (*pb.ConsultationThread, error) {
	ev.Target = id
	origin, err := record.ParseID(id)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "consultation_id: %v", err)
	}
	th := &pb.ConsultationThread{Consulting: origin == s.agency}
	var consultation []*pb.Record
	if th.Consulting {
		consultation, err = s.records.History(ctx, id)
	} else {
		consultation, err = s.sharedVersions(ctx, id)
	}
	if err != nil || len(consultation) == 0 || consultation[0].GetConsultation() == nil {
		return nil, status.Errorf(codes.NotFound, "consultation %s: not found", id)
	}
	c := consultation[len(consultation)-1]
	if !th.Consulting && c.GetConsultation().ConsultedAgency != s.agency {
		// A partner notified of an approval holds the decision, not the thread.
		return nil, status.Errorf(codes.NotFound, "consultation %s: not a thread of this agency", id)
	}
	th.Consultation = c
	for _, r := range consultation {
		th.Steps = append(th.Steps, &pb.ThreadStep{Agency: r.Origin, Record: r})
	}
	var answers []*pb.Record
	switch aid := held.answerID(id, th.Consulting); {
	case aid == "":
	case th.Consulting:
		answers, err = s.sharedVersions(ctx, aid)
	default:
		answers, err = s.records.History(ctx, aid)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "answer to %s: %v", id, err)
	}
	for _, r := range answers {
		th.Steps = append(th.Steps, &pb.ThreadStep{Agency: r.Origin, Record: r})
	}
	if len(answers) > 0 {
		th.Answer = answers[len(answers)-1]
	}
	slices.SortStableFunc(th.Steps, func(a, b *pb.ThreadStep) int {
		return a.Record.UpdatedAt.AsTime().Compare(b.Record.UpdatedAt.AsTime())
	})
	th.State = consultationState(c.GetConsultation(), th.Answer != nil, day(s.now()))
	return th, nil
}

func consultationState(c *pb.Consultation, answered bool, today time.Time) pb.ConsultationState {
	switch {
	case c.Decision != pb.ConsultationDecision_CONSULTATION_DECISION_UNSPECIFIED:
		return pb.ConsultationState_CONSULTATION_STATE_DECIDED
	case answered:
		return pb.ConsultationState_CONSULTATION_STATE_ANSWERED
	case dateOnly(today) > c.Deadline:
		return pb.ConsultationState_CONSULTATION_STATE_OVERDUE
	}
	return pb.ConsultationState_CONSULTATION_STATE_OPEN
}

func (s *consultService) sharedVersions(ctx context.Context, id string) ([]*pb.Record, error) {
	es, err := s.shared.SharedHistory(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make([]*pb.Record, len(es))
	for i, e := range es {
		out[i] = e.Record
	}
	return out, nil
}
