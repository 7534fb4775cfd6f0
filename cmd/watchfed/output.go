package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/policy"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// writeJSON prints one JSON value: a proto message, a slice of them, or
// anything encoding/json takes. Scripts get exactly one value on stdout.
func writeJSON(w io.Writer, v any) error {
	var raw json.RawMessage
	switch m := v.(type) {
	case proto.Message:
		raw = protoJSON(m)
	default:
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		raw = b
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, string(escapeJSON(buf.Bytes())))
	return err
}

// Whatever the CLI prints may come from a partner's node or an old store, so
// it is made safe for a terminal here, in the one place output is formatted:
// a character record.Unprintable refuses (control characters, bidi
// controls) is printed as an escape, never raw. Tables and "field: value"
// lines escape tab and line feed too, as they would break the layout.

// cell escapes s for one table cell or one line: every unprintable
// character, tab and line feed included, and invalid UTF-8 bytes.
func cell(s string) string { return escapeText(s, false) }

// escapeText escapes what a terminal would act on; keepLines leaves tab and
// line feed as they are, for text printed as a block.
func escapeText(s string, keepLines bool) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || record.Unprintable(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				fmt.Fprintf(&b, `\x%02x`, s[i])
				continue
			}
			b.WriteRune(r)
		case keepLines && (r == '\t' || r == '\n'):
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80 && record.Unprintable(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case record.Unprintable(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// escapeJSON escapes in JSON text the characters encoding/json and
// protojson leave raw (DEL, C1 controls, bidi controls, U+2028/U+2029): they
// can only occur inside strings, where \uXXXX means the same character.
func escapeJSON(b []byte) []byte {
	if !bytes.ContainsFunc(b, func(r rune) bool { return r == 0x2028 || r == 0x2029 || record.Unprintable(r) }) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == 0x2028 || r == 0x2029 || (record.Unprintable(r) && r != '\n' && r != '\t') {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out
}

// protoList renders messages as a JSON array.
func protoList[M proto.Message](ms []M) json.RawMessage {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = string(protoJSON(m))
	}
	return json.RawMessage("[" + strings.Join(parts, ",") + "]")
}

// protoJSON renders a message for scripts: every field present, zero values
// too (a lag of 0 is "lag": 0, not a missing key), names as in the .proto
// (snake_case), 64-bit integers as numbers (protojson quotes them), enums by
// name, timestamps in RFC 3339, fields in .proto order.
func protoJSON(m proto.Message) json.RawMessage {
	var b bytes.Buffer
	writeMessage(&b, m.ProtoReflect())
	return b.Bytes()
}

func writeMessage(b *bytes.Buffer, m protoreflect.Message) {
	if ts, ok := m.Interface().(*timestamppb.Timestamp); ok {
		writeString(b, ts.AsTime().UTC().Format(time.RFC3339Nano))
		return
	}
	b.WriteByte('{')
	fields := m.Descriptor().Fields()
	first := true
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.ContainingOneof() != nil && !m.Has(fd) {
			continue // only the member of a oneof that is set
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeString(b, string(fd.Name()))
		b.WriteByte(':')
		switch {
		case fd.IsList():
			l := m.Get(fd).List()
			b.WriteByte('[')
			for j := range l.Len() {
				if j > 0 {
					b.WriteByte(',')
				}
				writeValue(b, fd, l.Get(j))
			}
			b.WriteByte(']')
		case fd.IsMap():
			b.WriteByte('{')
			n := 0
			m.Get(fd).Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
				if n > 0 {
					b.WriteByte(',')
				}
				n++
				writeString(b, k.String())
				b.WriteByte(':')
				writeValue(b, fd.MapValue(), v)
				return true
			})
			b.WriteByte('}')
		case fd.Message() != nil && !m.Has(fd):
			b.WriteString("null")
		default:
			writeValue(b, fd, m.Get(fd))
		}
	}
	b.WriteByte('}')
}

func writeValue(b *bytes.Buffer, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		writeMessage(b, v.Message())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			writeString(b, string(ev.Name()))
		} else {
			fmt.Fprint(b, v.Enum())
		}
	case protoreflect.StringKind:
		writeString(b, v.String())
	case protoreflect.BytesKind:
		writeString(b, base64.StdEncoding.EncodeToString(v.Bytes()))
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f, _ := json.Marshal(v.Float()) // NaN and Inf do not occur in these messages
		b.Write(f)
	default: // bool and every integer kind
		fmt.Fprint(b, v.Interface())
	}
}

func writeString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s)
	b.Write(escapeJSON(q))
}

// table prints rows under a header, aligned; every cell is escaped.
func table(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, joinCells(r))
	}
	return tw.Flush()
}

// joinCells escapes cells and joins them with tabs, for a tabwriter.
func joinCells(cols []string) string {
	esc := make([]string, len(cols))
	for i, c := range cols {
		esc[i] = cell(c)
	}
	return strings.Join(esc, "\t")
}

// fieldLine prints "key:<tab>value" for a tabwriter; a multi-line value
// continues on lines of its own under the first, each escaped.
func fieldLine(w io.Writer, k, v string) {
	if v == "" {
		return
	}
	for i, l := range strings.Split(v, "\n") {
		if i == 0 {
			fmt.Fprintf(w, "%s:\t%s\n", k, cell(l))
		} else {
			fmt.Fprintf(w, "\t%s\n", cell(l))
		}
	}
}

func fmtTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

// enumName drops the enum's type prefix: DESIGNATION_STATUS_ACTIVE → active.
func enumName(full, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(full, prefix))
}

func recordStatus(r *pb.Record) string {
	switch {
	case r.GetDesignation() != nil:
		return enumName(r.GetDesignation().Status.String(), "DESIGNATION_STATUS_")
	case r.GetDenial() != nil:
		return enumName(r.GetDenial().Status.String(), "DENIAL_STATUS_")
	}
	return ""
}

func recordRows(recs []*pb.Record) [][]string {
	rows := make([][]string, len(recs))
	for i, r := range recs {
		rows[i] = []string{r.Id, enumName(r.Kind.String(), "KIND_"), fmt.Sprint(r.Version), r.GetSubject().GetName(),
			recordStatus(r), policy.MarkingName(r.Marking), fmtTime(r.UpdatedAt)}
	}
	return rows
}

const recordHeader = "ID\tKIND\tVERSION\tNAME\tSTATUS\tMARKING\tUPDATED"

// writeRecord shows one record as "field: value" lines for people.
// writeRecord prints a record as "key: value" lines; extra are more
// key, value pairs printed after them in the same columns.
func writeRecord(w io.Writer, r *pb.Record, extra ...string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, v string) { fieldLine(tw, k, v) }
	s := r.GetSubject()
	line("id", r.Id)
	line("version", fmt.Sprint(r.Version))
	line("kind", enumName(r.Kind.String(), "KIND_"))
	line("origin", r.Origin)
	line("marking", policy.MarkingName(r.Marking))
	line("rel_to", strings.Join(r.RelTo, ", "))
	line("schema", enumName(s.GetSchema().String(), "SCHEMA_"))
	line("name", s.GetName())
	for _, a := range s.GetAliases() {
		line("alias", fmt.Sprintf("%s (%s)", a.Name, enumName(a.Strength.String(), "NAME_STRENGTH_")))
	}
	for _, id := range s.GetIdentifiers() {
		line("identifier", fmt.Sprintf("%s %s %s", enumName(id.Type.String(), "IDENTIFIER_TYPE_"), id.Value, id.Country))
	}
	line("birth_dates", strings.Join(s.GetBirthDates(), ", "))
	line("nationalities", strings.Join(s.GetNationalities(), ", "))
	line("countries", strings.Join(s.GetCountries(), ", "))
	for _, a := range s.GetAddresses() {
		line("address", strings.Join(nonEmpty(a.Street, a.City, a.Region, a.PostalCode, a.Country), ", "))
	}
	if d := r.GetDesignation(); d != nil {
		line("status", recordStatus(r))
		line("program", d.Program)
		line("legal_basis", d.LegalBasis)
		line("measures", strings.Join(d.Measures, ", "))
		line("listed_on", d.ListedOn)
		line("review_by", d.ReviewBy)
		line("statement", d.Statement)
		line("delisted_on", d.DelistedOn)
		line("delisting_reason", d.DelistingReason)
	}
	if d := r.GetDenial(); d != nil {
		line("status", recordStatus(r))
		line("status_reason", d.StatusReason)
		line("control_list_entry", d.ControlListEntry)
		line("item", d.Item)
		line("destination", denialDestination(d))
		line("end_use", d.EndUse)
		line("reason", d.Reason)
		line("regime", d.Regime)
		for _, p := range d.Parties {
			line("party", strings.Join(nonEmpty(fmt.Sprintf("%s: %s %s", enumName(p.Role.String(), "PARTY_ROLE_"), p.Name, p.Country), p.Address), ", "))
		}
		line("denied_on", d.DeniedOn)
		line("review_by", d.ReviewBy)
		line("expires_on", d.ExpiresOn)
	}
	line("created_at", fmtTime(r.CreatedAt))
	line("updated_at", fmtTime(r.UpdatedAt))
	line("updated_by", r.UpdatedBy)
	line("change_note", r.ChangeNote)
	line("source_ref", r.SourceRef)
	for i := 0; i+1 < len(extra); i += 2 {
		line(extra[i], extra[i+1])
	}
	return tw.Flush()
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// inForceUntil says until when a denial is in force, for tables: an
// imported order until its own expiry or without end, the agency's own
// denial until its review date.
func inForceUntil(d *pb.Denial) string {
	var parts []string
	if d.GetExpiresOn() != "" {
		parts = append(parts, d.GetExpiresOn()+" (expiry)")
	}
	if d.GetReviewBy() != "" {
		parts = append(parts, d.GetReviewBy()+" (review)")
	}
	if len(parts) == 0 {
		return "no end date"
	}
	return strings.Join(parts, ", ")
}

// denialDestination is where a denial binds: its destination, or any for
// an order denying the party's export privileges.
func denialDestination(d *pb.Denial) string {
	if d.GetAnyDestination() {
		return "any (export privileges denied; the party's first address: " + d.GetDestination() + ")"
	}
	return d.GetDestination()
}

// denialDest is denialDestination for a table column.
func denialDest(d *pb.Denial) string {
	if d.GetAnyDestination() {
		return "any"
	}
	return d.GetDestination()
}
