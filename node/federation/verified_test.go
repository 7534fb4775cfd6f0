package federation

import (
	"testing"

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
