package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func newConsultCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "consult",
		Short: "No-undercut consultations: ask the agency that denied an essentially identical transaction",
		Long: `Before approving an application that a partner denied in essence (same or parent
control-list entry, same destination, a matching party), consult the denying agency.
Each step is an entry sealed to the other agency alone; both see the whole thread.
The deadline is ten working days (Monday to Friday), extendable once to thirty.`,
		Example: `  watchfed screen application --party "Tech Trade" --item 3A001.a.1 --destination IR
  watchfed consult open --denial DE-BAFA/01J... --application FR-2026-0042 --party "Tech Trade LLC" \
      --question "The end user now certifies civil use; do you still object?"
  watchfed consult list --state open
  watchfed consult answer FR-SBDU/01J... --answer uphold --text "diversion risk unchanged"   # the denying agency
  watchfed consult decide FR-SBDU/01J... --refused --reasons "partner upholds its denial"`,
	}
	addClientFlags(cmd, &cf)
	cmd.AddCommand(consultOpenCmd(&cf), consultAnswerCmd(&cf), consultExtendCmd(&cf), consultDecideCmd(&cf), consultListCmd(&cf), consultShowCmd(&cf))
	return cmd
}

// consultCall runs one call and prints the thread it returns.
func (cf *clientFlags) consultCall(cmd *cobra.Command, call func(context.Context, pb.ConsultationServiceClient) (*pb.ConsultationThread, error)) error {
	return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
		th, err := call(ctx, pb.NewConsultationServiceClient(conn))
		if err != nil {
			return err
		}
		if cf.output == "json" {
			err = writeJSON(cmd.OutOrStdout(), th)
		} else {
			err = writeThread(cmd.OutOrStdout(), th)
		}
		if err == nil && th.NotShared {
			err = errNotShared{} // stored, not shared in time: exit 7 as other writes
		}
		return err
	})
}

func consultOpenCmd(cf *clientFlags) *cobra.Command {
	var req pb.OpenConsultationRequest
	cmd := &cobra.Command{
		Use:   "open",
		Short: "Open a consultation to the agency that issued a denial",
		Example: `  watchfed consult open --denial DE-BAFA/01J... --application FR-2026-0042 --party "Tech Trade LLC" \\
      --question "The end user now certifies civil use; do you still object?"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.DenialId == "" || req.Application == "" || req.Party == "" {
				return usagef("--denial, --application and --party are required")
			}
			return cf.consultCall(cmd, func(ctx context.Context, c pb.ConsultationServiceClient) (*pb.ConsultationThread, error) {
				resp, err := c.OpenConsultation(ctx, &req)
				return resp.GetThread(), err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.DenialId, "denial", "", "the partner's denial (id from shared list or screen application)")
	fl.StringVar(&req.Application, "application", "", "this agency's reference of the licence application")
	fl.StringVar(&req.Party, "party", "", "the application's consignee or end user")
	fl.StringVar(&req.PartyCountry, "party-country", "", "the party's country (ISO 3166 alpha-2)")
	fl.StringVar(&req.Item, "item", "", "item applied for (default: the denial's)")
	fl.StringVar(&req.ControlListEntry, "control-list-entry", "", "control-list entry (default: the denial's)")
	fl.StringVar(&req.Destination, "destination", "", "destination country (default: the denial's)")
	fl.StringVar(&req.EndUse, "end-use", "", "stated end use (default: the denial's)")
	fl.StringVar(&req.Question, "question", "", "what this agency tells and asks the denying agency")
	return cmd
}

func consultAnswerCmd(cf *clientFlags) *cobra.Command {
	var answer, text string
	cmd := &cobra.Command{
		Use:     "answer CONSULTATION_ID",
		Short:   "Answer a consultation addressed to this agency: uphold, withdraw or more-information",
		Example: `  watchfed consult answer FR-SBDU/01J... --answer uphold --text "diversion risk unchanged"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, ok := pb.ConsultationAnswerKind_value["CONSULTATION_ANSWER_KIND_"+strings.ToUpper(strings.ReplaceAll(answer, "-", "_"))]
			if !ok || v == 0 {
				return usagef("--answer: %q is not uphold, withdraw or more-information", answer)
			}
			return cf.consultCall(cmd, func(ctx context.Context, c pb.ConsultationServiceClient) (*pb.ConsultationThread, error) {
				resp, err := c.AnswerConsultation(ctx, &pb.AnswerConsultationRequest{ConsultationId: args[0], Answer: pb.ConsultationAnswerKind(v), Text: text})
				return resp.GetThread(), err
			})
		},
	}
	cmd.Flags().StringVar(&answer, "answer", "", "uphold, withdraw or more-information (required)")
	cmd.Flags().StringVar(&text, "text", "", "the answer's text (required)")
	return cmd
}

func consultExtendCmd(cf *clientFlags) *cobra.Command {
	var deadline, reason string
	cmd := &cobra.Command{
		Use:     "extend CONSULTATION_ID",
		Short:   "Extend the deadline once (at most thirty working days after opening)",
		Example: `  watchfed consult extend FR-SBDU/01J... --reason "waiting for the end-user certificate"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.consultCall(cmd, func(ctx context.Context, c pb.ConsultationServiceClient) (*pb.ConsultationThread, error) {
				resp, err := c.ExtendConsultation(ctx, &pb.ExtendConsultationRequest{ConsultationId: args[0], Deadline: deadline, Reason: reason})
				return resp.GetThread(), err
			})
		},
	}
	cmd.Flags().StringVar(&deadline, "deadline", "", "new deadline YYYY-MM-DD (default: thirty working days after opening)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	return cmd
}

func consultDecideCmd(cf *clientFlags) *cobra.Command {
	var approved, refused bool
	var reasons string
	cmd := &cobra.Command{
		Use:     "decide CONSULTATION_ID",
		Short:   "Record this agency's final decision: --approved (notified to every holder of the denial) or --refused",
		Example: `  watchfed consult decide FR-SBDU/01J... --refused --reasons "partner upholds its denial"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if approved == refused {
				return usagef("give exactly one of --approved and --refused")
			}
			d := pb.ConsultationDecision_CONSULTATION_DECISION_REFUSED
			if approved {
				d = pb.ConsultationDecision_CONSULTATION_DECISION_APPROVED
			}
			return cf.consultCall(cmd, func(ctx context.Context, c pb.ConsultationServiceClient) (*pb.ConsultationThread, error) {
				resp, err := c.DecideConsultation(ctx, &pb.DecideConsultationRequest{ConsultationId: args[0], Decision: d, Reasons: reasons})
				return resp.GetThread(), err
			})
		},
	}
	cmd.Flags().BoolVar(&approved, "approved", false, "the licence is granted")
	cmd.Flags().BoolVar(&refused, "refused", false, "the licence is refused")
	cmd.Flags().StringVar(&reasons, "reasons", "", "the decision's reasons (required; an approval is notified with them)")
	return cmd
}

func consultListCmd(cf *clientFlags) *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Consultations this agency opened or received, with their state: open, answered, overdue, decided",
		Example: `  watchfed consult list --state open
  watchfed consult list -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st pb.ConsultationState
			if state != "" {
				v, ok := pb.ConsultationState_value["CONSULTATION_STATE_"+strings.ToUpper(state)]
				if !ok || v == 0 {
					return usagef("--state: %q is not open, answered, overdue or decided", state)
				}
				st = pb.ConsultationState(v)
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				resp, err := pb.NewConsultationServiceClient(conn).ListConsultations(ctx, &pb.ListConsultationsRequest{State: st})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), protoList(resp.Threads))
				}
				rows := make([][]string, len(resp.Threads))
				for i, th := range resp.Threads {
					c := th.Consultation.GetConsultation()
					with := "from " + th.Consultation.Origin
					if th.Consulting {
						with = "to " + c.ConsultedAgency
					}
					rows[i] = []string{th.Consultation.Id, threadState(th), with, c.DenialId, c.Application, c.ControlListEntry, c.Destination, c.Deadline}
				}
				return table(cmd.OutOrStdout(), "ID\tSTATE\tWITH\tDENIAL\tAPPLICATION\tCONTROL_LIST_ENTRY\tDESTINATION\tDEADLINE", rows)
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only open, answered, overdue or decided threads")
	return cmd
}

func consultShowCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "show CONSULTATION_ID",
		Short:   "The whole thread: every step of both agencies, oldest first",
		Example: `  watchfed consult show FR-SBDU/01J...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.consultCall(cmd, func(ctx context.Context, c pb.ConsultationServiceClient) (*pb.ConsultationThread, error) {
				resp, err := c.GetConsultation(ctx, &pb.GetConsultationRequest{ConsultationId: args[0]})
				return resp.GetThread(), err
			})
		},
	}
}

func threadState(th *pb.ConsultationThread) string {
	s := enumName(th.State.String(), "CONSULTATION_STATE_")
	if th.State == pb.ConsultationState_CONSULTATION_STATE_DECIDED {
		s += " (" + enumName(th.Consultation.GetConsultation().Decision.String(), "CONSULTATION_DECISION_") + ")"
	}
	return s
}

// writeThread shows a thread for people: the consultation, then each step.
func writeThread(w io.Writer, th *pb.ConsultationThread) error {
	c := th.Consultation.GetConsultation()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, v string) { fieldLine(tw, k, v) }
	line("consultation", th.Consultation.Id)
	line("state", threadState(th))
	line("consulting", th.Consultation.Origin)
	line("consulted", c.ConsultedAgency)
	line("denial", fmt.Sprintf("%s (version %d)", c.DenialId, c.DenialVersion))
	line("application", c.Application)
	line("party", th.Consultation.GetSubject().GetName())
	line("transaction", strings.Join(nonEmpty(c.ControlListEntry, c.Item, "to "+c.Destination, c.EndUse), ", "))
	line("opened_on", c.OpenedOn)
	line("deadline", c.Deadline+map[bool]string{true: " (extended)"}[c.Extended])
	switch {
	case th.LogIndex > 0:
		line("log_index", fmt.Sprint(th.LogIndex))
	case th.NotShared:
		line("log_index", "- (not yet shared: no quorum within the node's publish wait; it publishes the step later)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	rows := make([][]string, len(th.Steps))
	for i, s := range th.Steps {
		rows[i] = []string{fmtTime(s.Record.UpdatedAt), s.Agency, s.Record.UpdatedBy, stepText(s.Record)}
	}
	return table(w, "WHEN\tAGENCY\tBY\tSTEP", rows)
}

func stepText(r *pb.Record) string {
	if a := r.GetConsultationAnswer(); a != nil {
		return fmt.Sprintf("%s: %s", enumName(a.Answer.String(), "CONSULTATION_ANSWER_KIND_"), a.Text)
	}
	c := r.GetConsultation()
	switch {
	case c.Decision != pb.ConsultationDecision_CONSULTATION_DECISION_UNSPECIFIED:
		return fmt.Sprintf("decided %s: %s", enumName(c.Decision.String(), "CONSULTATION_DECISION_"), c.DecisionReasons)
	case r.Version == 1:
		return "opened: " + c.Question
	}
	return r.ChangeNote
}
