package seal

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

type agency struct {
	name string
	keys *Keys
	ek   map[string][]byte // origin/epoch → epoch key received
}

func newAgency(t testing.TB, name string) *agency {
	t.Helper()
	k, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	return &agency{name: name, keys: k, ek: map[string][]byte{}}
}

// receive processes a publication as a member's node would.
func (a *agency) receive(t testing.TB, pub *peerpb.Publication, origin *agency) *peerpb.PublicationBody {
	t.Helper()
	body, err := Verify(pub, origin.keys.Public().Signing)
	if err != nil {
		t.Fatal(err)
	}
	o := NewOpener(a.name, a.keys)
	for _, g := range body.EpochGrants {
		k, err := o.OpenEpochGrant(g)
		if err == ErrNotRecipient {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		a.ek[fmt.Sprintf("%s/%d", g.Origin, g.Epoch)] = k
	}
	return body
}

func (a *agency) keysFn() EpochKeys {
	return func(origin string, epoch uint64) ([]byte, bool) {
		k, ok := a.ek[fmt.Sprintf("%s/%d", origin, epoch)]
		return k, ok
	}
}

func recipients(as ...*agency) map[string]Recipient {
	m := map[string]Recipient{}
	for _, a := range as {
		m[a.name] = Recipient{SealingKey: a.keys.Public().Sealing, Epoch: 1}
	}
	return m
}

func header(id string) *peerpb.EnvelopeHeader {
	return &peerpb.EnvelopeHeader{EntryId: id, Version: 1, Kind: pb.Kind_KIND_DESIGNATION, Marking: pb.Marking_MARKING_AMBER}
}

func TestSealOpenAcrossRecipients(t *testing.T) {
	de, fr, us, jp := newAgency(t, "DE"), newAgency(t, "FR"), newAgency(t, "US"), newAgency(t, "JP")
	full, redacted := []byte("FULL: Ivan PETROV, statement of reasons"), []byte("REDACTED: Ivan PETROV")
	item := Item{Header: header("DE/1"), Bodies: []BodyPlain{{Recipients: []string{"FR"}, Plaintext: full}, {Recipients: []string{"US"}, Plaintext: redacted}}}
	pub, err := NewSealer("DE", de.keys).Seal([]Item{item}, recipients(fr, us, jp))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := proto.Marshal(pub)
	if bytes.Contains(raw, []byte("PETROV")) {
		t.Fatal("plaintext visible in the marshalled publication")
	}
	cases := []struct {
		who  *agency
		body uint32
		want []byte
	}{{fr, 0, full}, {us, 1, redacted}}
	for _, a := range []*agency{fr, us, jp} {
		a.receive(t, pub, de)
	}
	body, _ := Verify(pub, de.keys.Public().Signing)
	env := body.Envelopes[0]
	if got := env.Header.Recipients; len(got) != 2 || got[0] != "FR" || got[1] != "US" {
		t.Fatalf("header recipients %v", got)
	}
	for _, tc := range cases {
		got, err := NewOpener(tc.who.name, tc.who.keys).OpenBody(env.Header, tc.body, env.Bodies[tc.body], tc.who.keysFn())
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Fatalf("%s opens body %d: %q, %v", tc.who.name, tc.body, got, err)
		}
	}
	// FR cannot open US's body, JP (a member, not a recipient) opens nothing.
	if _, err := NewOpener("FR", fr.keys).OpenBody(env.Header, 1, env.Bodies[1], fr.keysFn()); err != ErrNotRecipient {
		t.Fatalf("FR opened US's body: %v", err)
	}
	for i, b := range env.Bodies {
		if _, err := NewOpener("JP", jp.keys).OpenBody(env.Header, uint32(i), b, jp.keysFn()); err == nil {
			t.Fatal("a non-recipient opened a body")
		}
	}
	if len(jp.ek) != 0 {
		t.Fatal("JP received an epoch key not meant for it")
	}
	// A body moved under another header does not open.
	moved := proto.Clone(env.Header).(*peerpb.EnvelopeHeader)
	moved.EntryId = "DE/2"
	if _, err := NewOpener("FR", fr.keys).OpenBody(moved, 0, env.Bodies[0], fr.keysFn()); err == nil {
		t.Fatal("body opened under another header")
	}
}

func TestForgeryAndTampering(t *testing.T) {
	de, fr, mallory := newAgency(t, "DE"), newAgency(t, "FR"), newAgency(t, "DE")
	item := Item{Header: header("DE/1"), Bodies: []BodyPlain{{Recipients: []string{"FR"}, Plaintext: []byte("x")}}}
	forged, err := NewSealer("DE", mallory.keys).Seal([]Item{item}, recipients(fr))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(forged, de.keys.Public().Signing); err == nil {
		t.Fatal("publication signed by another key verified")
	}
	pub, _ := NewSealer("DE", de.keys).Seal([]Item{item}, recipients(fr))
	for i := range pub.Body {
		tampered := proto.Clone(pub).(*peerpb.Publication)
		tampered.Body[i] ^= 0x01
		if _, err := Verify(tampered, de.keys.Public().Signing); err == nil {
			t.Fatalf("flipped byte %d of the body still verifies", i)
		}
	}
	relabelled := proto.Clone(pub).(*peerpb.Publication)
	relabelled.Origin = "FR"
	if _, err := Verify(relabelled, de.keys.Public().Signing); err == nil {
		t.Fatal("publication with a changed origin verified")
	}
}

func TestOneKEMPerRecipientAndKeyGrant(t *testing.T) {
	de, fr, us, it, gb := newAgency(t, "DE"), newAgency(t, "FR"), newAgency(t, "US"), newAgency(t, "IT"), newAgency(t, "GB")
	s := NewSealer("DE", de.keys)
	var items []Item
	for i := 0; i < 1000; i++ {
		items = append(items, Item{Header: header(fmt.Sprintf("DE/%d", i)), Bodies: []BodyPlain{{Recipients: []string{"FR", "US", "IT", "GB"}, Plaintext: []byte(fmt.Sprint("record ", i))}}})
	}
	rcpt := recipients(fr, us, it, gb)
	pub, err := s.Seal(items, rcpt)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := Verify(pub, de.keys.Public().Signing)
	if len(body.EpochGrants) != 4 {
		t.Fatalf("%d epoch grants for 1000 items to 4 recipients, want 4", len(body.EpochGrants))
	}
	for r, rc := range rcpt {
		rc.Granted = true
		rcpt[r] = rc
	}
	again, _ := s.Seal(items[:10], rcpt)
	if b, _ := Verify(again, de.keys.Public().Signing); len(b.EpochGrants) != 0 {
		t.Fatalf("%d epoch grants when all were granted", len(b.EpochGrants))
	}

	// A newcomer gets an old body by a key grant, without a re-send.
	jp := newAgency(t, "JP")
	env := body.Envelopes[7]
	gpub, err := s.Grant([]GrantRef{{Header: env.Header, Index: 0, Body: env.Bodies[0]}}, "JP", Recipient{SealingKey: jp.keys.Public().Sealing, Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	gbody := jp.receive(t, gpub, de)
	if len(gbody.Envelopes) != 0 || len(gbody.KeyGrants) != 1 {
		t.Fatalf("grant publication: %d envelopes, %d key grants", len(gbody.Envelopes), len(gbody.KeyGrants))
	}
	got, err := NewOpener("JP", jp.keys).OpenGranted(env.Header, env.Bodies[0], gbody.KeyGrants[0], jp.keysFn())
	if err != nil || string(got) != "record 7" {
		t.Fatalf("newcomer opens granted body: %q, %v", got, err)
	}
}

func TestKeysRoundTrip(t *testing.T) {
	k, _ := GenerateKeys()
	b, err := MarshalKeys(k)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := UnmarshalKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.Public().Sealing, k2.Public().Sealing) || !bytes.Equal(k.Public().Signing, k2.Public().Signing) || !bytes.Equal(k.Master, k2.Master) {
		t.Fatal("keys changed in a round trip")
	}
	if _, err := UnmarshalKeys([]byte("garbage")); err == nil {
		t.Fatal("garbage key file accepted")
	}
}

func FuzzVerify(f *testing.F) {
	de, _ := GenerateKeys()
	fr, _ := GenerateKeys()
	pub, _ := NewSealer("DE", de).Seal([]Item{{Header: header("DE/1"), Bodies: []BodyPlain{{Recipients: []string{"FR"}, Plaintext: []byte("x")}}}},
		map[string]Recipient{"FR": {SealingKey: fr.Public().Sealing, Epoch: 1}})
	raw, _ := proto.Marshal(pub)
	f.Add(raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &peerpb.Publication{}
		if proto.Unmarshal(data, p) != nil {
			return
		}
		_, _ = Verify(p, de.Public().Signing)
	})
}

func BenchmarkSeal(b *testing.B) {
	de := newAgency(b, "DE")
	rcpt := map[string]Recipient{}
	for _, n := range []string{"FR", "US", "IT", "GB"} {
		a := newAgency(b, n)
		rcpt[n] = Recipient{SealingKey: a.keys.Public().Sealing, Epoch: 1, Granted: true}
	}
	plain := bytes.Repeat([]byte("x"), 1024)
	items := make([]Item, 1000)
	for i := range items {
		items[i] = Item{Header: header(fmt.Sprintf("DE/%d", i)), Bodies: []BodyPlain{{Recipients: []string{"FR", "US", "IT", "GB"}, Plaintext: plain}}}
	}
	s := NewSealer("DE", de.keys)
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Seal(items, rcpt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "records/s")
}

// FuzzOpen: a publication from the log, whatever its bytes, is verified
// and opened by a recipient without a panic; what opens is what was sealed.
func FuzzOpen(f *testing.F) {
	de, _ := GenerateKeys()
	fr, _ := GenerateKeys()
	pub, _ := NewSealer("DE", de).Seal([]Item{{Header: header("DE/1"), Bodies: []BodyPlain{{Recipients: []string{"FR"}, Plaintext: []byte("sealed")}}}},
		map[string]Recipient{"FR": {SealingKey: fr.Public().Sealing, Epoch: 1}})
	raw, _ := proto.Marshal(pub)
	f.Add(raw)
	opener := NewOpener("FR", fr)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &peerpb.Publication{}
		if proto.Unmarshal(data, p) != nil {
			return
		}
		body, err := Verify(p, de.Public().Signing)
		if err != nil {
			return
		}
		keys := map[string][]byte{}
		for _, g := range body.GetEpochGrants() {
			if k, err := opener.OpenEpochGrant(g); err == nil {
				keys[fmt.Sprint(g.Origin, "/", g.Epoch)] = k
			}
		}
		lookup := func(origin string, epoch uint64) ([]byte, bool) {
			k, ok := keys[fmt.Sprint(origin, "/", epoch)]
			return k, ok
		}
		for _, env := range body.GetEnvelopes() {
			for i, b := range env.GetBodies() {
				if plain, err := opener.OpenBody(env.GetHeader(), uint32(i), b, lookup); err == nil && string(plain) != "sealed" {
					t.Fatalf("opened %q, which DE never sealed", plain)
				}
			}
		}
	})
}

// TestSealCommandAsMarshal: SealCommand's command is, byte for byte, what
// proto.Marshal makes of a Command holding its publication, for small and
// MB publications (every varint width of the lengths); the publication
// verifies, with its body inside the command, and the body returned is
// the one signed.
func TestSealCommandAsMarshal(t *testing.T) {
	de := newAgency(t, "DE")
	fr := newAgency(t, "FR")
	rcpt := map[string]Recipient{"FR": {SealingKey: fr.keys.Public().Sealing, Epoch: 1}}
	s := NewSealer("DE", de.keys)
	for _, n := range []int{1, 3, 200, 3000} {
		items := make([]Item, n)
		for i := range items {
			items[i] = Item{Header: header(fmt.Sprintf("DE/%d", i)), Bodies: []BodyPlain{{Recipients: []string{"FR"}, Plaintext: bytes.Repeat([]byte("p"), 300)}}}
		}
		cmd, pub, body, err := s.SealCommand(items, rcpt)
		if err != nil {
			t.Fatal(err)
		}
		want, err := proto.Marshal(&peerpb.Command{Command: &peerpb.Command_Publication{Publication: pub}})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(cmd, want) {
			t.Fatalf("%d items: command of %d bytes differs from proto.Marshal's %d", n, len(cmd), len(want))
		}
		if b := pub.GetBody(); &b[0] != &cmd[bytes.Index(cmd, b)] || cap(b) != len(b) {
			t.Fatalf("%d items: the publication's body is not the command's own bytes", n)
		}
		got, err := Verify(pub, de.keys.Public().Signing)
		if err != nil {
			t.Fatalf("%d items: %v", n, err)
		}
		if !proto.Equal(got, body) {
			t.Fatalf("%d items: the body returned is not the one signed", n)
		}
	}
}

// BenchmarkSealCommand: a publication of 1,000 records sealed for one
// partner and encoded as its command: the body marshalled and then the
// command around it, or marshalled once in place (SealCommand).
func BenchmarkSealCommand(b *testing.B) {
	de := newAgency(b, "DE")
	fr := newAgency(b, "FR")
	rcpt := map[string]Recipient{"FR": {SealingKey: fr.keys.Public().Sealing, Epoch: 1, Granted: true}}
	items := make([]Item, 1000)
	for i := range items {
		items[i] = Item{Header: header(fmt.Sprintf("DE/%d", i)), Bodies: []BodyPlain{{Recipients: []string{"FR"}, Plaintext: bytes.Repeat([]byte("x"), 600)}}}
	}
	s := NewSealer("DE", de.keys)
	b.Run("body-then-command", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			pub, _, err := s.SealBody(items, rcpt)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := proto.Marshal(&peerpb.Command{Command: &peerpb.Command_Publication{Publication: pub}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("command", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, err := s.SealCommand(items, rcpt); err != nil {
				b.Fatal(err)
			}
		}
	})
}
