package anchor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/watchfed/watchfed/node/store"
)

// A node restored from a backup (node.RestoreBackup) holds the audit chain
// as it was at the backup: the events after it are gone, and the anchors of
// the replaced chain (in the federation log, and the node's anchor file,
// which the restore set aside as FileName.before-restore-TIME) no longer
// match it. audit verify rightly reports the chain broken, and the node
// anchors nothing more. An operator who accepts the loss says so with
// AcceptRestore: the anchors the restored chain fails are listed in
// AcceptedFile as superseded by that restore, left out of verification and
// anchoring from then on, and the call is audited. The anchors themselves
// stay where they are (partners keep theirs, the set-aside file stays), as
// evidence of how far the replaced chain went. The list is as safe as the
// anchor file: whoever can write the data directory can extend it, but
// each acceptance is an event in the chain.

// AcceptedFile lists the restores accepted and the anchors they superseded.
const AcceptedFile = "audit-anchors.restores-accepted"

// acceptedHeader is the file's first line: its format and version.
const acceptedHeader = "watchfed accepted restores v1"

// EmptyFile is an anchor file holding no anchor.
const EmptyFile = fileHeader + "\n"

// BeforeRestorePrefix begins the name of an anchor file a restore set aside.
const BeforeRestorePrefix = FileName + ".before-restore-"

// Accepted is what AcceptRestore did.
type Accepted struct {
	HeadSeq       uint64         // the restored chain's head
	Superseded    []store.Anchor // the anchors it fails, now left out
	BeforeRestore []string       // the restores accepted (their set-aside anchor files)
}

// ErrNothingToAccept: no restore is waiting to be accepted.
var ErrNothingToAccept = errors.New("no restore to accept")

// accepted reads the restores and superseded anchors in the file at path.
func accepted(path string) (restores []string, superseded map[uint64][]byte, err error) {
	superseded = map[uint64][]byte{}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, superseded, nil
	}
	if err != nil {
		return nil, nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		switch {
		case line == 1:
			if sc.Text() != acceptedHeader {
				return nil, nil, fmt.Errorf("%s:1: not a list of accepted restores (want %q)", path, acceptedHeader)
			}
		case len(f) >= 2 && f[0] == "restore":
			restores = append(restores, f[1])
		case len(f) == 3 && f[0] == "superseded":
			seq, err := strconv.ParseUint(f[1], 10, 64)
			h, herr := hex.DecodeString(f[2])
			if err != nil || herr != nil {
				return nil, nil, fmt.Errorf("%s:%d: bad superseded anchor %q", path, line, sc.Text())
			}
			superseded[seq] = h
		default:
			return nil, nil, fmt.Errorf("%s:%d: unknown line %q", path, line, sc.Text())
		}
	}
	return restores, superseded, sc.Err()
}

// dropSuperseded leaves out of anchors those an accepted restore superseded
// (same sequence number and hash), as listed in dir's AcceptedFile.
func dropSuperseded(dir string, anchors []store.Anchor) ([]store.Anchor, error) {
	_, sup, err := accepted(filepath.Join(dir, AcceptedFile))
	if err != nil || len(sup) == 0 {
		return anchors, err
	}
	return slices.DeleteFunc(anchors, func(a store.Anchor) bool {
		h, ok := sup[a.Seq]
		return ok && bytes.Equal(h, a.Hash)
	}), nil
}

// AcceptRestore accepts the restores waiting (anchor files set aside by a
// restore and not accepted yet): the anchors the chain as it is now fails
// (beyond its head, or of another hash) are superseded, and anchoring
// resumes from the furthest one it still matches. ErrNothingToAccept if
// no restore waits.
func (a *Anchorer) AcceptRestore(ctx context.Context) (Accepted, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	path := filepath.Join(a.cfg.DataDir, AcceptedFile)
	done, _, err := accepted(path)
	if err != nil {
		return Accepted{}, err
	}
	asides, err := filepath.Glob(filepath.Join(a.cfg.DataDir, BeforeRestorePrefix+"*"))
	if err != nil {
		return Accepted{}, err
	}
	var out Accepted
	for _, p := range asides {
		if !slices.Contains(done, filepath.Base(p)) {
			out.BeforeRestore = append(out.BeforeRestore, filepath.Base(p))
		}
	}
	if len(out.BeforeRestore) == 0 {
		return Accepted{}, fmt.Errorf("%w: no anchor file set aside by a restore (%s*) waits in %s", ErrNothingToAccept, BeforeRestorePrefix, a.cfg.DataDir)
	}
	seq, _, err := a.cfg.Chain.AuditHead()
	if err != nil {
		return Accepted{}, err
	}
	out.HeadSeq = seq
	own, err := a.anchorsLocked()
	if err != nil {
		return Accepted{}, err
	}
	var kept []store.Anchor
	for _, an := range own {
		at, err := a.cfg.Chain.AuditHashAt(ctx, an.Seq)
		if err != nil {
			return Accepted{}, err
		}
		if an.Seq > seq || !bytes.Equal(at, an.Hash) {
			out.Superseded = append(out.Superseded, an)
		} else {
			kept = append(kept, an)
		}
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		data, err = []byte(acceptedHeader+"\n"), nil
	}
	if err != nil {
		return Accepted{}, err
	}
	b := bytes.NewBuffer(data)
	now := a.cfg.Now().UTC().Format(time.RFC3339)
	for _, r := range out.BeforeRestore {
		fmt.Fprintf(b, "restore %s head %d accepted %s\n", r, seq, now)
	}
	for _, s := range out.Superseded {
		fmt.Fprintf(b, "superseded %d %x\n", s.Seq, s.Hash)
	}
	if err := writeSynced(path, b.Bytes()); err != nil {
		return Accepted{}, fmt.Errorf("record the accepted restore: %w", err)
	}
	last := Last(kept)
	a.lastSeq, a.lastHash, a.broken = last.Seq, last.Hash, false
	a.cfg.Logger.Warn("a restore of the audit chain was accepted: the anchors of the replaced chain it fails are superseded",
		"head", seq, "superseded", len(out.Superseded), "file", path)
	return out, nil
}
