package replication

import (
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
)

// publicationOf is a publication of body signed by l's agency AA.
func (l *protoLog) publicationOf(body *peerpb.PublicationBody) *peerpb.Command {
	data, err := proto.Marshal(body)
	if err != nil {
		l.t.Fatal(err)
	}
	return &peerpb.Command{Command: &peerpb.Command_Publication{Publication: &peerpb.Publication{
		Origin: "AA", Body: data, Signature: ed25519.Sign(l.keys["AA"], data)}}}
}

// TestProtocol2ClearParts: from protocol 2 a publication whose clear ids
// lie or hold controls is refused by the FSM; under protocol 1 the same
// publication is accepted as it always was (an old log replays the same).
func TestProtocol2ClearParts(t *testing.T) {
	own := "AA/" + ulid.Make().String()
	envelope := func(h *peerpb.EnvelopeHeader) *peerpb.PublicationBody {
		if h.EntryId == "" {
			h.EntryId = own
		}
		if h.Origin == "" {
			h.Origin = "AA"
		}
		h.Version = 1
		return &peerpb.PublicationBody{Origin: "AA", Envelopes: []*peerpb.Envelope{{Header: h,
			Bodies: []*peerpb.Body{{Recipients: []string{"BB"}, Keys: []*peerpb.WrappedKey{{Recipient: "BB", Epoch: 1}}}}}}}
	}
	for _, tc := range []struct {
		name   string
		body   *peerpb.PublicationBody
		refuse string // under protocol 2; "" accepted
	}{
		{"the origin's own entry", envelope(&peerpb.EnvelopeHeader{RelTo: []string{"BB", "DE-BAFA"}, Recipients: []string{"BB"}}), ""},
		{"an entry id of another agency", envelope(&peerpb.EnvelopeHeader{EntryId: "BB/" + ulid.Make().String()}), "an entry of BB published by AA"},
		{"an entry id not AGENCY/ULID", envelope(&peerpb.EnvelopeHeader{EntryId: "AA/12345"}), "envelopes[0].header.entry_id"},
		{"an entry id with an escape", envelope(&peerpb.EnvelopeHeader{EntryId: "AA/\x1b[31m"}), "entry_id contains U+001B"},
		{"a header origin of another agency", envelope(&peerpb.EnvelopeHeader{Origin: "BB"}), `header.origin "BB": the publication's origin is AA`},
		{"rel_to not an agency id", envelope(&peerpb.EnvelopeHeader{RelTo: []string{"bb and co"}}), "rel_to[0]"},
		{"rel_to with a bidi override", envelope(&peerpb.EnvelopeHeader{RelTo: []string{"B\u202eB"}}), "rel_to[0] contains U+202E"},
		{"a recipient with a control", envelope(&peerpb.EnvelopeHeader{Recipients: []string{"BB\n"}}), "recipients[0] contains U+000A"},
		{"an epoch grant to no agency", &peerpb.PublicationBody{Origin: "AA", EpochGrants: []*peerpb.EpochGrant{{Origin: "AA", Recipient: "../BB", Epoch: 1}}}, "epoch_grants[0].recipient"},
		{"a key grant for another agency's entry", &peerpb.PublicationBody{Origin: "AA", KeyGrants: []*peerpb.KeyGrant{{EntryId: "BB/" + ulid.Make().String(), Version: 1, Key: &peerpb.WrappedKey{Recipient: "BB"}}}}, "key_grants[0].entry_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, protocol := range []uint32{1, 2} {
				l := newProtoLog(t)
				l.add(l.announcement("AA", "AA", 1, 2))
				l.add(l.announcement("BB", "BB", 1, 2))
				if protocol == 2 {
					l.add(activation(2))
				}
				idx := l.add(l.publicationOf(tc.body))
				f := openTestFSM(t, filepath.Join(t.TempDir(), "fsm.db"), verifyEd25519, 1, 2)
				res := applyAll(f, l.logs)
				_, before, _ := f.StateHash()
				last, _ := f.LastEntry(idx)
				f.Close()
				for _, r := range res[:idx-1] {
					if r.Err != nil {
						t.Fatalf("entry %d: %v", r.Index, r.Err)
					}
				}
				err := res[idx-1].Err
				if protocol == 1 || tc.refuse == "" {
					if err != nil || last != idx {
						t.Fatalf("protocol %d: %v (last entry %d), want accepted", protocol, err, last)
					}
					continue
				}
				if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.refuse) || !strings.Contains(err.Error(), "(protocol 2)") {
					t.Fatalf("protocol 2: %v, want refused: ...%s...", err, tc.refuse)
				}
				if last != 0 {
					t.Fatalf("refused publication stored at %d (state %x)", last, before[:4])
				}
			}
		})
	}
}

// verifyEd25519 checks the signature over the body and decodes it, as the
// node's verifier does before its own structure checks.
func verifyEd25519(pub *peerpb.Publication, key []byte) (*peerpb.PublicationBody, error) {
	if !ed25519.Verify(key, pub.Body, pub.Signature) {
		return nil, errors.New("bad signature")
	}
	body := &peerpb.PublicationBody{}
	return body, proto.Unmarshal(pub.Body, body)
}
