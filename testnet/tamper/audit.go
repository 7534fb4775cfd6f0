// Package tamper edits the files of a stopped node as a dishonest insider
// would, for the tests that show the edit is detected. Tests only: it never
// links into the watchfed binary.
package tamper

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/checksum"
)

// RewriteAudit rewrites the audit chain in a stopped node's node.db as an
// insider with file access and the format's documentation would: edit
// returns the events to keep (changed as it likes, in order, seq from 1),
// and the chain is recomputed over them, with the count and head beside
// it, so the chain alone verifies. Only an anchor held elsewhere can tell.
func RewriteAudit(path string, edit func([]*pb.AuditEvent) []*pb.AuditEvent) error {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		b, meta := tx.Bucket([]byte("audit")), tx.Bucket([]byte("meta"))
		if b == nil || meta == nil {
			return fmt.Errorf("%s: no audit log", path)
		}
		var evs []*pb.AuditEvent
		err := b.ForEach(func(k, v []byte) error {
			raw, err := checksum.Open(path, []byte("audit"), k, v)
			if err != nil {
				return err
			}
			e := &pb.AuditEvent{}
			evs = append(evs, e)
			return proto.Unmarshal(raw, e)
		})
		if err != nil {
			return err
		}
		for _, e := range evs {
			if err := b.Delete(be64(e.Seq)); err != nil {
				return err
			}
		}
		var prev []byte
		var seq uint64
		for _, e := range edit(evs) {
			seq++
			e.Seq, e.PrevHash = seq, prev
			e.Hash = store.ChainHash(prev, e)
			prev = e.Hash
			data, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
			if err != nil {
				return err
			}
			if err := checksum.Put(b, be64(seq), data); err != nil {
				return err
			}
		}
		// Each value with its checksum made anew, as the format says.
		if err := checksum.Put(meta, []byte("audit_head"), prev); err != nil {
			return err
		}
		return checksum.Put(meta, []byte("audit_count"), be64(seq))
	})
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
