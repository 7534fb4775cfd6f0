package testnet

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// shiftedClock is the real time plus an offset the test moves forward:
// deadlines pass without waiting, and time still flows between writes.
type shiftedClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *shiftedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *shiftedClock) Skip(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// filesContain reports which of the needles appear in any file under dir.
func filesContain(t *testing.T, dir string, needles ...string) []string {
	t.Helper()
	found := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(data, []byte(n)) {
				found[n] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range needles {
		if found[n] {
			out = append(out, n)
		}
	}
	return out
}

// TestConsultationNoUndercut walks the no-undercut workflow across three
// agencies: DE denies an export and notifies; FR consults DE before deciding
// on an essentially identical application; DE answers; FR decides. NL holds
// the denial but can read neither the consultation nor the answer, down to
// the bytes of its data directory. A second consultation goes overdue by the
// clock and its approval is notified to NL, without the thread.
func TestConsultationNoUndercut(t *testing.T) {
	clock := &shiftedClock{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := StartLocal(ctx, t.TempDir(), 3, node.Options{PublishWait: 10 * time.Second, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	de, fr, nl := l.Nodes[0], l.Nodes[1], l.Nodes[2]

	den, err := pb.NewRecordServiceClient(conn(t, de)).CreateRecord(ctx, &pb.CreateRecordRequest{Record: &pb.Record{
		Marking: pb.Marking_MARKING_GREEN,
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: "Tech Trade LLC", Countries: []string{"IR"}},
		Detail: &pb.Record_Denial{Denial: &pb.Denial{
			ControlListEntry: "3A001.a.1", Item: "radiation-hardened FPGA", Destination: "IR", EndUse: "missile guidance",
			Reason: "WMD", Regime: "WASSENAAR",
			Parties: []*pb.Party{{Role: pb.PartyRole_PARTY_ROLE_CONSIGNEE, Name: "Tech Trade LLC", Country: "IR"}},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range []*LocalNode{fr, nl} {
		if _, err := pb.NewSharedServiceClient(conn(t, ln)).GetShared(ctx, &pb.GetSharedRequest{Id: den.Record.Id, MinIndex: den.LogIndex}); err != nil {
			t.Fatalf("%s did not receive DE's denial: %v", ln.Agency, err)
		}
	}

	// FR screens an application for the same item and destination with a
	// variant of the consignee's name, and finds DE's denial.
	app, err := pb.NewScreeningServiceClient(conn(t, fr)).ScreenApplication(ctx, &pb.ScreenApplicationRequest{
		Parties: []string{"Tech-Trade L.L.C."}, ControlListEntry: "3A001.a.1", Destination: "IR",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(app.Denials) != 1 || app.Denials[0].Result.Record.Id != den.Record.Id || app.Denials[0].Result.Origin != de.Agency {
		t.Fatalf("screen application at FR: want DE's denial, got %v", app.Denials)
	}

	const question, answer = "QUESTION-7f3a end user now certifies civil use", "ANSWER-9c1e diversion risk unchanged"
	frc, dec, nlc := pb.NewConsultationServiceClient(conn(t, fr)), pb.NewConsultationServiceClient(conn(t, de)), pb.NewConsultationServiceClient(conn(t, nl))
	opened, err := frc.OpenConsultation(ctx, &pb.OpenConsultationRequest{
		DenialId: den.Record.Id, Application: "FR-2026-0042", Party: "Tech-Trade L.L.C.", PartyCountry: "IR", Question: question,
	})
	if err != nil {
		t.Fatal(err)
	}
	id := opened.Thread.Consultation.Id
	c := opened.Thread.Consultation.GetConsultation()
	if opened.Thread.State != pb.ConsultationState_CONSULTATION_STATE_OPEN || c.ControlListEntry != "3A001.a.1" || c.Destination != "IR" || c.ConsultedAgency != de.Agency {
		t.Fatalf("opened: %v", opened.Thread)
	}
	// Ten working days: never fewer than fourteen calendar days.
	if o, d := mustDate(t, c.OpenedOn), mustDate(t, c.Deadline); d.Sub(o) < 14*24*time.Hour {
		t.Fatalf("deadline %s is less than ten working days after %s", c.Deadline, c.OpenedOn)
	}

	thread := func(cl pb.ConsultationServiceClient, id string) *pb.ConsultationThread {
		t.Helper()
		got, err := cl.GetConsultation(ctx, &pb.GetConsultationRequest{ConsultationId: id})
		if err != nil {
			t.Fatal(err)
		}
		return got.Thread
	}
	waitFor(t, "DE sees FR's consultation", func() bool {
		resp, err := dec.ListConsultations(ctx, &pb.ListConsultationsRequest{State: pb.ConsultationState_CONSULTATION_STATE_OPEN})
		return err == nil && len(resp.Threads) == 1 && resp.Threads[0].Consultation.Id == id && !resp.Threads[0].Consulting
	})
	if _, err := frc.DecideConsultation(ctx, &pb.DecideConsultationRequest{ConsultationId: id, Decision: pb.ConsultationDecision_CONSULTATION_DECISION_APPROVED, Reasons: "no answer yet"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("deciding before DE answered or the deadline passed: %v, want FailedPrecondition", err)
	}
	// DE's node restarts (it bootstrapped the federation, so leadership
	// moves): the consultation survives like every entry.
	if err := de.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := l.Restart(ctx, de); err != nil {
		t.Fatal(err)
	}
	dec = pb.NewConsultationServiceClient(conn(t, de))
	if th := thread(dec, id); th.State != pb.ConsultationState_CONSULTATION_STATE_OPEN {
		t.Fatalf("after DE's restart: %v", th)
	}
	if _, err := dec.AnswerConsultation(ctx, &pb.AnswerConsultationRequest{ConsultationId: id, Answer: pb.ConsultationAnswerKind_CONSULTATION_ANSWER_KIND_UPHOLD, Text: answer}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "FR sees DE's answer", func() bool {
		return thread(frc, id).State == pb.ConsultationState_CONSULTATION_STATE_ANSWERED
	})
	decided, err := frc.DecideConsultation(ctx, &pb.DecideConsultationRequest{ConsultationId: id, Decision: pb.ConsultationDecision_CONSULTATION_DECISION_REFUSED, Reasons: "DE upholds its denial"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "DE sees FR's decision", func() bool {
		return thread(dec, id).State == pb.ConsultationState_CONSULTATION_STATE_DECIDED
	})
	for _, side := range []*pb.ConsultationThread{thread(frc, id), thread(dec, id)} {
		if len(side.Steps) != 3 || side.Steps[0].Agency != fr.Agency || side.Steps[1].Agency != de.Agency || side.Steps[2].Agency != fr.Agency {
			t.Fatalf("thread steps: want FR opened, DE answered, FR decided; got %v", side.Steps)
		}
	}

	// A consultation names the party, but screening finds only listings.
	hits, err := pb.NewScreeningServiceClient(conn(t, fr)).Screen(ctx, &pb.ScreenRequest{Name: "Tech-Trade L.L.C."})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hits.Results {
		if h.Record.Kind == pb.Kind_KIND_CONSULTATION {
			t.Fatalf("screening returns a consultation: %v", h.Record.Id)
		}
	}

	// NL has taken in the log past the decision, and holds nothing of the thread.
	if _, err := pb.NewSharedServiceClient(conn(t, nl)).ListShared(ctx, &pb.ListSharedRequest{MinIndex: decided.Thread.LogIndex}); err != nil {
		t.Fatal(err)
	}
	if resp, err := nlc.ListConsultations(ctx, &pb.ListConsultationsRequest{}); err != nil || len(resp.Threads) != 0 {
		t.Fatalf("NL lists consultations: %v %v", resp, err)
	}
	if _, err := nlc.GetConsultation(ctx, &pb.GetConsultationRequest{ConsultationId: id}); status.Code(err) != codes.NotFound {
		t.Fatalf("NL reads the consultation: %v", err)
	}
	if got := filesContain(t, fr.Dir, question, answer); len(got) != 2 {
		t.Fatalf("control: FR's own data holds the thread in its store, found only %v", got)
	}
	if got := filesContain(t, nl.Dir, question, answer, "Tech-Trade L.L.C."); len(got) > 0 {
		t.Fatalf("NL's data directory holds %v", got)
	}

	// Every step is in both agencies' audit logs.
	for _, tc := range []struct {
		ln   *LocalNode
		want []string
	}{
		{fr, []string{"ConsultationService.OpenConsultation", "consultation.received", "ConsultationService.DecideConsultation"}},
		{de, []string{"consultation.received", "ConsultationService.AnswerConsultation", "consultation.received"}},
	} {
		resp, err := pb.NewAuditServiceClient(conn(t, tc.ln)).ListAuditEvents(ctx, &pb.ListAuditEventsRequest{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range resp.Events {
			if ev.Outcome == "ok" && (ev.Action == "consultation.received" || strings.HasPrefix(ev.Action, "ConsultationService.") && !strings.Contains(ev.Action, "List") && !strings.Contains(ev.Action, "Get")) {
				got = append(got, ev.Action)
			}
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Fatalf("%s audit log: consultation steps %v, want %v", tc.ln.Agency, got, tc.want)
		}
	}

	// A second consultation goes unanswered past its deadline: overdue on
	// both sides; then FR may decide, and an approval reaches NL, which
	// holds the denial, as a notice without the question.
	const question2 = "QUESTION-51d0 second application"
	second, err := frc.OpenConsultation(ctx, &pb.OpenConsultationRequest{DenialId: den.Record.Id, Application: "FR-2026-0077", Party: "Tech Trade", Question: question2})
	if err != nil {
		t.Fatal(err)
	}
	id2 := second.Thread.Consultation.Id
	waitFor(t, "DE sees the second consultation", func() bool {
		_, err := dec.GetConsultation(ctx, &pb.GetConsultationRequest{ConsultationId: id2})
		return err == nil
	})
	// A fourth agency joins now: DE's denial reaches it by a key grant, not
	// in the version's header, and it must hear of an approval all the same.
	late, err := l.Add(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, late.Agency+" holds DE's denial", func() bool {
		_, err := pb.NewSharedServiceClient(conn(t, late)).GetShared(ctx, &pb.GetSharedRequest{Id: den.Record.Id})
		return err == nil
	})
	clock.Skip(15 * 24 * time.Hour)
	for _, cl := range []pb.ConsultationServiceClient{frc, dec} {
		resp, err := cl.ListConsultations(ctx, &pb.ListConsultationsRequest{State: pb.ConsultationState_CONSULTATION_STATE_OVERDUE})
		if err != nil || len(resp.Threads) != 1 || resp.Threads[0].Consultation.Id != id2 {
			t.Fatalf("overdue consultations: %v %v", resp, err)
		}
	}
	approved, err := frc.DecideConsultation(ctx, &pb.DecideConsultationRequest{ConsultationId: id2, Decision: pb.ConsultationDecision_CONSULTATION_DECISION_APPROVED, Reasons: "REASONS-2c4e end-use check on site"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range []*LocalNode{nl, late} {
		notice, err := pb.NewSharedServiceClient(conn(t, ln)).GetShared(ctx, &pb.GetSharedRequest{Id: id2, MinIndex: approved.Thread.LogIndex})
		if err != nil {
			t.Fatalf("%s did not receive the approval notice: %v", ln.Agency, err)
		}
		if nc := notice.Entry.Record.GetConsultation(); nc.GetDecision() != pb.ConsultationDecision_CONSULTATION_DECISION_APPROVED || nc.DecisionReasons == "" || nc.Question != "" {
			t.Fatalf("approval notice at %s: %v", ln.Agency, notice.Entry.Record)
		}
		if got := filesContain(t, ln.Dir, question, answer, question2); len(got) > 0 {
			t.Fatalf("%s's data directory holds %v", ln.Agency, got)
		}
	}
}

func mustDate(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
