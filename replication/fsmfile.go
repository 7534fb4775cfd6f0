package replication

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/boltcheck"
	"github.com/watchfed/watchfed/replication/fileversion"
)

// fsmFormat is the layout of fsm.db, and so of the raft snapshots and the
// backups that copy it: its version sits under meta/format. A change to how
// the state is stored gets a new version, and this binary reads the old
// ones it can still read (upgrading them at open) or refuses them.
//
// Version 2: every value carries a checksum (fsmsum.go); a version 1 file is
// upgraded at open.
// Version 3: a large command in the log bucket may be kept in a bucket of
// its own nested under its key (fsmlog.go). A binary that reads only 1 and
// 2 refuses such a file, and so a raft snapshot of it: a member still on
// that binary could not take a snapshot from one of this binary. So a file
// moves to 3 only with the replicated state, when the activation of
// protocol ProtocolNestedLog (which every joined member must have
// announced, so every member reads version 3) is applied, in the same
// transaction; until then this binary writes version 2, stores every
// command flat and stamps a new file 2 (Current). A version 1 file is
// upgraded to 2 at open, and to 3 as well if its state is at that protocol
// already. A version 3 file is never stamped back: it may hold nested
// commands.
var fsmFormat = fileversion.Format{Name: "fsm.db", Current: formatSums, Reads: []int{1, 2, 3}}

var keyFormat = []byte("format")

// checkImage checks the format of a state file about to replace fsm.db (a
// raft snapshot, named by where in messages): one this binary does not read
// is refused before anything is replaced. An image without a version
// predates versions (version 1).
func checkImage(path, where string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		var found []byte
		if meta := tx.Bucket(bucketMeta); meta != nil {
			found = meta.Get(keyFormat)
		}
		_, err := fsmFormat.Check(where, found, false)
		return err
	})
}

// checkSnapshots checks, at open, the raft snapshots kept beside the FSM's
// file (raft's file snapshot store: snapshots/<id>/state.bin, each an image
// of fsm.db). raft restores the newest snapshot it can at start, passing
// over one that Restore refuses for an older one; a snapshot of a version
// this binary does not read stops the node here instead, naming it. A
// damaged snapshot is left to Restore, which refuses it.
func checkSnapshots(dir string) error {
	images, err := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	if err != nil {
		return err
	}
	for _, img := range images {
		if strings.HasSuffix(filepath.Dir(img), ".tmp") || boltcheck.VerifyWith(img, checkImageSums) != nil {
			continue // being written, or damaged
		}
		if err := checkImage(img, "in snapshot "+img); err != nil {
			return err
		}
	}
	return nil
}

// The FSM's bbolt file is written without fsync. What makes a write durable
// is the raft log, fsynced on a majority before the entry commits; the FSM
// is derived from it and is rebuilt from it (snapshot, then log) when its
// file cannot be trusted. That saves a commit's two fdatasyncs per applied
// batch on every node, and takes one commit off the path of every
// acknowledged write (the leader applies before it answers).
//
// After a process crash (kill -9) the kernel still holds every write the
// process made, so the file is whole. After a power loss or a kernel crash
// it may not be. A marker file beside it, present while the FSM is open,
// names the boot it was opened in: a marker left by an earlier boot means the
// machine went down under an open FSM.

// openMarker is the marker's name beside the FSM file.
func openMarker(path string) string { return path + ".open" }

// bootID identifies this boot of the machine ("" where the kernel does not say).
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// untrusted says why the FSM file at path may have lost writes or been
// damaged, or "" if it holds everything its last run wrote.
func untrusted(path, boot string) string {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err := boltcheck.VerifyWith(path, checkImageSums); err != nil {
		return err.Error()
	}
	m, err := os.ReadFile(openMarker(path))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "" // closed cleanly
	case err != nil:
		return fmt.Sprintf("its open marker is unreadable: %v", err)
	case boot == "" || strings.TrimSpace(string(m)) != boot:
		return "the machine restarted while it was open, and unsynced writes may be lost"
	}
	return ""
}

// setAside moves an untrusted FSM file out of the way (kept for inspection).
func setAside(path string) error {
	if err := os.Rename(path, path+".untrusted"); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// markOpen writes the open marker, durably, before the first unsynced write.
func markOpen(path, boot string) error {
	tmp := openMarker(path) + ".tmp"
	if err := os.WriteFile(tmp, []byte(boot+"\n"), 0o600); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, openMarker(path)); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// markClosed removes the marker once the file is synced.
func markClosed(path string) error {
	if err := os.Remove(openMarker(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(path))
}
