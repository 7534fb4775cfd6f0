package replication

import (
	"io"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Reads of the replicated state (the FSM), for the node. Each is the FSM's
// own method: the FSM stays inside the replicator, so nothing outside can
// apply to it or restore it behind raft's back.

// Members is the member registry, ordered by agency.
func (r *Replicator) Members() ([]*pb.Member, error) { return r.fsm.Members() }

// Bound reports whether an agency id is bound to a CA and keys (registered
// under protocol 3, a member now or not).
func (r *Replicator) Bound(agency string) bool { return r.fsm.Bound(agency) }

// Member is one agency's registry entry.
func (r *Replicator) Member(agency string) (*pb.Member, error) { return r.fsm.Member(agency) }

// Applied is the index of the last entry applied to the state.
func (r *Replicator) Applied() uint64 { return r.fsm.Applied() }

// Changed returns a channel closed at the next applied entry.
func (r *Replicator) Changed() <-chan struct{} { return r.fsm.Changed() }

// Entries returns up to limit accepted publications with index > after, in log order.
func (r *Replicator) Entries(after uint64, limit int) ([]Entry, error) {
	return r.fsm.Entries(after, limit)
}

// LastEntry is the index of the last stored entry at or below index (0 if none).
func (r *Replicator) LastEntry(index uint64) (uint64, error) { return r.fsm.LastEntry(index) }

// Envelope is the published envelope of an entry version; it is shared with
// other callers: read it, do not change it.
func (r *Replicator) Envelope(id string, version uint64) (*peerpb.Envelope, error) {
	return r.fsm.Envelope(id, version)
}

// Granted reports whether the origin→recipient key of an epoch has travelled.
func (r *Replicator) Granted(origin, recipient string, epoch uint64) bool {
	return r.fsm.Granted(origin, recipient, epoch)
}

// Grantees are the agencies granted an entry version after it was published,
// in name order.
func (r *Replicator) Grantees(id string, version uint64) ([]string, error) {
	return r.fsm.Grantees(id, version)
}

// StateHash hashes the replicated state and gives the index it was taken at.
func (r *Replicator) StateHash() (index uint64, sum []byte, err error) { return r.fsm.StateHash() }

// Backup writes a consistent copy of the state's file (fsm.db) to w.
func (r *Replicator) Backup(w io.Writer) (int64, error) { return r.fsm.Backup(w) }

// EntriesFor is Entries for one agency's reader: publications whose encoded
// body does not contain the agency's id come back empty, undecoded.
func (r *Replicator) EntriesFor(after uint64, limit int, agency string) ([]Entry, error) {
	return r.fsm.EntriesFor(after, limit, agency)
}

// EntriesFrom is Entries for what one agency published: publications from
// other origins come back empty, undecoded.
func (r *Replicator) EntriesFrom(after uint64, limit int, origin string) ([]Entry, error) {
	return r.fsm.EntriesFrom(after, limit, origin)
}
