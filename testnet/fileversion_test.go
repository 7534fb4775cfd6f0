package testnet

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/node"
)

// TestNewerFileVersionRefusedAtStart: a node whose node.db, raft log or
// replicated state carries a format version this binary does not read (as a
// newer watchfed would leave it) refuses to start, naming the file, the
// version found and the versions it reads.
func TestNewerFileVersionRefusedAtStart(t *testing.T) {
	for _, tc := range []struct {
		file, bucket, key string
		newer, reads      string
	}{
		{node.StoreFile, "meta", "format", "3", "versions 1, 2"},
		{filepath.Join("raft", "wal", "wal-meta.db"), "stable", "watchfed.format", "3", "version 2"},
		{filepath.Join("raft", "fsm.db"), "meta", "format", "4", "versions 1, 2, 3"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			l := startLocal(t, 1)
			ln := l.Nodes[0]
			add(t, ln, "Version Target")
			if err := ln.Stop(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(ln.Dir, tc.file)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(tc.bucket)).Put([]byte(tc.key), []byte(tc.newer)) })
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = l.Restart(ctx, ln)
			if err == nil {
				t.Fatalf("node started on a %s of format version %s", tc.file, tc.newer)
			}
			want := fmt.Sprintf("%s: format version %s; this binary reads %s", path, tc.newer, tc.reads)
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q, want it to contain %q", err, want)
			}
		})
	}
}
