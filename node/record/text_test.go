package record

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func validConsultation() *pb.Record {
	return &pb.Record{
		Marking: pb.Marking_MARKING_AMBER,
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: "Tech Trade LLC"},
		Detail: &pb.Record_Consultation{Consultation: &pb.Consultation{
			DenialId: "DE-BAFA/01JD5ZQ7R8X9Y0A1B2C3D4E5F6", DenialVersion: 1, ConsultedAgency: "DE-BAFA",
			Application: "FR-2026-17", ControlListEntry: "3A001", Item: "FPGA", Destination: "IR",
			Question: "Same end user?", OpenedOn: "2026-01-05", Deadline: "2026-01-19",
		}},
	}
}

// TestTextRefused puts each refused character in a field of each kind and
// checks the record is refused with an error naming the field and the
// character; tab and line feed pass in multi-line fields only.
func TestTextRefused(t *testing.T) {
	cases := []struct {
		name   string
		base   func() *pb.Record
		mutate func(*pb.Record)
		want   string // "" means valid
	}{
		{"ESC in name", validDesignation, func(r *pb.Record) { r.Subject.Name = "Ivan \x1b[31mPETROV" },
			"subject.name: contains U+001B (escape)"},
		{"RLO in alias", validDesignation, func(r *pb.Record) {
			r.Subject.Aliases = append(r.Subject.Aliases, &pb.Alias{Name: "x"}, &pb.Alias{Name: "abc\u202edef"})
		}, "subject.aliases[2].name: contains U+202E (right-to-left override)"},
		{"OSC in program", validDesignation, func(r *pb.Record) { r.GetDesignation().Program = "EO\x1b]8;;http://x\x07" },
			"designation.program: contains U+001B (escape)"},
		{"C1 CSI in identifier", validDesignation, func(r *pb.Record) { r.Subject.Identifiers[0].Value = "75\u009b2J" },
			"subject.identifiers[0].value: contains U+009B (control sequence introducer)"},
		{"DEL in street", validDesignation, func(r *pb.Record) { r.Subject.Addresses = []*pb.Address{{Street: "Main\x7f St"}} },
			"subject.addresses[0].street: contains U+007F (delete)"},
		{"isolate in measure", validDesignation, func(r *pb.Record) { r.GetDesignation().Measures = []string{"asset freeze", "\u2067ban"} },
			"designation.measures[1]: contains U+2067 (right-to-left isolate)"},
		{"LRM in birth date", validDesignation, func(r *pb.Record) { r.Subject.BirthDates = []string{"\u200e1965"} },
			"subject.birth_dates[0]: contains U+200E (left-to-right mark)"},
		{"ALM in source_ref", validDesignation, func(r *pb.Record) { r.SourceRef = "un:\u061c1" },
			"source_ref: contains U+061C (Arabic letter mark)"},
		{"CR in statement", validDesignation, func(r *pb.Record) { r.GetDesignation().Statement = "listed\rhidden" },
			""}, // Normalize turns a lone CR into a line feed
		{"backspace in statement", validDesignation, func(r *pb.Record) { r.GetDesignation().Statement = "listed\bX" },
			"designation.statement: contains U+0008 (backspace)"},
		{"newline and tab in statement", validDesignation, func(r *pb.Record) {
			r.GetDesignation().Statement = "First paragraph.\n\n\tIndented second."
		}, ""},
		{"newline in name", validDesignation, func(r *pb.Record) { r.Subject.Name = "Ivan\nPETROV" },
			"subject.name: contains U+000A (line feed)"},
		{"tab in program", validDesignation, func(r *pb.Record) { r.GetDesignation().Program = "RUSSIA\tEO" },
			"designation.program: contains U+0009 (tab)"},
		{"delisting reason", validDesignation, func(r *pb.Record) {
			d := r.GetDesignation()
			d.Status, d.DelistedOn, d.DelistingReason = pb.DesignationStatus_DESIGNATION_STATUS_DELISTED, "2025-01-01", "court\u202e"
		}, "designation.delisting_reason: contains U+202E (right-to-left override)"},
		{"denial status reason", validDenial, func(r *pb.Record) { r.GetDenial().StatusReason = "\x1bc" },
			"denial.status_reason: contains U+001B (escape)"},
		{"denial party address", validDenial, func(r *pb.Record) { r.GetDenial().Parties[0].Address = "\u202dTehran" },
			"denial.parties[0].address: contains U+202D (left-to-right override)"},
		{"consultation question", validConsultation, func(r *pb.Record) { r.GetConsultation().Question = "ok?\x1b[2J" },
			"consultation.question: contains U+001B (escape)"},
		{"change note", validDenial, func(r *pb.Record) { r.ChangeNote = "bell\x07" }, "change_note: contains U+0007 (bell)"},
		{"joiners allowed", validDesignation, func(r *pb.Record) { r.Subject.Aliases[0].Name = "می\u200cخواهم" }, ""},
		{"Arabic and Hebrew allowed", validDesignation, func(r *pb.Record) { r.Subject.Name = "محمد שלום" }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.base()
			tc.mutate(r)
			Normalize(r, time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC))
			err := Validate(r)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			// The receiving side applies the same rule on its own.
			if err := CheckText(r); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckText: got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCheckTextEveryField sets ESC in every string field of a record, found
// by reflection, and checks each one is named: a field added to the proto
// later is covered without anyone listing it.
func TestCheckTextEveryField(t *testing.T) {
	for _, base := range []func() *pb.Record{validDesignation, validDenial, validConsultation} {
		r := base()
		r.Subject.Addresses = []*pb.Address{{}}
		var paths []string
		var poison func(m protoreflect.Message, prefix string)
		poison = func(m protoreflect.Message, prefix string) {
			fields := m.Descriptor().Fields()
			for i := range fields.Len() {
				fd := fields.Get(i)
				if fd.ContainingOneof() != nil && !m.Has(fd) {
					continue
				}
				p := prefix + string(fd.Name())
				switch {
				case fd.Kind() == protoreflect.StringKind && fd.IsList():
					m.Mutable(fd).List().Append(protoreflect.ValueOfString("x\x1b"))
					paths = append(paths, p+"["+strconv.Itoa(m.Get(fd).List().Len()-1)+"]")
				case fd.Kind() == protoreflect.StringKind:
					m.Set(fd, protoreflect.ValueOfString("x\x1b"))
					paths = append(paths, p)
				case fd.Kind() == protoreflect.MessageKind && fd.IsList():
					l := m.Get(fd).List()
					for j := range l.Len() {
						poison(l.Get(j).Message(), p+"["+strconv.Itoa(j)+"].")
					}
				case fd.Kind() == protoreflect.MessageKind && !fd.IsMap() && m.Has(fd):
					poison(m.Mutable(fd).Message(), p+".")
				}
			}
		}
		poison(r.ProtoReflect(), "")
		err := CheckText(r)
		if err == nil {
			t.Fatal("poisoned record accepted")
		}
		for _, p := range paths {
			if !strings.Contains(err.Error(), p+": contains U+001B (escape)") {
				t.Errorf("%s not named: %v", p, err)
			}
		}
		if err := Validate(r); err == nil || !strings.Contains(err.Error(), "subject.name: contains U+001B") {
			t.Errorf("Validate: %v", err)
		}
	}
}

// TestNormalizeEveryMultiLineField puts CRLF and a lone CR in every
// multi-line field a record can hold, found by reflection, and checks
// Normalize turns each into line feeds: the walk skips what cannot lead to
// one, and must skip nothing that can.
func TestNormalizeEveryMultiLineField(t *testing.T) {
	answer := &pb.Record{Marking: pb.Marking_MARKING_AMBER, Subject: &pb.Subject{Name: "x"},
		Detail: &pb.Record_ConsultationAnswer{ConsultationAnswer: &pb.ConsultationAnswer{}}}
	for _, base := range []func() *pb.Record{validDesignation, validDenial, validConsultation, func() *pb.Record { return answer }} {
		r := base()
		var fields []protoreflect.FieldDescriptor
		var owners []protoreflect.Message
		var poison func(m protoreflect.Message)
		poison = func(m protoreflect.Message) {
			fds := m.Descriptor().Fields()
			for i := range fds.Len() {
				fd := fds.Get(i)
				switch {
				case fd.Kind() == protoreflect.StringKind && !fd.IsList() && multiLine[fd.FullName()]:
					m.Set(fd, protoreflect.ValueOfString("a\r\nb\rc"))
					fields, owners = append(fields, fd), append(owners, m)
				case fd.Kind() == protoreflect.MessageKind && fd.IsList():
					l := m.Get(fd).List()
					for j := range l.Len() {
						poison(l.Get(j).Message())
					}
				case fd.Kind() == protoreflect.MessageKind && !fd.IsMap() && m.Has(fd):
					poison(m.Mutable(fd).Message())
				}
			}
		}
		poison(r.ProtoReflect())
		if len(fields) == 0 {
			t.Fatal("no multi-line field poisoned")
		}
		Normalize(r, time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC))
		for i, fd := range fields {
			if got := owners[i].Get(fd).String(); got != "a\nb\nc" {
				t.Errorf("%s: %q after Normalize", fd.FullName(), got)
			}
		}
	}
}

// TestMultiLineFieldsExist keeps the list of multi-line fields in step with
// the proto: a renamed field would silently become single-line otherwise.
func TestMultiLineFieldsExist(t *testing.T) {
	for name := range multiLine {
		msg, field := name.Parent(), name.Name()
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(msg)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		md, ok := d.(protoreflect.MessageDescriptor)
		if !ok || md.Fields().ByName(field) == nil || md.Fields().ByName(field).Kind() != protoreflect.StringKind {
			t.Errorf("%s is not a string field", name)
		}
	}
}

func TestUnprintable(t *testing.T) {
	for r := rune(0); r < 0x3000; r++ {
		want := r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x61c || r == 0x200e || r == 0x200f ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
		if Unprintable(r) != want {
			t.Errorf("Unprintable(%U) = %v", r, !want)
		}
	}
}

// BenchmarkValidate measures a typical designation's validation, the text
// walk over every field included (go test ./node/record -bench Validate).
func BenchmarkValidate(b *testing.B) {
	r := validDesignation()
	r.GetDesignation().Statement = strings.Repeat("Listed for providing support to the armed forces. ", 20)
	Normalize(r, time.Now())
	b.Run("Validate", func(b *testing.B) {
		for b.Loop() {
			if err := Validate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Normalize", func(b *testing.B) {
		for b.Loop() {
			Normalize(r, time.Now())
		}
	})
	b.Run("CheckText", func(b *testing.B) {
		for b.Loop() {
			if err := CheckText(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
