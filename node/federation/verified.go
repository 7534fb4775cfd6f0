package federation

import (
	"bytes"
	"crypto/ed25519"
	"sync"

	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
)

// verifiedOnce lets a node verify a publication once: the leader a
// forwarded one, and the origin its own (see rememberOwn). The
// leader checks a partner's publication when it arrives (checkForwarded),
// and its FSM checks the same bytes again moments later, as every FSM must:
// an Ed25519 verification and a decoding of the body twice per publication
// on the node that carries the federation's writes. The arrival check
// remembers its result here and the FSM's takes it, once, if the origin,
// signing key, body and signature are byte for byte the ones checked, so
// its verdict is the one seal.Verify gave on them. Anything else (a miss, a
// key changed since) is verified in full.
type verifiedOnce struct {
	mu    sync.Mutex
	m     map[string]verifiedPub // by signature
	order []string               // oldest first
	size  int                    // bytes of the bodies in m
}

type verifiedPub struct {
	origin    string
	key, body []byte
	decoded   *peerpb.PublicationBody
}

// verifiedOnceSize bounds what is remembered: a few windows of forwards.
// verifiedOnceBytes bounds the bodies held (with their decoded copies):
// publications sealed or forwarded again and again while no leader takes
// them (each a new signature, never applied) must not pile up 4 MiB bulk
// bodies; the bound holds what three agencies importing at once have in
// flight (8 publications each). What is dropped is verified in full when
// applied.
const (
	verifiedOnceSize  = 256
	verifiedOnceBytes = 128 << 20
)

// verify is seal.Verify, using a remembered result for the same bytes.
func (v *verifiedOnce) verify(pub *peerpb.Publication, key []byte) (*peerpb.PublicationBody, error) {
	sig := string(pub.GetSignature())
	v.mu.Lock()
	e, ok := v.m[sig]
	if ok {
		delete(v.m, sig)
		v.size -= len(e.body)
	}
	v.mu.Unlock()
	if ok && e.origin == pub.GetOrigin() && bytes.Equal(e.key, key) && bytes.Equal(e.body, pub.GetBody()) {
		return e.decoded, nil
	}
	return seal.Verify(pub, key)
}

// remember keeps seal.Verify's result for pub under key.
func (v *verifiedOnce) remember(pub *peerpb.Publication, key []byte, decoded *peerpb.PublicationBody) {
	sig := string(pub.GetSignature())
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[string]verifiedPub{}
	}
	if len(pub.GetBody()) > verifiedOnceBytes {
		return
	}
	if old, ok := v.m[sig]; ok { // the same publication again: kept once
		v.size -= len(old.body)
	}
	for len(v.order) > 0 && (len(v.order) >= verifiedOnceSize || v.size+len(pub.GetBody()) > verifiedOnceBytes) {
		if e, ok := v.m[v.order[0]]; ok {
			v.size -= len(e.body)
			delete(v.m, v.order[0])
		}
		v.order = v.order[1:]
	}
	v.m[sig] = verifiedPub{origin: pub.GetOrigin(), key: key, body: pub.GetBody(), decoded: decoded}
	v.size += len(pub.GetBody())
	v.order = append(v.order, sig)
}

// rememberOwn lets this node's FSM take the verdict on a publication this
// node has just signed: its signature verifies under this agency's public
// key (an Ed25519 signature made with the key always does), and body, the
// body as built before it was encoded and signed, passes the structural
// checks here. The FSM takes it only if the registry holds that same key
// when the publication is applied (verifiedOnce.verify compares it), so a
// key the federation does not know, or no longer knows, is verified in full
// and refused as on every other member. This saves the origin's FSM an
// Ed25519 verification and a decoding of the body per publication, on the
// write's path when the origin leads.
func (f *Federation) rememberOwn(pub *peerpb.Publication, body *peerpb.PublicationBody) {
	if seal.CheckBody(pub, body) != nil {
		return // verified in full, and refused, when applied
	}
	if f.ownKey == nil {
		return
	}
	f.verified.remember(pub, f.ownKey, body)
}

// ownSigningKey is the public key this node's signatures verify under,
// derived from the seed: ed25519.Sign hashes the key's stored public half,
// and a key file whose halves disagree makes signatures that verify under
// neither (nil then: nothing is remembered).
func ownSigningKey(k *seal.Keys) ed25519.PublicKey {
	own := ed25519.NewKeyFromSeed(k.Signing.Seed()).Public().(ed25519.PublicKey)
	if !own.Equal(k.Signing.Public()) {
		return nil
	}
	return own
}
