package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/watchfed/watchfed/node/record"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// hostile is text a partner's node could send, whatever its own node checks.
const hostile = "A\x1b]8;;http://evil\x07B\x1b[2J\u009b31m\x7f\u202eC\u2066\r\x00\xff"

// terminalSafe reports the first character a terminal would act on.
func terminalSafe(s string, keepLines bool) (rune, bool) {
	for _, r := range s {
		if keepLines && (r == '\n' || r == '\t') {
			continue
		}
		if record.Unprintable(r) || r == 0x2028 || r == 0x2029 {
			return r, false
		}
	}
	return 0, true
}

func TestEscapeText(t *testing.T) {
	cases := []struct {
		in, cell, block string
	}{
		{"Ivan PETROV", "Ivan PETROV", "Ivan PETROV"},
		{"Иван Петров محمد", "Иван Петров محمد", "Иван Петров محمد"},
		{"a\x1b[31mb", `a\x1b[31mb`, `a\x1b[31mb`},
		{"abc\u202edef", `abc\u202edef`, `abc\u202edef`},
		{"x\u009by", `x\u009by`, `x\u009by`},
		{"del\x7f", `del\x7f`, `del\x7f`},
		{"one\ntwo\tthree\r", `one\ntwo\tthree\r`, "one\ntwo\tthree\\r"},
		{"bad\xffbyte", `bad\xffbyte`, `bad\xffbyte`},
		{"\u200e\u061c\u2069", `\u200e\u061c\u2069`, `\u200e\u061c\u2069`},
		{"keeps \ufffd", "keeps \ufffd", "keeps \ufffd"},
	}
	for _, tc := range cases {
		if got := cell(tc.in); got != tc.cell {
			t.Errorf("cell(%q) = %q, want %q", tc.in, got, tc.cell)
		}
		if got := escapeText(tc.in, true); got != tc.block {
			t.Errorf("escapeText(%q, true) = %q, want %q", tc.in, got, tc.block)
		}
	}
}

// TestOutputEscapes prints a record full of escape sequences and bidi
// controls in every format the CLI has: nothing reaches the terminal raw,
// and the JSON still decodes to the very same text.
func TestOutputEscapes(t *testing.T) {
	rec := &pb.Record{
		Id: "DE-BAFA/01JD5ZQ7R8X9Y0A1B2C3D4E5F6", Origin: "DE-BAFA", Version: 1,
		Subject: &pb.Subject{Name: hostile, Aliases: []*pb.Alias{{Name: hostile}}},
		Detail:  &pb.Record_Designation{Designation: &pb.Designation{Program: hostile, Statement: "line one\n" + hostile}},
	}
	for _, tc := range []struct {
		name  string
		print func(*bytes.Buffer) error
		lines bool // line feeds are the output's own
	}{
		{"table", func(b *bytes.Buffer) error { return table(b, recordHeader, recordRows([]*pb.Record{rec})) }, true},
		{"record", func(b *bytes.Buffer) error { return writeRecord(b, rec) }, true},
		{"json", func(b *bytes.Buffer) error { return writeJSON(b, rec) }, true},
		{"json list", func(b *bytes.Buffer) error { return writeJSON(b, protoList([]*pb.Record{rec, rec})) }, true},
		{"json map", func(b *bytes.Buffer) error { return writeJSON(b, map[string]string{"name": hostile}) }, true},
		{"rejects", func(b *bytes.Buffer) error {
			writeRejects(b, []importReject{{Line: 3, SourceRef: hostile, Reason: hostile}})
			return nil
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.print(&b); err != nil {
				t.Fatal(err)
			}
			if r, ok := terminalSafe(b.String(), tc.lines); !ok {
				t.Fatalf("%U printed raw:\n%q", r, b.String())
			}
			if strings.HasPrefix(tc.name, "json") {
				var v any
				if err := json.Unmarshal(b.Bytes(), &v); err != nil {
					t.Fatalf("not JSON: %v\n%s", err, b.String())
				}
				// Invalid UTF-8 becomes U+FFFD in JSON; everything else round-trips.
				want := strings.ToValidUTF8(hostile, "\ufffd")
				if !strings.Contains(flatten(v), want) {
					t.Fatalf("JSON lost the text: %s", b.String())
				}
			}
		})
	}
	// The statement's own line feed starts a continuation line.
	var b bytes.Buffer
	if err := writeRecord(&b, rec); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "statement:  line one\n            A\\x1b]8;;") {
		t.Fatalf("multi-line statement:\n%s", b.String())
	}
}

// flatten joins every string in a decoded JSON value.
func flatten(v any) string {
	switch x := v.(type) {
	case string:
		return x + "|"
	case []any:
		s := ""
		for _, e := range x {
			s += flatten(e)
		}
		return s
	case map[string]any:
		s := ""
		for _, e := range x {
			s += flatten(e)
		}
		return s
	}
	return ""
}

// TestDenialTerm: an imported order shows its own expiry or none, the
// agency's own denial its review date; get prints expires_on.
func TestDenialTerm(t *testing.T) {
	for _, tc := range []struct {
		d    *pb.Denial
		want string
	}{
		{&pb.Denial{ExpiresOn: "2031-04-01"}, "2031-04-01 (expiry)"},
		{&pb.Denial{}, "no end date"},
		{&pb.Denial{ReviewBy: "2027-05-01"}, "2027-05-01 (review)"},
		{&pb.Denial{ExpiresOn: "2031-04-01", ReviewBy: "2027-05-01"}, "2031-04-01 (expiry), 2027-05-01 (review)"},
	} {
		if got := inForceUntil(tc.d); got != tc.want {
			t.Errorf("inForceUntil(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	var b bytes.Buffer
	rec := &pb.Record{Id: "X/1", Kind: pb.Kind_KIND_DENIAL, Detail: &pb.Record_Denial{Denial: &pb.Denial{DeniedOn: "1981-06-01", ExpiresOn: "2031-04-01"}}}
	if err := writeRecord(&b, rec); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "expires_on:") || !strings.Contains(b.String(), "2031-04-01") {
		t.Errorf("record without expires_on:\n%s", b.String())
	}
}
