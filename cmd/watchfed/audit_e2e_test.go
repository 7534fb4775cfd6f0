package main

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication/checksum"
)

// TestAuditTamperDetected: the chain verifies; after one event is edited in
// the bbolt file, verification fails and names that event.
func TestAuditTamperDetected(t *testing.T) {
	dir := t.TempDir()
	n := startDevNode(t, dir, freeAddr(t))
	for _, name := range []string{"Alpha Trading", "Beta Shipping", "Gamma Metals"} {
		n.ok("designations", "add", "--schema", "organization", "--name", name, "--program", "X", "--marking", "GREEN")
	}
	n.ok("records", "list")
	if out := n.ok("audit", "verify"); !strings.Contains(out, "intact: 4 events") {
		t.Fatalf("verify before tampering: %s", out)
	}
	events := decode[[]struct {
		Seq    uint64 `json:"seq"`
		Actor  string `json:"actor"`
		Action string `json:"action"`
		Target string `json:"target"`
	}](t, n.ok("audit", "list", "-o", "json"))
	if len(events) < 4 || events[1].Action != "RecordService.CreateRecord" || events[1].Actor != "dev-user" || !strings.HasPrefix(events[1].Target, "DEV/") {
		t.Fatalf("audit events do not say who did what to which record: %+v", events)
	}
	n.stop()

	// Rewrite event 2 as an insider with file access would: change who did it.
	db, err := bolt.Open(filepath.Join(dir, node.StoreFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		key := binary.BigEndian.AppendUint64(nil, 2)
		raw, err := checksum.Open("node.db", []byte("audit"), key, b.Get(key))
		if err != nil {
			return err
		}
		ev := &pb.AuditEvent{}
		if err := proto.Unmarshal(raw, ev); err != nil {
			return err
		}
		ev.Actor = "someone-else"
		data, err := proto.Marshal(ev)
		if err != nil {
			return err
		}
		return checksum.Put(b, key, data) // its checksum made anew: only the chain tells
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	// Offline, with the node stopped.
	r := n.cli("", nil, "audit", "verify", "--data-dir", dir)
	if r.code != exitError || !strings.Contains(r.stderr, "broken at event 2") {
		t.Fatalf("offline verify after tampering: exit %d, stderr %s", r.code, r.stderr)
	}
	// And through a restarted node.
	n2 := startDevNode(t, dir, freeAddr(t))
	r = n2.cli("", nil, "audit", "verify", "-o", "json")
	if r.code != exitError || !strings.Contains(r.stdout, `"first_broken_seq": 2`) {
		t.Fatalf("verify after tampering: exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
	}
}
