package record

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/safetext"
)

// Text that crosses agencies ends up on other agencies' terminals, so every
// string field of a record must be safe to print. Refused everywhere:
//
//   - C0 controls U+0000–U+001F, DEL U+007F and C1 controls U+0080–U+009F:
//     ESC, CSI and OSC start terminal escape sequences, CR and BS overwrite
//     what was printed; tab and line feed alone are allowed, and only in
//     the multi-line fields below;
//   - the bidirectional controls that reorder what follows them: the
//     embeddings and overrides U+202A–U+202E, the isolates U+2066–U+2069,
//     and the marks U+200E, U+200F and U+061C (no real name or statement
//     needs them, and they can make text read differently than it is).
//
// Joiners (U+200C, U+200D) stay allowed: Arabic, Persian and Indic names
// are spelled with them.
//
// multiLine lists the free-text fields, by full proto name, that may hold
// tabs and line feeds. Every other string field is one line.
var multiLine = map[protoreflect.FullName]bool{
	"watchfed.v1.Record.change_note":            true,
	"watchfed.v1.Designation.legal_basis":       true,
	"watchfed.v1.Designation.statement":         true,
	"watchfed.v1.Designation.delisting_reason":  true,
	"watchfed.v1.Denial.item":                   true,
	"watchfed.v1.Denial.end_use":                true,
	"watchfed.v1.Denial.status_reason":          true,
	"watchfed.v1.Consultation.item":             true,
	"watchfed.v1.Consultation.end_use":          true,
	"watchfed.v1.Consultation.question":         true,
	"watchfed.v1.Consultation.decision_reasons": true,
	"watchfed.v1.ConsultationAnswer.text":       true,
}

// runeNames names the refused characters people meet most.
var runeNames = map[rune]string{
	0x00: "null", 0x07: "bell", 0x08: "backspace", 0x09: "tab", 0x0A: "line feed",
	0x0B: "vertical tab", 0x0C: "form feed", 0x0D: "carriage return", 0x1B: "escape",
	0x7F: "delete", 0x85: "next line", 0x9B: "control sequence introducer", 0x9D: "operating system command",
	0x061C: "Arabic letter mark", 0x200E: "left-to-right mark", 0x200F: "right-to-left mark",
	0x202A: "left-to-right embedding", 0x202B: "right-to-left embedding", 0x202C: "pop directional formatting",
	0x202D: "left-to-right override", 0x202E: "right-to-left override",
	0x2066: "left-to-right isolate", 0x2067: "right-to-left isolate", 0x2068: "first strong isolate",
	0x2069: "pop directional isolate",
}

// Unprintable reports whether r is refused in text: a control character
// (tab and line feed included) or a bidirectional control.
func Unprintable(r rune) bool { return safetext.Unprintable(r) }

// DescribeRune names a character for an error message: U+202E (right-to-left override).
func DescribeRune(r rune) string {
	if name, ok := runeNames[r]; ok {
		return fmt.Sprintf("U+%04X (%s)", r, name)
	}
	if r < 0x20 || r >= 0x7F && r <= 0x9F {
		return fmt.Sprintf("U+%04X (control character)", r)
	}
	return fmt.Sprintf("U+%04X", r)
}

// checkLine says what is wrong with a string field's text, or "".
func checkLine(s string, multi bool) string {
	// Nearly all text is printable ASCII: checked a byte at a time, and
	// anything else goes through the full rule (so an error is the same).
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < 0x20 || b >= 0x7f) && !(multi && (b == '\t' || b == '\n')) {
			return checkRunes(s, multi)
		}
	}
	return ""
}

func checkRunes(s string, multi bool) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if multi && (r == '\t' || r == '\n') {
			continue
		}
		if Unprintable(r) {
			return "contains " + DescribeRune(r)
		}
	}
	return ""
}

// CheckText checks every string field of m, however deep, against the rule
// above and names each bad field by its path (subject.aliases[2].name). It
// is the rule for text a node writes, imports, and takes in from partners.
func CheckText(m proto.Message) error {
	c := &checker{}
	c.printable(m.ProtoReflect(), make([]pathElem, 0, 8))
	if len(c.errs) > 0 {
		return &ValidationError{Fields: c.errs}
	}
	return nil
}

// pathElem is one step of a field's path; the path is spelled out only for
// an error, so a clean record costs no strings.
type pathElem struct {
	name   protoreflect.Name
	index  int    // list index, or -1
	key    string // map key, if hasKey
	hasKey bool
}

func pathString(path []pathElem) string {
	var b strings.Builder
	for i, e := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(string(e.name))
		switch {
		case e.index >= 0:
			fmt.Fprintf(&b, "[%d]", e.index)
		case e.hasKey:
			fmt.Fprintf(&b, "[%q]", e.key)
		}
	}
	return b.String()
}

// printable walks every populated field of m that holds text, so no string
// field, present or added later, escapes the rule. The fields to visit
// come from m's plan: a string field, or a message field whose type holds
// text at some depth; the others (numbers, enums, timestamps) are skipped.
func (c *checker) printable(m protoreflect.Message, path []pathElem) {
	for _, f := range planOf(m.Descriptor()).text {
		fd := f.fd
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				c.printableValue(fd, l.Get(i), append(path, pathElem{name: fd.Name(), index: i}), f.multi)
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapKey().Kind() == protoreflect.StringKind {
					if why := checkLine(k.String(), false); why != "" {
						c.add(pathString(append(path, pathElem{name: fd.Name(), index: -1})), "key %s", why)
					}
				}
				c.printableValue(fd.MapValue(), mv, append(path, pathElem{name: fd.Name(), index: -1, key: k.String(), hasKey: true}), f.multi)
				return true
			})
		default:
			c.printableValue(fd, v, append(path, pathElem{name: fd.Name(), index: -1}), f.multi)
		}
	}
}

func (c *checker) printableValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, path []pathElem, multi bool) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if why := checkLine(v.String(), multi); why != "" {
			c.add(pathString(path), "%s", why)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		c.printable(v.Message(), path)
	}
}

// normalizeNewlines turns CRLF and lone CR into LF in the multi-line fields,
// so a statement written on Windows is not refused for its line ends. It
// visits the multi-line fields and the message fields that lead to one
// (a map's values are not normalized).
func normalizeNewlines(m protoreflect.Message) {
	for _, f := range planOf(m.Descriptor()).newlines {
		fd := f.fd
		if !m.Has(fd) {
			continue
		}
		switch {
		case fd.Kind() == protoreflect.StringKind:
			if s := m.Get(fd).String(); strings.ContainsRune(s, '\r') {
				m.Set(fd, protoreflect.ValueOfString(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")))
			}
		case fd.IsList():
			l := m.Get(fd).List()
			for i := range l.Len() {
				normalizeNewlines(l.Get(i).Message())
			}
		default:
			normalizeNewlines(m.Get(fd).Message())
		}
	}
}

// textPlan is what the text walks visit in one message type, worked out
// once per type from its descriptor: walking every field by reflection
// cost more than the checks themselves (a record is checked on its way in
// and on every partner that takes it in).
type textPlan struct {
	text     []planField // string fields, and message fields whose type holds text
	newlines []planField // multi-line string fields, and message fields (not maps) that lead to one
}

type planField struct {
	fd    protoreflect.FieldDescriptor
	multi bool
}

// plans holds the plan of every message type a record can hold, worked out
// at start and only read after; another message type's is worked out on
// each call.
var plans = func() map[protoreflect.MessageDescriptor]*textPlan {
	m := map[protoreflect.MessageDescriptor]*textPlan{}
	var add func(md protoreflect.MessageDescriptor)
	add = func(md protoreflect.MessageDescriptor) {
		if m[md] != nil {
			return
		}
		m[md] = makePlan(md)
		fields := md.Fields()
		for i := range fields.Len() {
			if fd := fields.Get(i); fd.Message() != nil {
				add(fd.Message())
			}
		}
	}
	add((&pb.Record{}).ProtoReflect().Descriptor())
	return m
}()

func planOf(md protoreflect.MessageDescriptor) *textPlan {
	if p := plans[md]; p != nil {
		return p
	}
	return makePlan(md)
}

func makePlan(md protoreflect.MessageDescriptor) *textPlan {
	p := &textPlan{}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if holdsText(fd, map[protoreflect.FullName]bool{}) {
			p.text = append(p.text, planField{fd, multiLine[fd.FullName()]})
		}
		if leadsToMultiLine(fd, map[protoreflect.FullName]bool{}) {
			p.newlines = append(p.newlines, planField{fd, multiLine[fd.FullName()]})
		}
	}
	return p
}

// holdsText reports whether printable can meet a string in field fd: a
// string field, or a message field (a map's entry included) whose type has
// such a field. A type met again below itself counts as holding text: a
// recursive type is walked, never skipped.
func holdsText(fd protoreflect.FieldDescriptor, path map[protoreflect.FullName]bool) bool {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return true
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return anyField(fd.Message(), path, holdsText)
	}
	return false
}

// leadsToMultiLine reports whether normalizeNewlines can meet a multi-line
// field in field fd: one itself, or a message field (not a map) whose type
// has one, as holdsText.
func leadsToMultiLine(fd protoreflect.FieldDescriptor, path map[protoreflect.FullName]bool) bool {
	switch {
	case fd.IsMap():
		return false
	case fd.Kind() == protoreflect.StringKind:
		return !fd.IsList() && multiLine[fd.FullName()]
	case fd.Kind() == protoreflect.MessageKind:
		return anyField(fd.Message(), path, leadsToMultiLine)
	}
	return false
}

func anyField(md protoreflect.MessageDescriptor, path map[protoreflect.FullName]bool, holds func(protoreflect.FieldDescriptor, map[protoreflect.FullName]bool) bool) bool {
	if path[md.FullName()] {
		return true
	}
	path[md.FullName()] = true
	defer delete(path, md.FullName())
	fields := md.Fields()
	for i := range fields.Len() {
		if holds(fields.Get(i), path) {
			return true
		}
	}
	return false
}
