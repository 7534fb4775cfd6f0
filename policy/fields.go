package policy

import (
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// field is a part of a record a policy may redact, named as in the YAML
// `redact:` list, with where it lives in the protobuf record.
type field struct {
	name  string
	kinds []pb.Kind // the kinds of record that have it
	path  []protoreflect.Name
}

var (
	both        = []pb.Kind{pb.Kind_KIND_DESIGNATION, pb.Kind_KIND_DENIAL}
	designation = []pb.Kind{pb.Kind_KIND_DESIGNATION}
	denial      = []pb.Kind{pb.Kind_KIND_DENIAL}
)

// redactable lists every field a policy can remove. What identifies an
// entry (id, kind, origin, name, programme, regime, control-list entry,
// destination, status and dates) cannot be redacted: a partner that should
// not learn those should not get the record at all.
var redactable = []field{
	{"aliases", both, []protoreflect.Name{"subject", "aliases"}},
	{"identifiers", both, []protoreflect.Name{"subject", "identifiers"}},
	{"birth_dates", both, []protoreflect.Name{"subject", "birth_dates"}},
	{"nationalities", both, []protoreflect.Name{"subject", "nationalities"}},
	{"countries", both, []protoreflect.Name{"subject", "countries"}},
	{"addresses", both, []protoreflect.Name{"subject", "addresses"}},
	{"legal_basis", designation, []protoreflect.Name{"designation", "legal_basis"}},
	{"measures", designation, []protoreflect.Name{"designation", "measures"}},
	{"statement", designation, []protoreflect.Name{"designation", "statement"}},
	{"delisting_reason", designation, []protoreflect.Name{"designation", "delisting_reason"}},
	{"item", denial, []protoreflect.Name{"denial", "item"}},
	{"end_use", denial, []protoreflect.Name{"denial", "end_use"}},
	{"reason", denial, []protoreflect.Name{"denial", "reason"}},
	{"parties", denial, []protoreflect.Name{"denial", "parties"}},
	{"status_reason", denial, []protoreflect.Name{"denial", "status_reason"}},
	{"change_note", both, []protoreflect.Name{"change_note"}},
	{"source_ref", both, []protoreflect.Name{"source_ref"}},
	{"updated_by", both, []protoreflect.Name{"updated_by"}},
}

// notRedactable explains why a field people may try to redact cannot be.
var notRedactable = map[string]string{
	"id": "identifies the entry", "version": "identifies the entry", "kind": "identifies the entry",
	"origin": "identifies the entry", "marking": "bounds the entry's spread; narrow it with `marking:` instead",
	"name":    "is what partners screen against; leave the partner or the kind out instead",
	"program": "identifies the entry; exclude the programme instead", "regime": "identifies the entry; exclude the regime instead",
	"control_list_entry": "is what partners screen applications against", "destination": "is what partners screen applications against; exclude the destination instead",
	"status": "delistings must reach every holder",
}

// RedactableFields are the names a `redact:` list accepts.
func RedactableFields() []string {
	out := make([]string, len(redactable))
	for i, f := range redactable {
		out[i] = f.name
	}
	return out
}

func lookupField(name string) (field, bool) {
	for _, f := range redactable {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

// fieldsOf are the redactable fields a kind of record has, a new slice.
func fieldsOf(k pb.Kind) []string { return slices.Clone(kindFields[k]) }

// kindFields are the redactable fields of each kind, listed once (only
// read): Decide walks them for every record and partner.
var kindFields = func() map[pb.Kind][]string {
	m := map[pb.Kind][]string{}
	for _, f := range redactable {
		for _, k := range f.kinds {
			m[k] = append(m[k], f.name)
		}
	}
	return m
}()

// Redact returns a copy of rec with the named fields removed from the
// protobuf message itself, so their bytes never reach the sealed body.
func Redact(rec *pb.Record, names []string) *pb.Record {
	out := proto.Clone(rec).(*pb.Record)
	for _, n := range names {
		f, ok := lookupField(n)
		if !ok {
			continue
		}
		clearPath(out.ProtoReflect(), f.path)
	}
	return out
}

func clearPath(m protoreflect.Message, path []protoreflect.Name) {
	fd := m.Descriptor().Fields().ByName(path[0])
	if fd == nil || !m.Has(fd) {
		return
	}
	if len(path) == 1 {
		m.Clear(fd)
		return
	}
	clearPath(m.Mutable(fd).Message(), path[1:])
}
