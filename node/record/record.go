// Package record holds the rules of a record: defaults, validation of every
// field, ids, and control-list entries.
package record

import (
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/safetext"
)

// Limits on a record's size: large enough for any real listing, small enough
// that a bad or hostile client cannot bloat every partner's store.
const (
	MaxNameRunes   = 300
	MaxAliases     = 200
	MaxListItems   = 50 // identifiers, dates, countries, addresses, measures, parties
	MaxTextBytes   = 8 << 10
	MaxShortBytes  = 256
	MaxRecordBytes = 256 << 10
	ReviewPeriod   = 3 // years until a denial is reviewed, by default
)

// ValidateAgencyID checks an agency id such as DE-BAFA, US-BIS or UN (the
// rule is replication/safetext's, shared with the replicated state machine).
func ValidateAgencyID(s string) error { return safetext.ValidateAgencyID(s) }

var (
	entropyMu sync.Mutex
	entropy   = ulid.Monotonic(rand.Reader, 0)
)

// NewID returns AGENCY/ULID: sortable by creation time, unique without coordination.
func NewID(agency string, now time.Time) string {
	entropyMu.Lock()
	defer entropyMu.Unlock()
	return agency + "/" + ulid.MustNew(ulid.Timestamp(now), entropy).String()
}

// ParseID splits a record id, AGENCY/ULID, and returns its agency.
func ParseID(id string) (string, error) { return safetext.ParseID(id) }

// Normalize trims text, upper-cases codes and fills defaults, in place.
func Normalize(r *pb.Record, now time.Time) {
	today := now.UTC().Format(time.DateOnly)
	normalizeNewlines(r.ProtoReflect())
	r.RelTo = upperAll(r.RelTo)
	r.ChangeNote = strings.TrimSpace(r.ChangeNote)
	if s := r.Subject; s != nil {
		s.Name = strings.TrimSpace(s.Name)
		for _, a := range s.Aliases {
			a.Name = strings.TrimSpace(a.Name)
			a.Script = strings.TrimSpace(a.Script)
			if a.Strength == pb.NameStrength_NAME_STRENGTH_UNSPECIFIED {
				a.Strength = pb.NameStrength_NAME_STRENGTH_STRONG
			}
		}
		for _, id := range s.Identifiers {
			id.Value = strings.TrimSpace(id.Value)
			id.Country = strings.ToUpper(strings.TrimSpace(id.Country))
		}
		s.BirthDates = trimAll(s.BirthDates)
		s.Nationalities = upperAll(s.Nationalities)
		s.Countries = upperAll(s.Countries)
		for _, a := range s.Addresses {
			a.Street, a.City, a.Region, a.PostalCode = strings.TrimSpace(a.Street), strings.TrimSpace(a.City), strings.TrimSpace(a.Region), strings.TrimSpace(a.PostalCode)
			a.Country = strings.ToUpper(strings.TrimSpace(a.Country))
		}
	}
	switch d := r.Detail.(type) {
	case *pb.Record_Designation:
		r.Kind = pb.Kind_KIND_DESIGNATION
		x := d.Designation
		x.Program = strings.TrimSpace(x.Program)
		x.LegalBasis = strings.TrimSpace(x.LegalBasis)
		x.Measures = trimAll(x.Measures)
		x.ListedOn, x.ReviewBy, x.DelistedOn = strings.TrimSpace(x.ListedOn), strings.TrimSpace(x.ReviewBy), strings.TrimSpace(x.DelistedOn)
		x.Statement = strings.TrimSpace(x.Statement)
		x.DelistingReason = strings.TrimSpace(x.DelistingReason)
		if x.Status == pb.DesignationStatus_DESIGNATION_STATUS_UNSPECIFIED {
			x.Status = pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE
		}
		if x.ListedOn == "" {
			x.ListedOn = today
		}
	case *pb.Record_Denial:
		r.Kind = pb.Kind_KIND_DENIAL
		x := d.Denial
		x.ControlListEntry = strings.TrimSpace(x.ControlListEntry)
		if c, err := ParseControlListEntry(x.ControlListEntry); err == nil {
			x.ControlListEntry = c.String()
		}
		x.Item, x.EndUse, x.Reason, x.Regime = strings.TrimSpace(x.Item), strings.TrimSpace(x.EndUse), strings.TrimSpace(x.Reason), strings.TrimSpace(x.Regime)
		x.Destination = strings.ToUpper(strings.TrimSpace(x.Destination))
		x.StatusReason = strings.TrimSpace(x.StatusReason)
		for _, p := range x.Parties {
			p.Name, p.Address = strings.TrimSpace(p.Name), strings.TrimSpace(p.Address)
			p.Country = strings.ToUpper(strings.TrimSpace(p.Country))
		}
		if x.Status == pb.DenialStatus_DENIAL_STATUS_UNSPECIFIED {
			x.Status = pb.DenialStatus_DENIAL_STATUS_DENIED
		}
		x.DeniedOn = strings.TrimSpace(x.DeniedOn)
		if x.DeniedOn == "" {
			x.DeniedOn = today
		}
		x.ReviewBy, x.ExpiresOn = strings.TrimSpace(x.ReviewBy), strings.TrimSpace(x.ExpiresOn)
		// The review duty is the agency's, for its own denials; an order
		// imported from a published list keeps its publisher's dates.
		if d, err := time.Parse(time.DateOnly, x.DeniedOn); err == nil && x.ReviewBy == "" && r.SourceRef == "" {
			x.ReviewBy = d.AddDate(ReviewPeriod, 0, 0).Format(time.DateOnly)
		}
	case *pb.Record_Consultation:
		r.Kind = pb.Kind_KIND_CONSULTATION
		x := d.Consultation
		x.Application, x.Item, x.EndUse = strings.TrimSpace(x.Application), strings.TrimSpace(x.Item), strings.TrimSpace(x.EndUse)
		x.Question, x.DecisionReasons = strings.TrimSpace(x.Question), strings.TrimSpace(x.DecisionReasons)
		x.Destination = strings.ToUpper(strings.TrimSpace(x.Destination))
		if c, err := ParseControlListEntry(strings.TrimSpace(x.ControlListEntry)); err == nil {
			x.ControlListEntry = c.String()
		}
	case *pb.Record_ConsultationAnswer:
		r.Kind = pb.Kind_KIND_CONSULTATION
		d.ConsultationAnswer.Text = strings.TrimSpace(d.ConsultationAnswer.Text)
	}
}

func trimAll(ss []string) []string {
	for i, s := range ss {
		ss[i] = strings.TrimSpace(s)
	}
	return ss
}

func upperAll(ss []string) []string {
	for i, s := range ss {
		ss[i] = strings.ToUpper(strings.TrimSpace(s))
	}
	return ss
}

// FieldError names one bad field by its proto path, e.g. subject.aliases[2].name.
type FieldError struct{ Field, Reason string }

// ValidationError lists every bad field of a record.
type ValidationError struct{ Fields []FieldError }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Reason
	}
	return "invalid record: " + strings.Join(parts, "; ")
}

type checker struct{ errs []FieldError }

func (c *checker) add(field, format string, args ...any) {
	c.errs = append(c.errs, FieldError{field, fmt.Sprintf(format, args...)})
}

// Validate checks every field of a record's content (not the identity the
// node assigns) and returns a *ValidationError naming all bad fields.
func Validate(r *pb.Record) error {
	c := &checker{}
	if size := proto.Size(r); size > MaxRecordBytes {
		c.add("record", "%d KiB exceeds the %d KiB limit", size>>10, MaxRecordBytes>>10)
	}
	if _, ok := pb.Marking_name[int32(r.Marking)]; !ok || r.Marking == pb.Marking_MARKING_UNSPECIFIED {
		c.add("marking", "must be one of CLEAR, GREEN, AMBER, AMBER+STRICT, RED")
	}
	for i, a := range r.RelTo {
		if err := ValidateAgencyID(a); err != nil {
			c.add(fmt.Sprintf("rel_to[%d]", i), "%v", err)
		}
	}
	// Every string field, named or not below, must be safe to print.
	c.printable(r.ProtoReflect(), make([]pathElem, 0, 8))
	c.text("change_note", r.ChangeNote, MaxTextBytes)
	c.text("source_ref", r.SourceRef, MaxShortBytes)
	c.subject(r.Subject)
	switch d := r.Detail.(type) {
	case *pb.Record_Designation:
		c.designation(d.Designation)
	case *pb.Record_Denial:
		c.denial(d.Denial, r.SourceRef)
	case *pb.Record_Consultation:
		c.consultation(d.Consultation)
	case *pb.Record_ConsultationAnswer:
		c.consultationAnswer(d.ConsultationAnswer)
	default:
		c.add("detail", "one of designation or denial must be set")
	}
	if len(c.errs) > 0 {
		return &ValidationError{Fields: c.errs}
	}
	return nil
}

func (c *checker) subject(s *pb.Subject) {
	if s == nil {
		c.add("subject", "must be set")
		return
	}
	if _, ok := pb.Schema_name[int32(s.Schema)]; !ok || s.Schema == pb.Schema_SCHEMA_UNSPECIFIED {
		c.add("subject.schema", "must be person, organization, vessel or aircraft")
	}
	c.name("subject.name", s.Name)
	if len(s.Aliases) > MaxAliases {
		c.add("subject.aliases", "%d aliases exceed the limit of %d", len(s.Aliases), MaxAliases)
	}
	for i, a := range s.Aliases {
		f := fmt.Sprintf("subject.aliases[%d]", i)
		c.name(f+".name", a.Name)
		if _, ok := pb.NameStrength_name[int32(a.Strength)]; !ok {
			c.add(f+".strength", "must be strong or weak")
		}
		if a.Script != "" && !isScriptCode(a.Script) {
			c.add(f+".script", "%q is not an ISO 15924 code like Cyrl or Arab", a.Script)
		}
	}
	c.count("subject.identifiers", len(s.Identifiers))
	for i, id := range s.Identifiers {
		c.identifier(fmt.Sprintf("subject.identifiers[%d]", i), id)
	}
	c.count("subject.birth_dates", len(s.BirthDates))
	for i, d := range s.BirthDates {
		if err := checkPartialDate(d); err != nil {
			c.add(fmt.Sprintf("subject.birth_dates[%d]", i), "%v", err)
		}
	}
	c.countries("subject.nationalities", s.Nationalities)
	c.countries("subject.countries", s.Countries)
	c.count("subject.addresses", len(s.Addresses))
	for i, a := range s.Addresses {
		f := fmt.Sprintf("subject.addresses[%d]", i)
		c.text(f+".street", a.Street, MaxShortBytes)
		c.text(f+".city", a.City, MaxShortBytes)
		c.text(f+".region", a.Region, MaxShortBytes)
		c.text(f+".postal_code", a.PostalCode, 32)
		if a.Country != "" && !IsCountry(a.Country) {
			c.add(f+".country", "%q is not an ISO 3166 country code", a.Country)
		}
		if a.Street == "" && a.City == "" && a.Region == "" && a.PostalCode == "" && a.Country == "" {
			c.add(f, "is empty")
		}
	}
}

func (c *checker) designation(d *pb.Designation) {
	if d == nil {
		c.add("designation", "must be set")
		return
	}
	if d.Program == "" {
		c.add("designation.program", "must not be empty")
	}
	c.text("designation.program", d.Program, MaxShortBytes)
	c.text("designation.legal_basis", d.LegalBasis, MaxTextBytes)
	c.text("designation.statement", d.Statement, MaxTextBytes)
	c.count("designation.measures", len(d.Measures))
	for i, m := range d.Measures {
		if m == "" {
			c.add(fmt.Sprintf("designation.measures[%d]", i), "must not be empty")
		}
		c.text(fmt.Sprintf("designation.measures[%d]", i), m, MaxShortBytes)
	}
	listed := c.date("designation.listed_on", d.ListedOn, true)
	review := c.date("designation.review_by", d.ReviewBy, false)
	if !listed.IsZero() && !review.IsZero() && !review.After(listed) {
		c.add("designation.review_by", "%s is not after listed_on %s", d.ReviewBy, d.ListedOn)
	}
	switch d.Status {
	case pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE:
		if d.DelistedOn != "" || d.DelistingReason != "" {
			c.add("designation.delisted_on", "must be empty while the designation is active")
		}
	case pb.DesignationStatus_DESIGNATION_STATUS_DELISTED:
		delisted := c.date("designation.delisted_on", d.DelistedOn, true)
		if !delisted.IsZero() && !listed.IsZero() && delisted.Before(listed) {
			c.add("designation.delisted_on", "%s is before listed_on %s", d.DelistedOn, d.ListedOn)
		}
		if d.DelistingReason == "" {
			c.add("designation.delisting_reason", "must be given when delisted")
		}
		c.text("designation.delisting_reason", d.DelistingReason, MaxTextBytes)
	default:
		c.add("designation.status", "must be active or delisted")
	}
}

// imported is the source_ref of a record imported from a published list.
func (c *checker) denial(d *pb.Denial, imported string) {
	if d == nil {
		c.add("denial", "must be set")
		return
	}
	if _, err := ParseControlListEntry(d.ControlListEntry); err != nil {
		c.add("denial.control_list_entry", "%v", err)
	}
	if d.Item == "" {
		c.add("denial.item", "must not be empty")
	}
	c.text("denial.item", d.Item, MaxTextBytes)
	c.text("denial.end_use", d.EndUse, MaxTextBytes)
	c.text("denial.reason", d.Reason, MaxShortBytes)
	c.text("denial.regime", d.Regime, MaxShortBytes)
	c.text("denial.status_reason", d.StatusReason, MaxTextBytes)
	if !IsCountry(d.Destination) {
		c.add("denial.destination", "%q is not an ISO 3166 country code", d.Destination)
	}
	if len(d.Parties) == 0 {
		c.add("denial.parties", "at least one denied party is needed")
	}
	c.count("denial.parties", len(d.Parties))
	for i, p := range d.Parties {
		f := fmt.Sprintf("denial.parties[%d]", i)
		c.name(f+".name", p.Name)
		if _, ok := pb.PartyRole_name[int32(p.Role)]; !ok || p.Role == pb.PartyRole_PARTY_ROLE_UNSPECIFIED {
			c.add(f+".role", "must be consignee, end_user, purchaser or intermediary")
		}
		if p.Country != "" && !IsCountry(p.Country) {
			c.add(f+".country", "%q is not an ISO 3166 country code", p.Country)
		}
		c.text(f+".address", p.Address, MaxShortBytes*2)
	}
	if _, ok := pb.DenialStatus_name[int32(d.Status)]; !ok || d.Status == pb.DenialStatus_DENIAL_STATUS_UNSPECIFIED {
		c.add("denial.status", "must be denied, annulled, suspended, limited or revoked")
	}
	denied := c.date("denial.denied_on", d.DeniedOn, true)
	review := c.date("denial.review_by", d.ReviewBy, imported == "")
	if !denied.IsZero() && !review.IsZero() && review.Before(denied) {
		c.add("denial.review_by", "%s is before denied_on %s", d.ReviewBy, d.DeniedOn)
	}
	expires := c.date("denial.expires_on", d.ExpiresOn, false)
	if !denied.IsZero() && !expires.IsZero() && expires.Before(denied) {
		c.add("denial.expires_on", "%s is before denied_on %s", d.ExpiresOn, d.DeniedOn)
	}
}

func (c *checker) consultation(x *pb.Consultation) {
	if _, err := ParseID(x.DenialId); err != nil {
		c.add("consultation.denial_id", "%v", err)
	}
	if x.DenialVersion == 0 {
		c.add("consultation.denial_version", "must be set")
	}
	if err := ValidateAgencyID(x.ConsultedAgency); err != nil {
		c.add("consultation.consulted_agency", "%v", err)
	}
	if x.Application == "" {
		c.add("consultation.application", "must name this agency's application")
	}
	c.text("consultation.application", x.Application, MaxShortBytes)
	if _, err := ParseControlListEntry(x.ControlListEntry); err != nil {
		c.add("consultation.control_list_entry", "%v", err)
	}
	c.text("consultation.item", x.Item, MaxTextBytes)
	if !IsCountry(x.Destination) {
		c.add("consultation.destination", "%q is not an ISO 3166 country code", x.Destination)
	}
	c.text("consultation.end_use", x.EndUse, MaxTextBytes)
	c.text("consultation.question", x.Question, MaxTextBytes)
	opened := c.date("consultation.opened_on", x.OpenedOn, true)
	deadline := c.date("consultation.deadline", x.Deadline, true)
	if !opened.IsZero() && !deadline.IsZero() && !deadline.After(opened) {
		c.add("consultation.deadline", "%s is not after opened_on %s", x.Deadline, x.OpenedOn)
	}
	switch x.Decision {
	case pb.ConsultationDecision_CONSULTATION_DECISION_UNSPECIFIED:
		if x.DecidedOn != "" || x.DecisionReasons != "" {
			c.add("consultation.decision", "decided_on and decision_reasons need a decision")
		}
	case pb.ConsultationDecision_CONSULTATION_DECISION_APPROVED, pb.ConsultationDecision_CONSULTATION_DECISION_REFUSED:
		if x.DecisionReasons == "" {
			c.add("consultation.decision_reasons", "must be given with a decision: an approval is notified to partners with its reasons")
		}
		c.date("consultation.decided_on", x.DecidedOn, true)
	default:
		c.add("consultation.decision", "must be approved or refused")
	}
	c.text("consultation.decision_reasons", x.DecisionReasons, MaxTextBytes)
}

func (c *checker) consultationAnswer(x *pb.ConsultationAnswer) {
	if _, err := ParseID(x.ConsultationId); err != nil {
		c.add("consultation_answer.consultation_id", "%v", err)
	}
	if _, ok := pb.ConsultationAnswerKind_name[int32(x.Answer)]; !ok || x.Answer == pb.ConsultationAnswerKind_CONSULTATION_ANSWER_KIND_UNSPECIFIED {
		c.add("consultation_answer.answer", "must be uphold, withdraw or more-information")
	}
	if x.Text == "" {
		c.add("consultation_answer.text", "must not be empty")
	}
	c.text("consultation_answer.text", x.Text, MaxTextBytes)
	c.date("consultation_answer.answered_on", x.AnsweredOn, true)
}

func (c *checker) identifier(f string, id *pb.Identifier) {
	if _, ok := pb.IdentifierType_name[int32(id.Type)]; !ok || id.Type == pb.IdentifierType_IDENTIFIER_TYPE_UNSPECIFIED {
		c.add(f+".type", "must be passport, national_id, tax_id, registration_number, lei, imo, call_sign or other")
	}
	switch {
	case id.Value == "":
		c.add(f+".value", "must not be empty")
	case len(id.Value) > 64:
		c.add(f+".value", "longer than 64 characters")
	case id.Type == pb.IdentifierType_IDENTIFIER_TYPE_IMO && !ValidIMO(id.Value):
		c.add(f+".value", "%q is not an IMO number (7 digits with a valid check digit)", id.Value)
	case id.Type == pb.IdentifierType_IDENTIFIER_TYPE_LEI && !ValidLEI(id.Value):
		c.add(f+".value", "%q is not an LEI (20 characters, ISO 17442 check digits)", id.Value)
	}
	if id.Country != "" && !IsCountry(id.Country) {
		c.add(f+".country", "%q is not an ISO 3166 country code", id.Country)
	}
}

func (c *checker) name(f, s string) {
	switch {
	case s == "":
		c.add(f, "must not be empty")
	case utf8.RuneCountInString(s) > MaxNameRunes:
		c.add(f, "longer than %d characters", MaxNameRunes)
	}
}

// text checks a text field's size; what it may contain is printable's rule.
func (c *checker) text(f, s string, max int) {
	if len(s) > max {
		c.add(f, "%d bytes exceed the limit of %d", len(s), max)
	}
}

func (c *checker) count(f string, n int) {
	if n > MaxListItems {
		c.add(f, "%d items exceed the limit of %d", n, MaxListItems)
	}
}

func (c *checker) countries(f string, cs []string) {
	c.count(f, len(cs))
	for i, cc := range cs {
		if !IsCountry(cc) {
			c.add(fmt.Sprintf("%s[%d]", f, i), "%q is not an ISO 3166 country code", cc)
		}
	}
}

// date checks an ISO calendar date; it returns the zero time if absent or bad.
func (c *checker) date(f, s string, required bool) time.Time {
	if s == "" {
		if required {
			c.add(f, "must be set (YYYY-MM-DD)")
		}
		return time.Time{}
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		c.add(f, "%q is not a date YYYY-MM-DD", s)
		return time.Time{}
	}
	if t.Year() < 1900 || t.Year() > 2200 {
		c.add(f, "%q is out of range", s)
	}
	return t
}

// checkPartialDate accepts YYYY, YYYY-MM or YYYY-MM-DD, real dates only.
func checkPartialDate(s string) error {
	var layout string
	switch len(s) {
	case 4:
		layout = "2006"
	case 7:
		layout = "2006-01"
	case 10:
		layout = time.DateOnly
	default:
		return fmt.Errorf("%q is not YYYY, YYYY-MM or YYYY-MM-DD", s)
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return fmt.Errorf("%q is not a real date (YYYY, YYYY-MM or YYYY-MM-DD)", s)
	}
	if t.Year() < 1800 || t.Year() > time.Now().Year()+1 {
		return fmt.Errorf("%q: year out of range 1800..%d", s, time.Now().Year()+1)
	}
	return nil
}

func isScriptCode(s string) bool {
	if len(s) != 4 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, r := range s[1:] {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return true
}

// ValidIMO checks an IMO ship number: 7 digits (optionally prefixed "IMO"),
// the last being the sum of the first six weighted 7..2, modulo 10.
func ValidIMO(s string) bool {
	s = strings.TrimSpace(strings.TrimPrefix(strings.ToUpper(s), "IMO"))
	if len(s) != 7 {
		return false
	}
	sum := 0
	for i := 0; i < 7; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		if i < 6 {
			sum += int(s[i]-'0') * (7 - i)
		}
	}
	return sum%10 == int(s[6]-'0')
}

// ValidLEI checks a Legal Entity Identifier: 18 alphanumerics and two check
// digits, valid under ISO 7064 mod 97-10.
func ValidLEI(s string) bool {
	s = strings.ToUpper(s)
	if len(s) != 20 {
		return false
	}
	rem := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			rem = (rem*10 + int(r-'0')) % 97
		case r >= 'A' && r <= 'Z':
			rem = (rem*100 + int(r-'A'+10)) % 97
		default:
			return false
		}
	}
	return rem == 1
}
