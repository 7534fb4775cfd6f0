package replication

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/raft"

	"github.com/watchfed/watchfed/replication/boltcheck"
)

// Raft snapshots (snapshots/<id>/state.bin, an image of fsm.db) are checked
// at start before raft or the replay reads them: raft's CRC-64 of the file
// (in its meta.json) and the checksum of every value in the image. A
// damaged one is set aside under snapshots-damaged/, naming it in the log,
// and the state comes from an older snapshot and the log. If the log no
// longer reaches back that far, the replicated state itself (fsm.db,
// checked at open and brought up to date by the replay) becomes the
// snapshot in its place; if that cannot be done either, the node refuses to
// start and says why, rather than run on a state it cannot vouch for.

// snapshotDamage is a raft snapshot found damaged and set aside.
type snapshotDamage struct {
	meta *raft.SnapshotMeta
	file string
	err  error
}

// setAsideDamagedSnapshots checks every snapshot in snaps (kept under dir).
// One whose meta.json raft cannot read is not listed by raft, which only
// warns and skips it: it is set aside too, naming the file, with no meta.
func setAsideDamagedSnapshots(log *slog.Logger, dir string, snaps raft.SnapshotStore) ([]snapshotDamage, error) {
	metas, err := snaps.List()
	if err != nil {
		return nil, fmt.Errorf("list raft snapshots: %w", err)
	}
	var out []snapshotDamage
	setAside := func(d snapshotDamage, id string) error {
		aside := filepath.Join(dir, "snapshots-damaged")
		if err := os.MkdirAll(aside, 0o700); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(dir, "snapshots", id), filepath.Join(aside, id)); err != nil {
			return fmt.Errorf("set aside the damaged raft snapshot %s: %w", d.file, err)
		}
		if err := syncDir(filepath.Join(dir, "snapshots")); err != nil {
			return err
		}
		if log != nil {
			log.Error("a raft snapshot is damaged: set aside; the state comes from an older snapshot and the log", "file", d.file, "err", d.err, "set_aside", filepath.Join(aside, id))
		}
		out = append(out, d)
		return nil
	}
	listed := map[string]bool{}
	for _, m := range metas {
		listed[m.ID] = true
		img := filepath.Join(dir, "snapshots", m.ID, "state.bin")
		if err := checkSnapshot(snaps, m.ID, img); err != nil {
			if err := setAside(snapshotDamage{meta: m, file: img, err: err}, m.ID); err != nil {
				return nil, err
			}
		}
	}
	ents, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("list raft snapshots: %w", err)
	}
	for _, e := range ents {
		// raft writes a snapshot under <id>.tmp and renames it when whole.
		if !e.IsDir() || listed[e.Name()] || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		file := filepath.Join(dir, "snapshots", e.Name(), "meta.json")
		if err := setAside(snapshotDamage{file: file, err: unreadableMeta(file)}, e.Name()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// unreadableMeta says why raft did not list a snapshot: its meta.json.
func unreadableMeta(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("raft snapshot meta %s: %w", file, err)
	}
	var m raft.SnapshotMeta
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("raft snapshot meta %s: %w", file, err)
	}
	return fmt.Errorf("raft snapshot meta %s: not readable by raft (version %d)", file, m.Version)
}

// checkSnapshot opens a snapshot through raft's store (which checks its
// CRC-64 over the whole file) and checks the image's values.
func checkSnapshot(snaps raft.SnapshotStore, id, img string) error {
	_, rc, err := snaps.Open(id)
	if err != nil {
		return fmt.Errorf("raft snapshot %s: %w", img, err)
	}
	rc.Close()
	if err := boltcheck.VerifyWith(img, checkImageSums); err != nil {
		return fmt.Errorf("raft snapshot %s: %w", img, err)
	}
	return nil
}

// coverDamagedSnapshots makes sure raft can start once damaged snapshots
// were set aside: it needs the log from just after the newest remaining
// snapshot. If the log starts later, the FSM's state (at its applied index,
// which the replay brought up to date) is taken as a new snapshot.
func coverDamagedSnapshots(log *slog.Logger, damaged []snapshotDamage, fsm *FSM, logs raft.LogStore, snaps raft.SnapshotStore, trans raft.Transport) error {
	if len(damaged) == 0 {
		return nil
	}
	metas, err := snaps.List()
	if err != nil {
		return err
	}
	var newest uint64
	if len(metas) > 0 {
		newest = metas[0].Index
	}
	first, err := logs.FirstIndex()
	if err != nil {
		return err
	}
	last, err := logs.LastIndex()
	if err != nil {
		return err
	}
	if last == 0 || first <= newest+1 {
		return nil // an older snapshot and the log cover the state
	}
	d := damaged[0] // the newest damaged
	refuse := func(why string) error {
		return fmt.Errorf("%v; set aside, and %s: restore the node from a backup (watchfed snapshot restore) or have it join the federation again", d.err, why)
	}
	if d.meta == nil {
		// Its meta unreadable, nothing says which entry it ends at nor
		// the configuration there.
		return refuse(fmt.Sprintf("neither an older snapshot nor the log (from entry %d) covers the state, and the damaged snapshot's meta cannot say up to which entry", first))
	}
	applied := fsm.Applied()
	if applied < d.meta.Index || first > d.meta.Index+1 {
		return refuse(fmt.Sprintf("neither an older snapshot nor the log (from entry %d) nor the replicated state (applied %d) covers the state up to entry %d", first, applied, d.meta.Index))
	}
	// The term of the applied entry and the configuration in force there:
	// the damaged snapshot's meta (kept apart from its image) and the
	// configuration entries of the log after it.
	term := d.meta.Term
	conf, confIndex := d.meta.Configuration, d.meta.ConfigurationIndex
	for i := d.meta.Index + 1; i <= applied; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return refuse(fmt.Sprintf("log entry %d is unreadable: %v", i, err))
		}
		term = l.Term
		if l.Type == raft.LogConfiguration {
			conf, confIndex = raft.DecodeConfiguration(l.Data), i
		}
	}
	sink, err := snaps.Create(raft.SnapshotVersionMax, applied, term, conf, confIndex, trans)
	if err != nil {
		return refuse(fmt.Sprintf("a new snapshot could not be made: %v", err))
	}
	snap, err := fsm.Snapshot()
	if err != nil {
		sink.Cancel()
		return refuse(fmt.Sprintf("a new snapshot could not be made: %v", err))
	}
	if err := snap.Persist(sink); err != nil {
		return refuse(fmt.Sprintf("a new snapshot could not be made: %v", err))
	}
	if log != nil {
		log.Warn("the replicated state is kept as a raft snapshot in place of the damaged one", "index", applied, "damaged", d.file)
	}
	return nil
}
