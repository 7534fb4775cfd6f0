package replication

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	bolt "go.etcd.io/bbolt"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
)

// Checkpoints (protocol 4) find a member whose replicated state differs from
// the federation's, whatever made it differ (a damaged or edited fsm.db, a
// bug). A checkpoint is two entries the leader commits (checkpointer.go):
//
//   - a take (Checkpoint without index): every FSM hashes its replicated
//     state as it stands before that entry, inside the transaction that
//     applies it, so entries applied earlier in the same batch are in the
//     hash and later ones are not, on every node alike; it keeps the hash
//     under meta/checkpoint_taken.
//   - a compare (Checkpoint{index, state_hash}), once the take is applied on
//     the leader: the leader's hash at the take's preceding index. Every FSM
//     compares it with the hash it took there.
//
// The hash covers what the log determines: every bucket, key and value but
// the node's own bookkeeping under meta (the applied mark, which counts the
// raft entries a node happened to be handed, the file format and the taken
// hash). A member that disagrees sets its state aside and rebuilds it from
// its snapshot and log (checkrepair.go); if it still disagrees it is
// diverged: it says so and its node stops serving shared reads.
//
// The leader's hash is the reference: a leader whose own state was damaged
// makes its honest followers disagree, rebuild, and find themselves
// diverged. Comparing against a majority (each member's hash in the log)
// would name the damaged member instead; not done yet.

// ProtocolCheckpoints is the protocol version from which checkpoints apply.
const ProtocolCheckpoints = 4

var keyCheckpointTaken = []byte("checkpoint_taken") // be64(index) sha256

// nodeLocalMeta are the meta keys that are not replicated state.
var nodeLocalMeta = [][]byte{keyApplied, keyFormat, keyCheckpointTaken}

// contentHash is the SHA-256 of the replicated state in tx.
func contentHash(tx *bolt.Tx) ([]byte, error) {
	h := sha256.New()
	err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		writeField(h, name)
		return b.ForEach(func(k, v []byte) error {
			if bytes.Equal(name, bucketMeta) && isNodeLocal(k) {
				return nil
			}
			writeField(h, k)
			writeField(h, val(tx, name, k, v)) // bare: the hash is of content, not of its framing
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
// index, the leader's hash and whether this FSM agreed.
type checkResult struct {
	at, index uint64 // the take's preceding index; the compare's own index
	want      []byte
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
		if len(c.GetStateHash()) != 0 {
			return fmt.Errorf("%w: checkpoint take with a state hash", ErrRejected)
		}
		sum, err := contentHash(tx)
		if err != nil {
			return err
		}
		return put(meta, keyCheckpointTaken, append(be64(index-1), sum...))
	}
	if len(c.GetStateHash()) != sha256.Size || c.GetIndex() >= index {
		return fmt.Errorf("%w: checkpoint compare: index %d, hash of %d bytes", ErrRejected, c.GetIndex(), len(c.GetStateHash()))
	}
	taken := get(tx, bucketMeta, keyCheckpointTaken)
	if len(taken) != 8+sha256.Size || u64(taken[:8]) != c.GetIndex() {
		return nil // no hash taken there (state restored from a later snapshot): nothing to compare
	}
	f.checks = append(f.checks, checkResult{at: c.GetIndex(), index: index, want: bytes.Clone(c.GetStateHash()), agreed: bytes.Equal(taken[8:], c.GetStateHash())})
	return nil
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
			continue
		}
		f.ckpt.Disagreements++
		f.repairLocked(c)
	}
}
