package federation

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/node/store"
	"github.com/watchfed/watchfed/policy"
	"github.com/watchfed/watchfed/policy/seal"
	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
)

// These tests run the federation side of one node as it runs in a node: a
// real bbolt store, a real raft member (a one-voter federation, so no
// network), real sealing. The partner is a registry entry with keys the test
// holds: it publishes to this node, and opens what this node seals to it,
// exactly as a partner's node would.

const (
	self    = "DE-BAFA"
	partner = "FR-SBDU"
)

// fixedPolicy is a sharing policy set by the test.
type fixedPolicy struct {
	mu  sync.Mutex
	cur *policy.Policy
	gen uint64
	// edited is the file as edited and not yet read: Reload puts it in force.
	edited *policy.Policy
}

func (p *fixedPolicy) Current() *policy.Policy {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}
func (p *fixedPolicy) Generation() uint64 { p.mu.Lock(); defer p.mu.Unlock(); return p.gen }
func (p *fixedPolicy) Error() string      { return "" }
func (p *fixedPolicy) Reload(context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.edited != nil {
		p.cur, p.gen, p.edited = p.edited, p.gen+1, nil
	}
}

// edit changes the policy file: in force once the node reads it again.
func (p *fixedPolicy) edit(t *testing.T, src string) {
	t.Helper()
	pol, err := policy.Parse("policy.yaml", []byte(src), policy.Options{ValidID: record.ValidateAgencyID})
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.edited = pol
	p.mu.Unlock()
}

// set parses a policy file's text and puts it in force.
func (p *fixedPolicy) set(t *testing.T, src string) {
	t.Helper()
	pol, err := policy.Parse("policy.yaml", []byte(src), policy.Options{ValidID: record.ValidateAgencyID})
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.cur, p.gen = pol, p.gen+1
	p.mu.Unlock()
}

const shareWithPartner = "agency: DE-BAFA\ndefault: deny\npartners:\n  FR-SBDU:\n    kinds: [designation]\n    max_marking: AMBER\n    redact: [statement]\n"
const shareNothing = "agency: DE-BAFA\ndefault: deny\npartners: {}\n"

type harness struct {
	fed      *Federation
	store    *store.Store
	policy   *fixedPolicy
	partner  *seal.Keys
	mu       sync.Mutex
	received []*pb.Record
	// unstored: records handed to OnReceived before the store held them.
	unstored []string
	audited  []string
	appended []*pb.AuditEvent // events appended as they are (refusals)
	// partnerCA is the CA registered for the partner.
	partnerCA []byte
}

func (h *harness) auditLog() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.audited)
}

func testRaft() *raft.Config {
	c := replication.DefaultRaftConfig()
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 200 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

// start bootstraps a one-member federation, registers the partner (invited
// and, if joined, with its keys) and runs the loops until the test ends.
func start(t *testing.T, pol string, partnerJoined bool) *harness {
	t.Helper()
	return startWith(t, pol, partnerJoined, &tls.Config{}, []byte("DE-BAFA CA"), []byte("FR-SBDU CA"))
}

// startWith is start with the node's TLS configuration, its CA and the CA
// registered for the partner.
func startWith(t *testing.T, pol string, partnerJoined bool, tlsCfg *tls.Config, ca, partnerCA []byte) *harness {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "node.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{store: st, policy: &fixedPolicy{}, partnerCA: partnerCA}
	h.policy.set(t, pol)
	if h.partner, err = seal.GenerateKeys(); err != nil {
		t.Fatal(err)
	}
	h.fed, err = New(Config{
		Agency: self, Advertise: "127.0.0.1:1", TLS: tlsCfg, CACert: ca,
		KeysFile: filepath.Join(dir, "keys.pem"), RaftDir: filepath.Join(dir, "raft"), Raft: testRaft(),
	}, Deps{
		Store:  st,
		Policy: h.policy,
		Metrics: Metrics{
			Published: prometheus.NewCounter(prometheus.CounterOpts{Name: "p"}), Received: prometheus.NewCounter(prometheus.CounterOpts{Name: "r"}),
			PublishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "l"}),
		},
		OnReceived: func(r *pb.Record) {
			_, err := st.Shared(context.Background(), r.Id)
			h.mu.Lock()
			defer h.mu.Unlock()
			h.received = append(h.received, r)
			if err != nil {
				h.unstored = append(h.unstored, r.Id)
			}
		},
		Audit: func(_ context.Context, action, target, _ string) {
			h.mu.Lock()
			h.audited = append(h.audited, action+" "+target)
			h.mu.Unlock()
		},
		AppendAudit: func(ev *pb.AuditEvent) { h.mu.Lock(); h.appended = append(h.appended, ev); h.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	if err := h.fed.Bootstrap(ctx, h.fed.Self(true)); err != nil {
		t.Fatal(err)
	}
	loops, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.fed.Run(loops); close(done) }()
	t.Cleanup(func() {
		stop()
		<-done
		cancel()
		h.fed.Close()
		st.Close()
	})
	h.addPartner(t, ctx, !partnerJoined)
	h.waitProtocolSettled(t)
	return h
}

// waitProtocolSettled waits until the node's own writes after start are in
// the log: Run announces its binary's protocol versions, and commits their
// activation if every joined member announced them, on its next tick. A
// test that checks that nothing reached the log must not count them.
func (h *harness) waitProtocolSettled(t *testing.T) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		changed := h.fed.rep.Changed() // before the check: no change missed
		_, activate := h.fed.rep.ProtocolToActivate()
		if h.fed.rep.NextAnnouncement(self) == nil && !activate {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the node's protocol announcement or activation not in the log after 20s: %+v", h.fed.rep.Protocol())
		}
	}
}

// addPartner registers the partner: invited only, or joined with its keys.
func (h *harness) addPartner(t *testing.T, ctx context.Context, inviteOnly bool) {
	t.Helper()
	pub := h.partner.Public()
	m := &pb.Member{Agency: partner, Address: "127.0.0.1:2", CaCert: h.partnerCA, InvitedAt: timestamppb.Now()}
	if _, err := h.fed.Member(partner); err != nil {
		h.invite(t, ctx, m)
	}
	if inviteOnly {
		return
	}
	j := proto.Clone(m).(*pb.Member)
	j.SigningKey, j.SealingKey = pub.Signing, pub.Sealing
	// Signed as a joining node signs (required from protocol 3).
	h.apply(t, ctx, &peerpb.MemberChange{Change: &peerpb.MemberChange_Join{Join: j}, JoinSignature: ed25519.Sign(h.partner.Signing, replication.JoinMessage(j))})
}

// invite registers m: unsigned before protocol 3, from then on a proposal
// of this node's agency (applied at once: it is the only joined member).
// The protocol loop may activate 3 at any moment, so a refused unsigned
// invitation is proposed instead.
func (h *harness) invite(t *testing.T, ctx context.Context, m *pb.Member) {
	t.Helper()
	if !h.fed.GovernanceActive() {
		_, err := h.fed.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: &peerpb.MemberChange{Change: &peerpb.MemberChange_Invite{Invite: m}}}})
		if err == nil {
			return
		}
		if !h.fed.GovernanceActive() {
			t.Fatal(err)
		}
	}
	p, err := h.fed.Propose(ctx, &peerpb.Proposal{Change: &peerpb.Proposal_Invite{Invite: m}})
	if err != nil || p.State != replication.ProposalApplied {
		t.Fatalf("invite %s: %v, %v", m.Agency, p, err)
	}
}

func (h *harness) apply(t *testing.T, ctx context.Context, c *peerpb.MemberChange) {
	t.Helper()
	if _, err := h.fed.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_MemberChange{MemberChange: c}}); err != nil {
		t.Fatal(err)
	}
}

// write stores a designation as an analyst's write does, and waits for its
// publication's log index.
func (h *harness) write(t *testing.T, ctx context.Context, statement string) *pb.Record {
	t.Helper()
	now := time.Now().UTC()
	rec := &pb.Record{
		Id: record.NewID(self, now), Version: 1, Origin: self, Kind: pb.Kind_KIND_DESIGNATION, Marking: pb.Marking_MARKING_GREEN,
		Subject:   &pb.Subject{Schema: pb.Schema_SCHEMA_PERSON, Name: "Ivan Petrov"},
		Detail:    &pb.Record_Designation{Designation: &pb.Designation{Program: "RUSSIA-EO14024", Statement: statement}},
		CreatedAt: timestamppb.New(now), UpdatedAt: timestamppb.New(now),
	}
	wait, drop := h.fed.ExpectPublished(rec)
	if _, err := h.store.Put(ctx, rec, &pb.AuditEvent{Action: "test"}); err != nil {
		drop()
		t.Fatal(err)
	}
	if idx := wait(ctx); idx == 0 {
		t.Fatalf("%s: no log index before the deadline", rec.Id)
	}
	return rec
}

// partnerReads opens, as the partner would, what the log holds for it of an
// entry: the record after redaction, or nil if nothing is sealed to it.
func (h *harness) partnerReads(t *testing.T, id string) *pb.Record {
	t.Helper()
	opener := seal.NewOpener(partner, h.partner)
	es, err := h.fed.rep.Entries(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[uint64][]byte{}
	epochKey := func(_ string, epoch uint64) ([]byte, bool) { k, ok := keys[epoch]; return k, ok }
	var got *pb.Record
	open := func(plain []byte) {
		got = &pb.Record{}
		if err := proto.Unmarshal(plain, got); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range es {
		for _, g := range e.Body.EpochGrants {
			if g.Recipient == partner {
				k, err := opener.OpenEpochGrant(g)
				if err != nil {
					t.Fatalf("epoch grant: %v", err)
				}
				keys[g.Epoch] = k
			}
		}
		for _, env := range e.Body.Envelopes {
			for i, b := range env.Bodies {
				if env.Header.EntryId != id || !slices.Contains(b.Recipients, partner) {
					continue
				}
				plain, err := opener.OpenBody(env.Header, uint32(i), b, epochKey)
				if err != nil {
					t.Fatalf("body of %s: %v", id, err)
				}
				open(plain)
			}
		}
		for _, g := range e.Body.KeyGrants {
			if g.EntryId != id || g.GetKey().GetRecipient() != partner {
				continue
			}
			env, err := h.fed.rep.Envelope(g.EntryId, g.Version)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := opener.OpenGranted(env.Header, env.Bodies[g.BodyIndex], g, epochKey)
			if err != nil {
				t.Fatalf("granted body of %s: %v", id, err)
			}
			open(plain)
		}
	}
	return got
}

// TestPublish: a written record reaches the log sealed as the policy says:
// the partner opens it with the statement of reasons redacted, and the
// version leaves the outbox.
func TestPublish(t *testing.T) {
	h := start(t, shareWithPartner, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec := h.write(t, ctx, "secret reasons")
	got := h.partnerReads(t, rec.Id)
	if got == nil {
		t.Fatalf("%s: nothing sealed to %s", rec.Id, partner)
	}
	if got.GetSubject().GetName() != "Ivan Petrov" || got.GetDesignation().GetStatement() != "" {
		t.Fatalf("partner reads name %q, statement %q; want the name and no statement", got.GetSubject().GetName(), got.GetDesignation().GetStatement())
	}
	waitUntil(t, ctx, func() bool {
		out, err := h.store.Outbox(ctx, 10)
		return err == nil && len(out) == 0
	}, "the outbox to empty")
	if held, err := h.fed.Holds(rec.Id); err != nil || held[partner] != 1 {
		t.Fatalf("holds = %v, %v; want %s at version 1", held, err, partner)
	}
}

// TestReceive: the entries of a partner's publications sealed to this
// agency are taken in, in log order, whether a publication holds one or
// enough to be opened in parts, and handed to OnReceived only once stored.
func TestReceive(t *testing.T) {
	for _, tc := range []struct{ n, pubs int }{{1, 1}, {3*openPartMin + 5, 1}, {3 * 40, 3}} {
		n := tc.n
		t.Run(fmt.Sprintf("%d entries in %d publications", n, tc.pubs), func(t *testing.T) {
			h := start(t, shareNothing, true)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			now := time.Now().UTC()
			me := h.fed.Self(true)
			var items []seal.Item
			var ids []string
			for i := range n {
				rec := &pb.Record{
					Id: record.NewID(partner, now.Add(time.Duration(i)*time.Millisecond)), Version: 1, Origin: partner, Kind: pb.Kind_KIND_DESIGNATION, Marking: pb.Marking_MARKING_GREEN,
					Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: fmt.Sprintf("Acme Trading %d", i)},
					Detail:  &pb.Record_Designation{Designation: &pb.Designation{Program: "IRAN"}},
				}
				plain, err := proto.Marshal(rec)
				if err != nil {
					t.Fatal(err)
				}
				items = append(items, seal.Item{
					Header: &peerpb.EnvelopeHeader{EntryId: rec.Id, Version: 1, Kind: rec.Kind, Marking: rec.Marking},
					Bodies: []seal.BodyPlain{{Recipients: []string{self}, Plaintext: plain}},
				})
				ids = append(ids, rec.Id)
			}
			sealer := seal.NewSealer(partner, h.partner)
			per := n / tc.pubs
			idxOf := make([]uint64, n) // the log index each entry was published at
			var idx uint64
			for p := range tc.pubs {
				pub, err := sealer.Seal(items[p*per:(p+1)*per], map[string]seal.Recipient{self: {SealingKey: me.SealingKey, Epoch: 1}})
				if err != nil {
					t.Fatal(err)
				}
				if idx, err = h.fed.Apply(ctx, &peerpb.Command{Command: &peerpb.Command_Publication{Publication: pub}}); err != nil {
					t.Fatal(err)
				}
				for i := p * per; i < (p+1)*per; i++ {
					idxOf[i] = idx
				}
			}
			waitUntil(t, ctx, func() bool {
				got, err := h.store.ReceivedIndex()
				return err == nil && got >= idx
			}, "the entries to be taken in")
			for i, id := range ids {
				e, err := h.store.Shared(ctx, id)
				if err != nil {
					t.Fatalf("shared entry %s: %v", id, err)
				}
				if want := fmt.Sprintf("Acme Trading %d", i); e.Origin != partner || e.Record.GetSubject().GetName() != want || e.LogIndex != idxOf[i] {
					t.Fatalf("stored %v, want %s at index %d", e, want, idxOf[i])
				}
			}
			// OnReceived follows the store's write, in the publication's order.
			waitUntil(t, ctx, func() bool {
				h.mu.Lock()
				defer h.mu.Unlock()
				return len(h.received) == n
			}, "OnReceived to see the entries")
			h.mu.Lock()
			defer h.mu.Unlock()
			for i, rec := range h.received {
				if rec.Id != ids[i] {
					t.Fatalf("OnReceived's entry %d is %s, want %s", i, rec.Id, ids[i])
				}
			}
			if len(h.unstored) > 0 {
				t.Fatalf("OnReceived saw %d entries before the store held them (first %s)", len(h.unstored), h.unstored[0])
			}
		})
	}
}

// TestCatchUp: entries published while the partner was only invited reach
// it by key grants once it joins, and the delivery is audited.
func TestCatchUp(t *testing.T) {
	h := start(t, shareWithPartner, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := h.write(t, ctx, "first")
	b := h.write(t, ctx, "second")
	if h.partnerReads(t, a.Id) != nil {
		t.Fatalf("%s was sealed to %s before it joined", a.Id, partner)
	}
	h.addPartner(t, ctx, false)
	h.fed.WakeUp()
	for _, rec := range []*pb.Record{a, b} {
		waitUntil(t, ctx, func() bool {
			held, err := h.fed.Holds(rec.Id)
			return err == nil && held[partner] == 1
		}, rec.Id+" to reach "+partner)
		got := h.partnerReads(t, rec.Id)
		if got == nil || got.GetDesignation().GetStatement() != "" {
			t.Fatalf("%s: partner reads %v, want the record without its statement", rec.Id, got)
		}
	}
	waitUntil(t, ctx, func() bool { return slices.Contains(h.auditLog(), "policy.deliver "+partner) }, "the delivery's audit event")
}

func waitUntil(t *testing.T, ctx context.Context, cond func() bool, what string) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
