package node

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestReadinessOnADamagedStore: a node whose node.db holds a damaged value
// that its start does not read (an audit event) starts, but /readyz is 503
// naming the file, bucket and key: the reads that meet it are refused.
func TestReadinessOnADamagedStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, StoreFile)
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ev := &pb.AuditEvent{Time: timestamppb.Now(), Agency: DevAgency, Actor: "tester", Action: "test", Outcome: "ok"}
	if _, err := st.AppendAudit(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		k, v := b.Cursor().First()
		v = bytes.Clone(v)
		v[1] ^= 0x40
		return b.Put(k, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	startTestNode(t, func(c *Config) { c.DataDir, c.MetricsListen = dir, addr })
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), path) &&
				strings.Contains(string(b), "bucket audit") && strings.Contains(string(b), "checksum mismatch") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz on a damaged node.db: %d %q", resp.StatusCode, b)
			}
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}
