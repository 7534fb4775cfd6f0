package federation

import (
	"crypto/ed25519"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
)

// TestVerifiedOnce: the FSM takes the arrival check's result only for the
// very bytes checked, and only once; anything else is verified in full.
func TestVerifiedOnce(t *testing.T) {
	keys, err := seal.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	other, err := seal.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	key, otherKey := []byte(keys.Public().Signing), []byte(other.Public().Signing)
	pub := publication(t, partner, keys).GetPublication()
	decoded, err := seal.Verify(pub, key)
	if err != nil {
		t.Fatal(err)
	}
	tampered := &peerpb.Publication{Origin: pub.Origin, Body: append([]byte{}, pub.Body...), Signature: pub.Signature}
	tampered.Body = append(tampered.Body, 0x08, 0x01) // one more field: the signature no longer holds
	tests := []struct {
		name   string
		pub    *peerpb.Publication
		key    []byte
		cached bool // the remembered result comes back
		ok     bool
	}{
		{"same bytes and key", pub, key, true, true},
		{"same bytes again", pub, key, false, true}, // taken once: verified in full
		{"another key registered since", pub, otherKey, false, false},
		{"body changed under the same signature", tampered, key, false, false},
		{"another origin claimed", &peerpb.Publication{Origin: self, Body: pub.Body, Signature: pub.Signature}, key, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v verifiedOnce
			v.remember(pub, key, decoded)
			if tc.name == "same bytes again" {
				if _, err := v.verify(pub, key); err != nil {
					t.Fatal(err)
				}
			}
			got, err := v.verify(tc.pub, tc.key)
			if (err == nil) != tc.ok {
				t.Fatalf("verify = %v; want ok %v", err, tc.ok)
			}
			if (got == decoded) != tc.cached {
				t.Fatalf("remembered result returned %v; want %v", got == decoded, tc.cached)
			}
		})
	}
	var v verifiedOnce
	for range verifiedOnceSize + 10 {
		p := publication(t, partner, keys).GetPublication()
		v.remember(&peerpb.Publication{Origin: p.Origin, Body: p.Body, Signature: append([]byte{byte(len(v.order))}, p.Signature...)}, key, decoded)
	}
	if len(v.m) > verifiedOnceSize || len(v.order) > verifiedOnceSize {
		t.Fatalf("%d remembered; want at most %d", len(v.m), verifiedOnceSize)
	}
}

// TestRememberOwn: the origin's FSM takes the verdict on its own sealed
// publication only under the key it signed with, and the body it gets is the
// one a full verification decodes from the same bytes; a body the checks
// refuse is not remembered, so the FSM refuses it as every member does.
func TestRememberOwn(t *testing.T) {
	keys, err := seal.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	other, err := seal.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	own := keys.Public().Signing
	items := []seal.Item{{Header: &peerpb.EnvelopeHeader{EntryId: self + "-1", Version: 1}, Bodies: []seal.BodyPlain{{Plaintext: []byte("record")}}}}
	tests := []struct {
		name   string
		mutate func(*peerpb.Publication, *peerpb.PublicationBody)
		key    []byte
		cached bool
		ok     bool
	}{
		{"as sealed", nil, own, true, true},
		{"another key registered", nil, other.Public().Signing, false, false},
		{"a body the checks refuse", func(_ *peerpb.Publication, b *peerpb.PublicationBody) {
			b.Envelopes[0].Header.Version = 0
		}, own, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &Federation{keys: keys, ownKey: ownSigningKey(keys)}
			pub, body, err := seal.NewSealer(self, keys).SealBody(items, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.mutate != nil {
				// Re-signed, so that only the structural checks refuse it.
				tc.mutate(pub, body)
				pub.Body, err = proto.Marshal(body)
				if err != nil {
					t.Fatal(err)
				}
				pub.Signature = ed25519.Sign(keys.Signing, pub.Body)
			}
			f.rememberOwn(pub, body)
			got, err := f.verified.verify(pub, tc.key)
			want, wantErr := seal.Verify(pub, tc.key)
			if (err == nil) != tc.ok || (wantErr == nil) != tc.ok {
				t.Fatalf("verify = %v, full verification = %v; want ok %v", err, wantErr, tc.ok)
			}
			if (got == body) != tc.cached {
				t.Fatalf("remembered body returned %v; want %v", got == body, tc.cached)
			}
			if tc.ok && !proto.Equal(got, want) {
				t.Fatalf("remembered body differs from the decoded one:\n%v\n%v", got, want)
			}
		})
	}
	broken := *keys
	broken.Signing = append(ed25519.PrivateKey{}, keys.Signing...)
	broken.Signing[63] ^= 1 // the stored public half disagrees with the seed
	if ownSigningKey(&broken) != nil {
		t.Error("a key whose halves disagree was taken as this node's")
	}
}

// TestVerifiedOnceBytesBounded: publications remembered and never applied
// (sealed again and again while no leader takes them) hold at most
// verifiedOnceBytes of bodies; what is taken or dropped is counted off.
func TestVerifiedOnceBytesBounded(t *testing.T) {
	var v verifiedOnce
	body := make([]byte, 4<<20)
	pubs := make([]*peerpb.Publication, 3*verifiedOnceBytes/len(body))
	for i := range pubs {
		pubs[i] = &peerpb.Publication{Origin: self, Body: body, Signature: []byte{byte(i), byte(i >> 8)}}
		v.remember(pubs[i], []byte("key"), &peerpb.PublicationBody{})
		if v.size > verifiedOnceBytes {
			t.Fatalf("after %d: %d bytes remembered; want at most %d", i+1, v.size, verifiedOnceBytes)
		}
	}
	v.remember(&peerpb.Publication{Origin: self, Body: make([]byte, verifiedOnceBytes+1), Signature: []byte("huge")}, []byte("key"), nil)
	if _, ok := v.m["huge"]; ok {
		t.Error("a body larger than the whole bound was remembered")
	}
	last := pubs[len(pubs)-1]
	if _, ok := v.m[string(last.Signature)]; !ok {
		t.Fatal("the newest publication was dropped")
	}
	v.remember(last, []byte("key"), &peerpb.PublicationBody{}) // the same one again: counted once
	sum := 0
	for _, e := range v.m {
		sum += len(e.body)
	}
	if sum != v.size {
		t.Fatalf("size %d; the bodies held sum to %d", v.size, sum)
	}
	before := v.size
	if _, err := v.verify(last, []byte("key")); err != nil {
		t.Fatal(err)
	}
	if v.size != before-len(body) {
		t.Fatalf("size %d after the newest was taken; want %d", v.size, before-len(body))
	}
}
