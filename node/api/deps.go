package api

import (
	"context"
	"io"
	"time"

	"google.golang.org/grpc"

	"github.com/watchfed/watchfed/node/anchor"
	"github.com/watchfed/watchfed/node/screen"
	"github.com/watchfed/watchfed/node/store"
	"github.com/watchfed/watchfed/policy"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
)

// The parts of the node the services work through. node/store's Store is
// RecordStore, SharedStore and AuditLog; node/federation's Federation is
// Publisher, Freshness, Holders, Holdings and Membership.

// RecordStore holds this agency's records, every version kept.
type RecordStore interface {
	Current(ctx context.Context, id string) (*pb.Record, error)
	Version(ctx context.Context, id string, version uint64) (*pb.Record, error)
	At(ctx context.Context, id string, t time.Time) (*pb.Record, error)
	History(ctx context.Context, id string) ([]*pb.Record, error)
	List(ctx context.Context, opts store.ListOptions) ([]*pb.Record, string, error)
	// Put and PutBatch store versions with their audit events in one transaction.
	Put(ctx context.Context, rec *pb.Record, ev *pb.AuditEvent) (*pb.AuditEvent, error)
	PutBatch(ctx context.Context, recs []*pb.Record, evs []*pb.AuditEvent) ([]*pb.AuditEvent, error)
}

// SharedStore holds the entries partners shared with this agency.
type SharedStore interface {
	Shared(ctx context.Context, id string) (*pb.SharedEntry, error)
	SharedHistory(ctx context.Context, id string) ([]*pb.SharedEntry, error)
	SharedList(ctx context.Context, opts store.SharedListOptions) ([]*pb.SharedEntry, string, error)
	SharedFrom(ctx context.Context, index uint64, position uint32, maxBytes int) ([]*pb.SharedEntry, error)
	// ReceivedIndex is the log index up to which entries were taken in.
	ReceivedIndex() (uint64, error)
}

// AuditLog is the node's hash-chained audit log.
type AuditLog interface {
	AppendAudit(ctx context.Context, ev *pb.AuditEvent) (*pb.AuditEvent, error)
	ListAudit(ctx context.Context, afterSeq uint64, limit int) ([]*pb.AuditEvent, error)
	VerifyAudit(ctx context.Context) (store.VerifyResult, error)
	CheckAnchor(ctx context.Context, res store.VerifyResult, a store.Anchor) (store.VerifyResult, error)
}

// AuditAnchors are heads of audit chains anchored outside node.db
// (node/anchor).
type AuditAnchors interface {
	// Own are the last anchors of this node's chain, to verify it against.
	Own() ([]store.Anchor, error)
	// Held are the anchors the replicated state holds for agency ("" for
	// every member), oldest first.
	Held(agency string) ([]replication.Anchor, error)
	// AcceptRestore accepts a restore from a backup (anchor.Anchorer).
	AcceptRestore(ctx context.Context) (anchor.Accepted, error)
}

// Publisher publishes written versions to the federation.
type Publisher interface {
	// ExpectPublished registers, before a version is stored, a wait for its
	// log index (0 if none within the wait's context), and a drop for a
	// write that did not happen.
	ExpectPublished(rec *pb.Record) (wait func(context.Context) uint64, drop func())
	// WakeUp asks the publish loop for a round now.
	WakeUp()
	// LastIndex is the last index in this node's raft log.
	LastIndex() uint64
}

// Freshness lets a read wait until this node has taken in the log far enough.
type Freshness interface {
	// Received returns a channel closed when new entries were taken in.
	Received() <-chan struct{}
	// Barrier waits until every write acknowledged before it is taken in here.
	Barrier(ctx context.Context) error
	// Diverged says why this node's replicated state differs from the
	// federation's after a rebuild ("" if it does not).
	Diverged() string
}

// Holders says which agencies can read a version of a partner's entry.
type Holders interface {
	Holders(id string, version uint64) ([]string, error)
}

// Holdings says what partners can read of this agency's entries, and who
// the members are.
type Holdings interface {
	Holds(id string) (map[string]uint64, error)
	Members() ([]*pb.Member, error)
}

// Membership is the federation as its operators manage it.
type Membership interface {
	Invitation() *pb.Invitation
	Self(voter bool) *pb.Member
	Joined() bool
	Bootstrap(ctx context.Context, self *pb.Member) error
	// Invite and Remove change the member registry; their errors are gRPC statuses.
	Invite(ctx context.Context, m *pb.Member) (uint64, error)
	Remove(ctx context.Context, agency string) (uint64, error)
	Member(agency string) (*pb.Member, error)
	Members() ([]*pb.Member, error)
	IsLeader() bool
	Leader() (id, addr string)
	Voters() (map[string]bool, error)
	TransferLeadership(id, addr string) error
	Status() *pb.GetStatusResponse
	StateHash() (uint64, []byte, error)
	PeerStatus(ctx context.Context, addr string) (*pb.GetStatusResponse, error)
}

// Peers lists the federation's members as this node knows them: each
// asked for its status, an unreachable one with its last known state.
type Peers interface {
	Poll(ctx context.Context) ([]*pb.Peer, error)
}

// Index is the screening index.
type Index interface {
	// Current is the index of what is in force now.
	Current() *screen.Index
	// AsOf builds an index of what was in force at t.
	AsOf(ctx context.Context, t time.Time) (*screen.Index, error)
	// Follow keeps the index in step with a written or received version.
	Follow(rec *pb.Record, shared bool)
}

// Policy is the sharing policy in force.
type Policy interface {
	Current() *policy.Policy // never nil
	Error() string           // why the last file was refused, if it was
}

// Federation is what node/federation gives the services.
type Federation interface {
	Publisher
	Freshness
	Holders
	Holdings
	Membership
	Governance
}

// Store is what node/store gives the services.
type Store interface {
	RecordStore
	SharedStore
	AuditLog
}

// Config is what Register needs: the node's settings and its parts.
type Config struct {
	Agency     string
	PolicyFile string
	Holidays   []string
	// PublishWait bounds how long a write waits for its entry to commit.
	PublishWait time.Duration
	// AckBeforeCommit is the reliability checker's deliberate bug (test builds).
	AckBeforeCommit bool
	Now             func() time.Time

	Store      Store
	Federation Federation
	Peers      Peers
	Index      Index
	Policy     Policy
	Anchors    AuditAnchors
	// Backup writes the node's backup archive.
	Backup func(io.Writer) error
	// Closing is closed when the node stops (it ends Watch streams).
	Closing     <-chan struct{}
	MaxWatchers int
}

// Register adds the public services to the node's server. guard is the
// interceptors' guard (NewGuard), whose audit log the handlers write to too.
func Register(s *grpc.Server, g *Guard, c Config) {
	a := &g.auditor
	w := writer{audit: a, records: c.Store, pub: c.Federation, index: c.Index, agency: c.Agency, now: c.Now,
		publishWait: c.PublishWait, ackEarly: c.AckBeforeCommit, joined: c.Federation.Joined}
	pb.RegisterRecordServiceServer(s, &recordService{writer: w})
	pb.RegisterScreeningServiceServer(s, &screeningService{audit: a, records: c.Store, shared: c.Store, index: c.Index, policy: c.Policy, now: c.Now})
	pb.RegisterImportServiceServer(s, &importService{writer: w})
	pb.RegisterAuditServiceServer(s, &auditService{audit: a, log: c.Store, anchors: c.Anchors})
	pb.RegisterFederationServiceServer(s, &federationService{audit: a, fed: c.Federation, gov: c.Federation, peers: c.Peers, agency: c.Agency, now: c.Now, backup: c.Backup, anchors: c.Anchors})
	pb.RegisterSharedServiceServer(s, &sharedService{audit: a, shared: c.Store, fresh: c.Federation, policy: c.Policy,
		closing: c.Closing, watchers: make(chan struct{}, max(c.MaxWatchers, 1))})
	pb.RegisterPolicyServiceServer(s, &policyService{audit: a, records: c.Store, shared: c.Store, policy: c.Policy, fed: c.Federation,
		agency: c.Agency, policyFile: c.PolicyFile})
	pb.RegisterConsultationServiceServer(s, &consultService{writer: w, shared: c.Store, holders: c.Federation, holidays: c.Holidays})
}

// writer is the write path the record, consultation and import services
// share: store a version with its audit event, keep the screening index in
// step, and wait (up to publishWait) for the version's entry to commit.
type writer struct {
	audit       *auditor
	records     RecordStore
	pub         Publisher
	index       Index
	agency      string
	now         func() time.Time
	publishWait time.Duration
	ackEarly    bool
	joined      func() bool // whether the node is in a federation (nil: never)
}

// notShared reports a write whose entry should be in the log by now and is
// not: the node is in a federation, the record is to be shared, and no
// log index came within the publish wait.
func (w *writer) notShared(rec *pb.Record, logIndex uint64) bool {
	return logIndex == 0 && !rec.GetLocal() && w.joined != nil && w.joined()
}
