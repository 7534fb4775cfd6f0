package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
)

// Limits a verified publication must respect, so a member cannot bloat
// every node's log.
const (
	MaxEnvelopes  = 20000
	MaxBodies     = 16
	MaxRecipients = 64
)

// ErrNotRecipient: the body or grant was not sealed to this agency.
var ErrNotRecipient = errors.New("not a recipient")

// Recipient is a member an origin seals to.
type Recipient struct {
	SealingKey []byte // HPKE public key from the member registry
	Epoch      uint64 // current epoch of the origin→recipient key
	Granted    bool   // the epoch key already travelled in the log
}

// Item is one entry version to seal.
type Item struct {
	Header *peerpb.EnvelopeHeader
	Bodies []BodyPlain
}

// BodyPlain is a body before sealing: the record as redacted for these recipients.
type BodyPlain struct {
	Recipients []string
	Plaintext  []byte
}

// Sealer seals an origin's entries. It keeps no state but a cache: epoch
// keys derive from the master secret, and the caller says which were
// already granted.
type Sealer struct {
	origin string
	keys   *Keys
	aeads  aeadCache
}

// NewSealer makes a sealer for an origin agency.
func NewSealer(origin string, keys *Keys) *Sealer { return &Sealer{origin: origin, keys: keys} }

// aeadCache keeps the AEADs of epoch keys: a publication of 1,024 records
// wraps some 3,000 content keys under a handful of epoch keys, and a new
// member opens 100,000 bodies under one, where each AES key schedule and
// GCM table cost as much as the wrap itself. Safe for concurrent use.
type aeadCache struct {
	mu sync.Mutex
	m  map[string]cipher.AEAD
}

// aeadCacheSize bounds the cache (epoch keys: one per origin, recipient
// and epoch); it starts afresh when full.
const aeadCacheSize = 1024

func (c *aeadCache) get(key []byte) (cipher.AEAD, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.m[string(key)]; ok {
		return g, nil
	}
	g, err := gcm(key)
	if err != nil {
		return nil, err
	}
	if c.m == nil || len(c.m) >= aeadCacheSize {
		c.m = map[string]cipher.AEAD{}
	}
	c.m[string(key)] = g
	return g, nil
}

// EpochKey derives the origin's key for a recipient and epoch.
func (s *Sealer) EpochKey(recipient string, epoch uint64) ([]byte, error) {
	info := fmt.Sprintf("watchfed epoch key v1|%s|%s|%d", s.origin, recipient, epoch)
	return hkdf.Key(sha256.New, s.keys.Master, nil, info, 32)
}

// Seal makes one signed publication of items. Each recipient named in a body
// must be in recipients; an epoch key not yet granted gets an EpochGrant
// (one HPKE encapsulation per recipient, however many items). The origin
// always wraps each content key for itself too, so it can later grant old
// bodies to a new partner without re-sending them.
func (s *Sealer) Seal(items []Item, recipients map[string]Recipient) (*peerpb.Publication, error) {
	pub, _, err := s.SealBody(items, recipients)
	return pub, err
}

// SealBody is Seal that also returns the signed body as built, so that the
// origin need not decode what it just encoded. The body is shared with the
// publication's bytes: do not change it.
func (s *Sealer) SealBody(items []Item, recipients map[string]Recipient) (*peerpb.Publication, *peerpb.PublicationBody, error) {
	body, err := s.sealBody(items, recipients)
	if err != nil {
		return nil, nil, err
	}
	pub, err := s.sign(body)
	return pub, body, err
}

// SealCommand is SealBody with the publication's command encoded too (as
// proto.Marshal encodes a Command holding it, byte for byte), the body
// marshalled once, in place in the command: pub.Body is a slice of cmd.
// Encoding the body and then the command around it copied a MB publication
// twice into fresh buffers.
func (s *Sealer) SealCommand(items []Item, recipients map[string]Recipient) (cmd []byte, pub *peerpb.Publication, body *peerpb.PublicationBody, err error) {
	if body, err = s.sealBody(items, recipients); err != nil {
		return nil, nil, nil, err
	}
	cmd, pub, err = s.signCommand(body)
	return cmd, pub, body, err
}

// signCommand marshals body inside the encoding of a publication command
// (field 1 of Command: origin 1, body 2, signature 3 of Publication) and
// signs it there.
func (s *Sealer) signCommand(body *peerpb.PublicationBody) ([]byte, *peerpb.Publication, error) {
	if s.origin == "" { // proto.Marshal would leave the field out
		return nil, nil, errors.New("sealer without an origin")
	}
	bodySize := proto.Size(body)
	field := func(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }
	pubSize := field(len(s.origin)) + field(bodySize) + field(ed25519.SignatureSize)
	cmd := make([]byte, 0, field(pubSize))
	cmd = protowire.AppendTag(cmd, 1, protowire.BytesType)
	cmd = protowire.AppendVarint(cmd, uint64(pubSize))
	cmd = protowire.AppendTag(cmd, 1, protowire.BytesType)
	cmd = protowire.AppendString(cmd, s.origin)
	cmd = protowire.AppendTag(cmd, 2, protowire.BytesType)
	cmd = protowire.AppendVarint(cmd, uint64(bodySize))
	start := len(cmd)
	cmd, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(cmd, body)
	if err != nil {
		return nil, nil, err
	}
	if len(cmd)-start != bodySize {
		return nil, nil, fmt.Errorf("publication body of %d bytes, sized %d", len(cmd)-start, bodySize)
	}
	b := cmd[start:len(cmd):len(cmd)]
	sig := ed25519.Sign(s.keys.Signing, b)
	cmd = protowire.AppendTag(cmd, 3, protowire.BytesType)
	cmd = protowire.AppendBytes(cmd, sig)
	return cmd, &peerpb.Publication{Origin: s.origin, Body: b, Signature: sig}, nil
}

// sealBody builds the body of a publication of items, unsigned.
func (s *Sealer) sealBody(items []Item, recipients map[string]Recipient) (*peerpb.PublicationBody, error) {
	body := &peerpb.PublicationBody{Origin: s.origin}
	granted := map[string]bool{}
	// Derived once per publication, not per body.
	epochKeys := map[string][]byte{}
	self, err := s.EpochKey(s.origin, 0)
	if err != nil {
		return nil, err
	}
	epochKey := func(r string) ([]byte, uint64, error) {
		if r == s.origin {
			return self, 0, nil
		}
		rc, ok := recipients[r]
		if !ok {
			return nil, 0, fmt.Errorf("recipient %s has no sealing key", r)
		}
		if k, ok := epochKeys[r]; ok {
			return k, rc.Epoch, nil
		}
		k, err := s.EpochKey(r, rc.Epoch)
		if err != nil {
			return nil, 0, err
		}
		if !rc.Granted && !granted[r] {
			g, err := s.grantEpoch(r, rc, k)
			if err != nil {
				return nil, 0, err
			}
			body.EpochGrants = append(body.EpochGrants, g)
			granted[r] = true
		}
		epochKeys[r] = k
		return k, rc.Epoch, nil
	}
	// The epoch keys first, in the order the items name them (so the epoch
	// grants are in that order), then the items sealed in parallel.
	wrapKeys := map[string]wrapKey{}
	for _, it := range items {
		for _, bp := range it.Bodies {
			for _, r := range append([]string{s.origin}, bp.Recipients...) {
				if _, ok := wrapKeys[r]; ok {
					continue
				}
				ek, epoch, err := epochKey(r)
				if err != nil {
					return nil, fmt.Errorf("seal %s v%d: %w", it.Header.GetEntryId(), it.Header.GetVersion(), err)
				}
				g, err := s.aeads.get(ek)
				if err != nil {
					return nil, err
				}
				wrapKeys[r] = wrapKey{g, epoch}
			}
		}
	}
	body.Envelopes = make([]*peerpb.Envelope, len(items))
	err = Parallel(len(items), func(i int) (err error) {
		body.Envelopes[i], err = s.sealItem(items[i], wrapKeys)
		return err
	})
	if err != nil {
		return nil, err
	}
	return body, nil
}

// wrapKey is a recipient's epoch key, ready to wrap content keys.
type wrapKey struct {
	aead  cipher.AEAD
	epoch uint64
}

// sealItem seals one item's bodies, each under a new content key wrapped for
// the origin and the body's recipients.
func (s *Sealer) sealItem(it Item, keys map[string]wrapKey) (*peerpb.Envelope, error) {
	h := proto.Clone(it.Header).(*peerpb.EnvelopeHeader)
	h.Origin = s.origin
	h.Recipients = nil
	env := &peerpb.Envelope{Header: h}
	for bi, bp := range it.Bodies {
		ck := make([]byte, 32)
		if _, err := rand.Read(ck); err != nil {
			return nil, err
		}
		nonce, ct, err := encrypt(ck, bp.Plaintext, bodyAD(h))
		if err != nil {
			return nil, err
		}
		b := &peerpb.Body{Recipients: slices.Clone(bp.Recipients), Nonce: nonce, Ciphertext: ct}
		for _, r := range append([]string{s.origin}, bp.Recipients...) {
			k := keys[r]
			wk, err := wrapWith(k.aead, ck, h.EntryId, h.Version, uint32(bi), r, k.epoch)
			if err != nil {
				return nil, err
			}
			b.Keys = append(b.Keys, wk)
		}
		env.Bodies = append(env.Bodies, b)
		for _, r := range bp.Recipients {
			if !slices.Contains(h.Recipients, r) {
				h.Recipients = append(h.Recipients, r)
			}
		}
	}
	slices.Sort(h.Recipients)
	return env, nil
}

// Parallel runs fn for 0..n-1 on up to GOMAXPROCS goroutines, each a
// contiguous range (a handful of items stay on the caller's), and returns
// the error of the lowest index that failed. A publication of 1,024
// records is sealed on every core rather than one.
func Parallel(n int, fn func(i int) error) error {
	const perWorker = 64
	workers := min(runtime.GOMAXPROCS(0), (n+perWorker-1)/perWorker)
	if workers <= 1 {
		for i := range n {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * n / workers; i < (w+1)*n/workers; i++ {
				if err := fn(i); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Grant makes a signed publication of key grants: it shares already
// published bodies with a recipient by wrapping their content keys again.
// ref names each body; the origin recovers the content key from its own wrap.
func (s *Sealer) Grant(bodies []GrantRef, recipient string, rc Recipient) (*peerpb.Publication, error) {
	body := &peerpb.PublicationBody{Origin: s.origin}
	ek, err := s.EpochKey(recipient, rc.Epoch)
	if err != nil {
		return nil, err
	}
	if !rc.Granted {
		g, err := s.grantEpoch(recipient, rc, ek)
		if err != nil {
			return nil, err
		}
		body.EpochGrants = append(body.EpochGrants, g)
	}
	self, err := s.EpochKey(s.origin, 0)
	if err != nil {
		return nil, err
	}
	to, err := s.aeads.get(ek)
	if err != nil {
		return nil, err
	}
	for _, ref := range bodies {
		h := ref.Header
		ck, err := unwrapFor(s.origin, ref.Body, h, ref.Index, func(string, uint64) ([]byte, bool) { return self, true }, &s.aeads)
		if err != nil {
			return nil, fmt.Errorf("recover content key of %s v%d: %w", h.EntryId, h.Version, err)
		}
		wk, err := wrapWith(to, ck, h.EntryId, h.Version, ref.Index, recipient, rc.Epoch)
		if err != nil {
			return nil, err
		}
		body.KeyGrants = append(body.KeyGrants, &peerpb.KeyGrant{EntryId: h.EntryId, Version: h.Version, BodyIndex: ref.Index, Key: wk})
	}
	return s.sign(body)
}

// GrantRef names a published body.
type GrantRef struct {
	Header *peerpb.EnvelopeHeader
	Index  uint32
	Body   *peerpb.Body
}

func (s *Sealer) grantEpoch(recipient string, rc Recipient, epochKey []byte) (*peerpb.EpochGrant, error) {
	pk, err := kem.NewPublicKey(rc.SealingKey)
	if err != nil {
		return nil, fmt.Errorf("sealing key of %s: %w", recipient, err)
	}
	enc, sender, err := hpke.NewSender(pk, kdf, aead, grantInfo(s.origin, recipient, rc.Epoch))
	if err != nil {
		return nil, fmt.Errorf("hpke to %s: %w", recipient, err)
	}
	ct, err := sender.Seal(nil, epochKey)
	if err != nil {
		return nil, err
	}
	return &peerpb.EpochGrant{Origin: s.origin, Recipient: recipient, Epoch: rc.Epoch, HpkeEnc: enc, WrappedEpochKey: ct}, nil
}

func (s *Sealer) sign(body *peerpb.PublicationBody) (*peerpb.Publication, error) {
	b, err := proto.Marshal(body)
	if err != nil {
		return nil, err
	}
	return &peerpb.Publication{Origin: s.origin, Body: b, Signature: ed25519.Sign(s.keys.Signing, b)}, nil
}

// Verify checks a publication's signature against its origin's signing key
// and its structure, and returns the body. It is deterministic: every FSM
// reaches the same verdict on the same bytes.
func Verify(pub *peerpb.Publication, signingKey []byte) (*peerpb.PublicationBody, error) {
	if len(signingKey) != ed25519.PublicKeySize {
		return nil, errors.New("no valid signing key for origin")
	}
	if !ed25519.Verify(ed25519.PublicKey(signingKey), pub.GetBody(), pub.GetSignature()) {
		return nil, errors.New("signature does not verify: not signed by the claimed origin")
	}
	body := &peerpb.PublicationBody{}
	if err := proto.Unmarshal(pub.GetBody(), body); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	if err := CheckBody(pub, body); err != nil {
		return nil, err
	}
	return body, nil
}

// CheckBody is the structural part of Verify: body, decoded from pub's
// bytes, holds only what its origin may publish, within the limits.
func CheckBody(pub *peerpb.Publication, body *peerpb.PublicationBody) error {
	if body.Origin != pub.Origin {
		return fmt.Errorf("body origin %q differs from publication origin %q", body.Origin, pub.Origin)
	}
	if len(body.Envelopes) > MaxEnvelopes {
		return fmt.Errorf("%d envelopes exceed the limit of %d", len(body.Envelopes), MaxEnvelopes)
	}
	for _, g := range body.EpochGrants {
		if g.Origin != pub.Origin || g.Recipient == "" {
			return fmt.Errorf("epoch grant of %q for %q in a publication of %s", g.Origin, g.Recipient, pub.Origin)
		}
	}
	for i, env := range body.Envelopes {
		h := env.GetHeader()
		if h.GetOrigin() != pub.Origin || h.GetEntryId() == "" || h.GetVersion() == 0 {
			return fmt.Errorf("envelope %d: header must name origin %s, an entry id and a version", i, pub.Origin)
		}
		if len(env.Bodies) > MaxBodies || len(h.Recipients) > MaxRecipients {
			return fmt.Errorf("envelope %d: too many bodies or recipients", i)
		}
		seen := map[string]bool{}
		for _, b := range env.Bodies {
			for _, r := range b.Recipients {
				if seen[r] {
					return fmt.Errorf("envelope %d: recipient %s in two bodies", i, r)
				}
				seen[r] = true
			}
		}
	}
	return nil
}

// Opener opens what was sealed to one agency.
type Opener struct {
	self  string
	keys  *Keys
	aeads aeadCache
}

// NewOpener makes an opener for agency self.
func NewOpener(self string, keys *Keys) *Opener { return &Opener{self: self, keys: keys} }

// OpenEpochGrant recovers an epoch key sealed to this agency.
func (o *Opener) OpenEpochGrant(g *peerpb.EpochGrant) ([]byte, error) {
	if g.Recipient != o.self {
		return nil, ErrNotRecipient
	}
	r, err := hpke.NewRecipient(g.HpkeEnc, o.keys.Sealing, kdf, aead, grantInfo(g.Origin, g.Recipient, g.Epoch))
	if err != nil {
		return nil, fmt.Errorf("epoch grant from %s: %w", g.Origin, err)
	}
	k, err := r.Open(nil, g.WrappedEpochKey)
	if err != nil {
		return nil, fmt.Errorf("epoch grant from %s: %w", g.Origin, err)
	}
	return k, nil
}

// EpochKeys looks up an epoch key this agency received (or, for its own
// entries, derives).
type EpochKeys func(origin string, epoch uint64) ([]byte, bool)

// OpenBody decrypts body index of an envelope if it was sealed to this agency.
func (o *Opener) OpenBody(h *peerpb.EnvelopeHeader, index uint32, b *peerpb.Body, keys EpochKeys) ([]byte, error) {
	ck, err := unwrapFor(o.self, b, h, index, keys, &o.aeads)
	if err != nil {
		return nil, err
	}
	return decrypt(ck, b.Nonce, b.Ciphertext, bodyAD(h))
}

// OpenGranted decrypts a body through a key grant to this agency.
func (o *Opener) OpenGranted(h *peerpb.EnvelopeHeader, b *peerpb.Body, g *peerpb.KeyGrant, keys EpochKeys) ([]byte, error) {
	if g.GetKey().GetRecipient() != o.self {
		return nil, ErrNotRecipient
	}
	ek, ok := keys(h.Origin, g.Key.Epoch)
	if !ok {
		return nil, fmt.Errorf("no epoch %d key from %s", g.Key.Epoch, h.Origin)
	}
	eg, err := o.aeads.get(ek)
	if err != nil {
		return nil, err
	}
	ck, err := unwrapWith(eg, g.Key, h.EntryId, h.Version, g.BodyIndex)
	if err != nil {
		return nil, err
	}
	return decrypt(ck, b.Nonce, b.Ciphertext, bodyAD(h))
}

func unwrapFor(self string, b *peerpb.Body, h *peerpb.EnvelopeHeader, index uint32, keys EpochKeys, aeads *aeadCache) ([]byte, error) {
	for _, wk := range b.Keys {
		if wk.Recipient != self {
			continue
		}
		ek, ok := keys(h.Origin, wk.Epoch)
		if !ok {
			return nil, fmt.Errorf("no epoch %d key from %s", wk.Epoch, h.Origin)
		}
		g, err := aeads.get(ek)
		if err != nil {
			return nil, err
		}
		return unwrapWith(g, wk, h.EntryId, h.Version, index)
	}
	return nil, ErrNotRecipient
}

// bodyAD binds a body to its header: a body moved under another entry,
// version, origin or kind does not open.
func bodyAD(h *peerpb.EnvelopeHeader) []byte {
	// Sized at once: built for every body sealed or opened.
	ad := make([]byte, 0, 16+4+len(h.EntryId)+8+4+len(h.Origin)+4)
	ad = append(ad, "watchfed body v1"...)
	ad = appendField(ad, h.EntryId)
	ad = binary.BigEndian.AppendUint64(ad, h.Version)
	ad = appendField(ad, h.Origin)
	return binary.BigEndian.AppendUint32(ad, uint32(h.Kind))
}

func wrapAD(entry string, version uint64, index uint32, recipient string, epoch uint64) []byte {
	ad := make([]byte, 0, 16+4+len(entry)+8+4+4+len(recipient)+8)
	ad = append(ad, "watchfed wrap v1"...)
	ad = appendField(ad, entry)
	ad = binary.BigEndian.AppendUint64(ad, version)
	ad = binary.BigEndian.AppendUint32(ad, index)
	ad = appendField(ad, recipient)
	return binary.BigEndian.AppendUint64(ad, epoch)
}

func grantInfo(origin, recipient string, epoch uint64) []byte {
	return []byte(fmt.Sprintf("watchfed epoch grant v1|%s|%s|%d", origin, recipient, epoch))
}

func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// wrapWith wraps a content key under an epoch key's AEAD.
func wrapWith(g cipher.AEAD, contentKey []byte, entry string, version uint64, index uint32, recipient string, epoch uint64) (*peerpb.WrappedKey, error) {
	nonce, ct, err := sealWith(g, contentKey, wrapAD(entry, version, index, recipient, epoch))
	if err != nil {
		return nil, err
	}
	return &peerpb.WrappedKey{Recipient: recipient, Epoch: epoch, Nonce: nonce, Wrapped: ct}, nil
}

func unwrapWith(g cipher.AEAD, wk *peerpb.WrappedKey, entry string, version uint64, index uint32) ([]byte, error) {
	return openWith(g, wk.Nonce, wk.Wrapped, wrapAD(entry, version, index, wk.Recipient, wk.Epoch))
}

func encrypt(key, plaintext, ad []byte) (nonce, ct []byte, err error) {
	g, err := gcm(key)
	if err != nil {
		return nil, nil, err
	}
	return sealWith(g, plaintext, ad)
}

func sealWith(g cipher.AEAD, plaintext, ad []byte) (nonce, ct []byte, err error) {
	nonce = make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	return nonce, g.Seal(nil, nonce, plaintext, ad), nil
}

func decrypt(key, nonce, ct, ad []byte) ([]byte, error) {
	g, err := gcm(key)
	if err != nil {
		return nil, err
	}
	return openWith(g, nonce, ct, ad)
}

func openWith(g cipher.AEAD, nonce, ct, ad []byte) ([]byte, error) {
	if len(nonce) != g.NonceSize() {
		return nil, errors.New("bad nonce")
	}
	pt, err := g.Open(nil, nonce, ct, ad)
	if err != nil {
		return nil, errors.New("ciphertext does not open: tampered, moved or wrong key")
	}
	return pt, nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
