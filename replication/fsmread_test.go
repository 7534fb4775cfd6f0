package replication

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
)

// TestDecodeBodyAsTheCommand: the command decodeCommand gives is the one
// proto.Unmarshal gives, and the origin and body found in a stored command without
// decoding the command is the body the decoded command holds, for every
// encoding a command can have in the log; what publicationBody does not
// expect falls back to decoding the command.
func TestDecodeBodyAsTheCommand(t *testing.T) {
	body, err := proto.Marshal(&peerpb.PublicationBody{Origin: "DE-BAFA", Envelopes: []*peerpb.Envelope{{
		Header: &peerpb.EnvelopeHeader{EntryId: "e1", Version: 2, Origin: "DE-BAFA", Recipients: []string{"FR-SBDU"}},
		Bodies: []*peerpb.Body{{Recipients: []string{"FR-SBDU"}, Ciphertext: []byte("sealed")}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	cmd := func(p *peerpb.Publication) []byte {
		b, err := proto.Marshal(&peerpb.Command{Command: &peerpb.Command_Publication{Publication: p}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Fields in an order proto.Marshal does not write, and the publication
	// given twice (decoding merges the two: the later body wins).
	reordered := protowire.AppendTag(nil, 3, protowire.BytesType)
	reordered = protowire.AppendBytes(reordered, []byte("signature"))
	reordered = protowire.AppendTag(reordered, 2, protowire.BytesType)
	reordered = protowire.AppendBytes(reordered, body)
	reordered = protowire.AppendTag(reordered, 1, protowire.BytesType)
	reordered = protowire.AppendBytes(reordered, []byte("DE-BAFA"))
	twice := append(cmd(&peerpb.Publication{Origin: "DE-BAFA", Body: []byte("stale")}), cmd(&peerpb.Publication{Body: body})...)
	for _, tc := range []struct {
		name string
		raw  []byte
		fast bool // found without decoding the command
	}{
		{"publication", cmd(&peerpb.Publication{Origin: "DE-BAFA", Body: body, Signature: []byte("sig")}), true},
		{"publication without a body", cmd(&peerpb.Publication{Origin: "DE-BAFA"}), true},
		{"empty publication", cmd(&peerpb.Publication{}), true},
		{"fields reordered", append(protowire.AppendTag(nil, 1, protowire.BytesType), protowire.AppendBytes(nil, reordered)...), true},
		{"publication twice", twice, false},
		{"governance", func() []byte {
			b, _ := proto.Marshal(&peerpb.Command{Command: &peerpb.Command_Governance{Governance: &peerpb.Governance{Agency: "DE-BAFA", Act: []byte("act")}}})
			return b
		}(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want peerpb.Command
			if err := proto.Unmarshal(tc.raw, &want); err != nil {
				t.Fatal(err)
			}
			wantBody := &peerpb.PublicationBody{}
			if err := proto.Unmarshal(want.GetPublication().GetBody(), wantBody); err != nil {
				t.Fatal(err)
			}
			if cmd, err := decodeCommand(tc.raw); err != nil || !proto.Equal(cmd, &want) {
				t.Fatalf("decodeCommand: %v (err %v), want %v", cmd, err, &want)
			}
			origin, _, fast := publicationBody(tc.raw)
			if fast != tc.fast {
				t.Fatalf("found without decoding: %v, want %v", fast, tc.fast)
			}
			if fast && string(origin) != want.GetPublication().GetOrigin() {
				t.Fatalf("origin %q, want %q", origin, want.GetPublication().GetOrigin())
			}
			got, err := decodeBody(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, wantBody) {
				t.Fatalf("body %v, want %v", got, wantBody)
			}
		})
	}
}

// TestDecodeCommandRefusesWhatUnmarshalRefuses: a publication whose origin is
// not UTF-8 is refused, as proto.Unmarshal refuses it, though its fields are
// otherwise as decodeCommand takes them without decoding.
func TestDecodeCommandRefusesWhatUnmarshalRefuses(t *testing.T) {
	pub := protowire.AppendTag(nil, 1, protowire.BytesType)
	pub = protowire.AppendBytes(pub, []byte{'D', 0xff, 'E'})
	raw := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), pub)
	if err := proto.Unmarshal(raw, &peerpb.Command{}); err == nil {
		t.Fatal("proto.Unmarshal took an origin that is not UTF-8")
	}
	if cmd, err := decodeCommand(raw); err == nil {
		t.Fatalf("decodeCommand took an origin that is not UTF-8: %v", cmd)
	}
}
