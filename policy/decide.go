package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Decision is what the policy says about one record version and one partner.
type Decision struct {
	Partner string `json:"partner"`
	Share   bool   `json:"share"`
	// Marking is the marking the partner's copy carries: never wider than the record's.
	Marking           pb.Marking `json:"-"`
	OriginatorControl bool       `json:"originator_control"`
	Kept              []string   `json:"kept"`     // redactable fields the partner gets
	Redacted          []string   `json:"redacted"` // fields removed before sealing
	Reasons           []string   `json:"reasons"`
}

// Key says which decisions give the same body: partners with equal keys
// can share one sealed body.
func (d Decision) Key() string {
	return strconv.Itoa(int(d.Marking)) + "|" + strconv.FormatBool(d.OriginatorControl) + "|" + strings.Join(d.Redacted, ",")
}

// Body is the record as this decision lets the partner see it: redacted
// fields removed, marking narrowed, originator control added if asked.
func (d Decision) Body(rec *pb.Record) *pb.Record {
	out := Redact(rec, d.Redacted)
	out.Marking = d.Marking
	out.OriginatorControl = d.OriginatorControl
	return out
}

// Plaintext is the marshalled body (deterministic, so equal decisions give
// equal bytes). A decision that changes nothing in the record marshals the
// record itself: the copy Body makes would be the same bytes.
func (d Decision) Plaintext(rec *pb.Record) ([]byte, error) {
	body := rec
	if len(d.Redacted) > 0 || d.Marking != rec.GetMarking() || d.OriginatorControl != rec.GetOriginatorControl() {
		body = d.Body(rec)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(body)
}

// effective treats an unset marking as the narrowest: when in doubt, don't share.
func effective(m pb.Marking) pb.Marking {
	if m == pb.Marking_MARKING_UNSPECIFIED {
		return pb.Marking_MARKING_RED
	}
	return m
}

// Decide evaluates the policy for a record version and a partner.
func (p *Policy) Decide(rec *pb.Record, partner string) Decision {
	d := Decision{Partner: partner, Marking: effective(rec.GetMarking()), OriginatorControl: rec.GetOriginatorControl()}
	deny := func(format string, args ...any) Decision {
		d.Share = false
		d.Reasons = append(d.Reasons, fmt.Sprintf(format, args...))
		d.Kept, d.Redacted = nil, nil
		return d
	}
	switch {
	case partner == p.Agency:
		return deny("%s is this agency itself", partner)
	case rec.GetLocal():
		return deny("record is local-only")
	case rec.GetOrigin() != p.Agency:
		return deny("third-party rule: %s originated this record; only the originator shares it", rec.GetOrigin())
	case rec.GetKind() == pb.Kind_KIND_CONSULTATION:
		return deny("a consultation goes to the agencies it is released to (rel_to), never by policy")
	}
	pt := p.Partners[partner]
	if pt == nil {
		return deny("default deny: the policy has no block for %s", partner)
	}
	kind := rec.GetKind()
	if !slices.Contains(pt.Kinds, kind) {
		return deny("kind %s is not in kinds of %s (line %d)", KindName(kind), partner, pt.Line)
	}
	// The reasons of a shared record are built on every publication: joined
	// rather than formatted.
	d.Reasons = append(d.Reasons, "kind "+KindName(kind)+" is in kinds of "+partner+" (line "+strconv.Itoa(pt.Line)+")")
	if d.Marking > pt.MaxMarking {
		return deny("marking %s is above max_marking %s", MarkingName(d.Marking), MarkingName(pt.MaxMarking))
	}
	d.Reasons = append(d.Reasons, "marking "+MarkingName(d.Marking)+" is within max_marking "+MarkingName(pt.MaxMarking))
	if rel := rec.GetRelTo(); len(rel) > 0 {
		if !slices.Contains(rel, partner) {
			return deny("releasable only to %s", strings.Join(rel, ", "))
		}
		d.Reasons = append(d.Reasons, "releasable to "+strings.Join(rel, ", "))
	}
	switch x := rec.GetDetail().(type) {
	case *pb.Record_Designation:
		if r, ok := pt.selects("programme", x.Designation.GetProgram(), &pt.Programs, &pt.ExcludePrograms); !ok {
			return deny("%s", r)
		} else if r != "" {
			d.Reasons = append(d.Reasons, r)
		}
	case *pb.Record_Denial:
		if r, ok := pt.selects("regime", x.Denial.GetRegime(), &pt.Regimes, &pt.ExcludeRegimes); !ok {
			return deny("%s", r)
		} else if r != "" {
			d.Reasons = append(d.Reasons, r)
		}
		sel := pt.selects
		if x.Denial.GetAnyDestination() {
			sel = pt.selectsEvery
		}
		if r, ok := sel("destination", x.Denial.GetDestination(), &pt.Destinations, &pt.ExcludeDestinations); !ok {
			return deny("%s", r)
		} else if r != "" {
			d.Reasons = append(d.Reasons, r)
		}
	}
	d.Share = true
	if n := Narrower(d.Marking, pt.Marking); n != d.Marking {
		d.Reasons = append(d.Reasons, "marking narrowed from "+MarkingName(d.Marking)+" to "+MarkingName(n))
		d.Marking = n
	}
	if pt.OriginatorControl && !d.OriginatorControl {
		d.OriginatorControl = true
		d.Reasons = append(d.Reasons, "originator control added")
	}
	for _, f := range kindFields[kind] {
		if slices.Contains(pt.Redact, f) {
			d.Redacted = append(d.Redacted, f)
		} else {
			d.Kept = append(d.Kept, f)
		}
	}
	if len(d.Redacted) > 0 {
		d.Reasons = append(d.Reasons, "redacted: "+strings.Join(d.Redacted, ", "))
	}
	return d
}

// selects applies an include list (empty or "*": all) and an exclude list.
func (pt *Partner) selects(what, v string, include, exclude *[]string) (string, bool) {
	if pt.in(exclude, v) {
		return fmt.Sprintf("%s %s is excluded", what, v), false
	}
	if len(*include) == 0 || pt.in(include, "*") {
		return "", true
	}
	if !pt.in(include, v) {
		return fmt.Sprintf("%s %q is not among %s", what, v, shortList(*include)), false
	}
	return fmt.Sprintf("%s %s is included", what, v), true
}

// selectsEvery is selects for an order that binds every destination (a BIS
// Denied Persons order): it is for each destination a list names, so any
// exclusion keeps it back (never shared wider than the policy says), and
// any inclusion takes it.
func (pt *Partner) selectsEvery(what, _ string, include, exclude *[]string) (string, bool) {
	if len(*exclude) > 0 {
		return fmt.Sprintf("the order binds any %s, %s among them, and that is excluded", what, shortList(*exclude)), false
	}
	if len(*include) == 0 || pt.in(include, "*") {
		return "", true
	}
	return fmt.Sprintf("the order binds any %s, %s among them, and that is included", what, shortList(*include)), true
}

// shortList joins a list for a reason, naming at most ten of its items.
func shortList(l []string) string {
	const most = 10
	if len(l) <= most {
		return strings.Join(l, ", ")
	}
	return fmt.Sprintf("%s, ... (%d in all)", strings.Join(l[:most], ", "), len(l))
}

// Trusts reports whether entries of a kind from a partner enter screening
// and consumers' feeds. It never affects what is replicated or stored.
func (p *Policy) Trusts(partner string, kind pb.Kind) bool {
	if p == nil {
		return true
	}
	kinds, named := p.Receive.Partners[partner]
	if !named {
		return p.Receive.Trust
	}
	return slices.Contains(kinds, kind)
}

// ConsumerMayGet applies the third-party rule on the receiving side: RED,
// AMBER+STRICT and originator-controlled entries stay with the receiving
// agency's analysts and never reach consumers (feeds, exports, downstream
// systems).
func ConsumerMayGet(rec *pb.Record) bool {
	return effective(rec.GetMarking()) <= pb.Marking_MARKING_AMBER && !rec.GetOriginatorControl()
}

// Withdrawal is the decision for a partner that holds an earlier version of
// a record the policy no longer shares with it, when the record is delisted
// or its denial ends: the partner learns that the entry it holds is no longer
// in force, and nothing else (every redactable field is removed).
func Withdrawal(rec *pb.Record, partner string) Decision {
	d := Decision{Partner: partner, Share: true, Marking: effective(rec.GetMarking()), OriginatorControl: rec.GetOriginatorControl()}
	d.Redacted = fieldsOf(rec.GetKind())
	d.Reasons = []string{fmt.Sprintf("%s holds an earlier version: the end of the listing reaches every holder, with every redactable field removed", partner)}
	return d
}
