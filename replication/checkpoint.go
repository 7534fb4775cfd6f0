package replication

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Checkpoints (protocol 4) find a member whose replicated state differs from
// the federation's, whatever made it differ (a damaged or edited fsm.db, a
// bug). A checkpoint is a take the leader commits (checkpointer.go) and the
// reports of the voters:
//
//   - a take (Checkpoint without index): every FSM hashes its replicated
//     state as it stands before that entry, inside the transaction that
//     applies it, so entries applied earlier in the same batch are in the
//     hash and later ones are not, on every node alike; it keeps the hash
//     under meta/checkpoint_taken (its own), and the take's preceding index
//     under meta/checkpoint_take (replicated).
//   - reports (Checkpoint{index, state_hash, agency, signature}): each
//     voter's node reports the hash it took, signed by its agency, through
//     the leader. Every FSM checks the signature against the registry and
//     counts the reports of the current take; the report with which a
//     majority of the joined voters agree on one hash decides the
//     checkpoint, at the same entry on every FSM, and each compares the hash
//     it took with the majority's.
//
// The hash covers what the log determines: every bucket, key and value but
// the node's own bookkeeping under meta (the applied mark, which counts the
// raft entries a node happened to be handed, the file format and the taken
// hash). A member that disagrees sets its state aside and rebuilds it from
// its snapshot and log (checkrepair.go); if it still disagrees it is
// diverged: it says so and its node stops serving shared reads.
//
// The majority's hash is the reference, not the leader's: a leader whose own
// state was damaged is the one that disagrees and rebuilds, while its
// honest followers agree; and a leader cannot report for another agency.
// With no majority on one hash (voters split, or too few report before the
// next take) nothing is decided. The reports are checked against the
// registry in the state: a member whose registry itself was edited may not
// verify them and so not decide (a damaged one is found by the checksums).

// ProtocolCheckpoints is the protocol version from which checkpoints apply.
const ProtocolCheckpoints = 4

var (
	keyCheckpointTaken = []byte("checkpoint_taken") // be64(index) sha256: this FSM's own hash
	// The current take's preceding index, and that index once decided
	// (replicated state).
	keyCheckpointTake    = []byte("checkpoint_take")
	keyCheckpointDecided = []byte("checkpoint_decided")
	// agency → state hash: the reports of the current take (replicated).
	bucketCheckpointReports = []byte("checkpoint_reports")
)

// nodeLocalMeta are the meta keys that are not replicated state.
var nodeLocalMeta = [][]byte{keyApplied, keyFormat, keyCheckpointTaken}

// CheckpointMessage is what an agency signs to report its state hash.
func CheckpointMessage(c *peerpb.Checkpoint) []byte {
	b := []byte("watchfed checkpoint report\x00")
	b = append(append(b, c.GetAgency()...), 0)
	b = binary.BigEndian.AppendUint64(b, c.GetIndex())
	return append(b, c.GetStateHash()...)
}

// contentHash is the SHA-256 of the replicated state in tx.
func contentHash(tx *bolt.Tx) ([]byte, error) {
	h := newFieldHash()
	err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		h.field(name)
		return forEachFramed(b, func(k, v []byte) error {
			if bytes.Equal(name, bucketMeta) && isNodeLocal(k) {
				return nil
			}
			h.field(k)
			h.field(val(tx, name, k, v)) // bare: the hash is of content, not of its framing
			return nil
		})
	})
	return h.Sum(nil), err
}

func isNodeLocal(k []byte) bool {
	for _, l := range nodeLocalMeta {
		if bytes.Equal(k, l) {
			return true
		}
	}
	return false
}

// checkResult is a compare applied in the last transaction: the take's
// index, the majority's hash and whether this FSM agreed.
type checkResult struct {
	at, index uint64 // the take's preceding index; the compare's own index
	want, own []byte
	agreed    bool
}

// CheckpointState is what this FSM knows of checkpoints.
type CheckpointState struct {
	LastIndex     uint64 // the last compare applied
	Disagreements uint64 // compares that disagreed with this FSM's hash
	Diverged      string // why the state still differs after a rebuild; "" if it does not
}

func (f *FSM) applyCheckpoint(tx *bolt.Tx, index uint64, c *peerpb.Checkpoint) error {
	if v, _ := protocolOf(tx); v < ProtocolCheckpoints {
		return fmt.Errorf("%w: checkpoint: protocol %d is active, checkpoints need %d", ErrRejected, v, ProtocolCheckpoints)
	}
	meta := tx.Bucket(bucketMeta)
	if c.GetIndex() == 0 {
		if len(c.GetStateHash()) != 0 || c.GetAgency() != "" || len(c.GetSignature()) != 0 {
			return fmt.Errorf("%w: checkpoint take with a state hash or an agency", ErrRejected)
		}
		start := time.Now()
		sum, err := contentHash(tx)
		if err != nil {
			return err
		}
		f.hashCost.Store(int64(time.Since(start)))
		if err := put(meta, keyCheckpointTaken, append(be64(index-1), sum...)); err != nil {
			return err
		}
		if err := put(meta, keyCheckpointTake, be64(index-1)); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketCheckpointReports); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		return nil
	}
	return f.applyReport(tx, index, c)
}

// applyReport counts a voter's report of the current take and, once a
// majority of the joined voters reported one hash, decides the checkpoint.
func (f *FSM) applyReport(tx *bolt.Tx, index uint64, c *peerpb.Checkpoint) error {
	reject := func(format string, args ...any) error {
		return fmt.Errorf("%w: checkpoint report of %q at %d: %s", ErrRejected, c.GetAgency(), c.GetIndex(), fmt.Sprintf(format, args...))
	}
	if len(c.GetStateHash()) != sha256.Size {
		return reject("a hash of %d bytes", len(c.GetStateHash()))
	}
	take := u64(get(tx, bucketMeta, keyCheckpointTake))
	switch {
	case take == 0 || c.GetIndex() != take:
		return reject("not the current checkpoint (%d)", take)
	case u64(get(tx, bucketMeta, keyCheckpointDecided)) == take:
		return reject("already decided")
	}
	m, err := getMember(tx, c.GetAgency())
	if err != nil || !m.Joined || !m.Voter {
		return reject("not a joined voter")
	}
	if len(m.SigningKey) != ed25519.PublicKeySize || !ed25519.Verify(m.SigningKey, CheckpointMessage(c), c.GetSignature()) {
		return reject("the signature does not verify with its signing key")
	}
	reports, err := tx.CreateBucketIfNotExists(bucketCheckpointReports)
	if err != nil {
		return err
	}
	if get(tx, bucketCheckpointReports, []byte(c.Agency)) != nil {
		return reject("reported already")
	}
	if err := put(reports, []byte(c.Agency), c.StateHash); err != nil {
		return err
	}
	voters, same := 0, 0
	err = forEach(tx, bucketMembers, func(_, v []byte) error {
		m := &pb.Member{}
		if err := proto.Unmarshal(v, m); err != nil {
			return err
		}
		if m.Joined && m.Voter {
			voters++
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = forEach(tx, bucketCheckpointReports, func(_, v []byte) error {
		if bytes.Equal(v, c.StateHash) {
			same++
		}
		return nil
	})
	if err != nil || same*2 <= voters {
		return err
	}
	if err := put(tx.Bucket(bucketMeta), keyCheckpointDecided, be64(take)); err != nil {
		return err
	}
	taken := get(tx, bucketMeta, keyCheckpointTaken)
	if len(taken) != 8+sha256.Size || u64(taken[:8]) != take {
		return nil // no hash taken there (state restored from a later snapshot): nothing to compare
	}
	f.checks = append(f.checks, checkResult{at: take, index: index, want: bytes.Clone(c.StateHash), own: bytes.Clone(taken[8:]), agreed: bytes.Equal(taken[8:], c.StateHash)})
	return nil
}

// CheckpointReport is the report agency's node should make of the current
// checkpoint (unsigned), or nil: none is due (no take, decided already,
// reported already), or this FSM took no hash there, or agency is not a
// joined voter.
func (f *FSM) CheckpointReport(agency string) *peerpb.Checkpoint {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out *peerpb.Checkpoint
	_ = f.view(func(tx *bolt.Tx) error {
		if v, _ := protocolOf(tx); v < ProtocolCheckpoints {
			return nil
		}
		take := u64(get(tx, bucketMeta, keyCheckpointTake))
		taken := get(tx, bucketMeta, keyCheckpointTaken)
		if take == 0 || u64(get(tx, bucketMeta, keyCheckpointDecided)) == take || len(taken) != 8+sha256.Size || u64(taken[:8]) != take {
			return nil
		}
		if get(tx, bucketCheckpointReports, []byte(agency)) != nil {
			return nil
		}
		if m, err := getMember(tx, agency); err != nil || !m.Joined || !m.Voter {
			return nil
		}
		out = &peerpb.Checkpoint{Index: take, StateHash: bytes.Clone(taken[8:]), Agency: agency}
		return nil
	})
	return out
}

// Taken is the last hash this FSM took for a checkpoint and the index it
// was taken at (0, nil if none).
func (f *FSM) Taken() (uint64, []byte) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var at uint64
	var sum []byte
	_ = f.view(func(tx *bolt.Tx) error {
		if v := get(tx, bucketMeta, keyCheckpointTaken); len(v) == 8+sha256.Size {
			at, sum = u64(v[:8]), bytes.Clone(v[8:])
		}
		return nil
	})
	return at, sum
}

// Checkpoints reads the FSM's checkpoint state.
func (f *FSM) Checkpoints() CheckpointState {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.ckpt
}

// afterChecksLocked acts on the compares of the transaction just committed:
// a disagreement has the state rebuilt and checked again.
func (f *FSM) afterChecksLocked() {
	checks := f.checks
	f.checks = nil
	if f.repairing {
		return
	}
	for _, c := range checks {
		f.ckpt.LastIndex = c.index
		if c.agreed {
			f.ckpt.Diverged = "" // whole again: the same hash as the majority's
			continue
		}
		f.ckpt.Disagreements++
		f.repairLocked(c)
	}
}
