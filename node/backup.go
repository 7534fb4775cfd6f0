package node

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/watchfed/watchfed/node/anchor"
	"github.com/watchfed/watchfed/replication"
	"github.com/watchfed/watchfed/replication/fileversion"
)

// Names inside a backup archive. backupVersion comes first and holds the
// archive's format version; the files after it carry their own.
const (
	backupVersion = "watchfed-backup-format"
	backupStore   = "node.db"
	backupFSM     = "fsm.db"
	backupKeys    = KeysFile
	// backupAgency names the agency whose node was saved: a backup is
	// restored only as that agency (archives from before it have none).
	backupAgency = "watchfed-backup-agency"
	// backupSum comes last (from version 2): the hex SHA-256 of every entry
	// before it (entrySum), checked before anything is restored.
	backupSum = "watchfed-backup-sha256"
)

// backupFormat is the layout of a backup archive: which files it holds,
// under which names. An archive from before versions existed has no
// backupVersion entry and is read as version 1. Version 2 ends with
// backupSum.
var backupFormat = fileversion.Format{Name: "backup archive", Current: 2, Reads: []int{1, 2}}

// entrySum adds one archive entry to the archive's SHA-256: its name and
// content, each preceded by its length.
func entrySum(h hash.Hash, name string, data []byte) {
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(name))))
	h.Write([]byte(name))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(data))))
	h.Write(data)
}

func (n *Node) writeBackup(w io.Writer) error {
	tw := tar.NewWriter(w)
	sum := sha256.New()
	add := func(name string, write func(io.Writer) (int64, error)) error {
		var b bytes.Buffer
		if _, err := write(&b); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if name != backupSum {
			entrySum(sum, name, b.Bytes())
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(b.Len()), ModTime: time.Now()}); err != nil {
			return err
		}
		_, err := tw.Write(b.Bytes())
		return err
	}
	stamp := fileversion.Stamp(backupFormat.Current)
	if err := add(backupVersion, func(w io.Writer) (int64, error) { k, err := w.Write(stamp); return int64(k), err }); err != nil {
		return err
	}
	if err := add(backupAgency, func(w io.Writer) (int64, error) { k, err := io.WriteString(w, n.cfg.Agency); return int64(k), err }); err != nil {
		return err
	}
	if err := add(backupStore, n.store.Backup); err != nil {
		return err
	}
	if err := add(backupFSM, n.fed.BackupState); err != nil {
		return err
	}
	keys, err := os.ReadFile(filepath.Join(n.cfg.DataDir, KeysFile))
	if err != nil {
		return err
	}
	if err := add(backupKeys, func(w io.Writer) (int64, error) { k, err := w.Write(keys); return int64(k), err }); err != nil {
		return err
	}
	hexSum := hex.EncodeToString(sum.Sum(nil))
	if err := add(backupSum, func(w io.Writer) (int64, error) { k, err := io.WriteString(w, hexSum); return int64(k), err }); err != nil {
		return err
	}
	return tw.Close()
}

// maxBackupEntry bounds one entry read into memory to check the archive.
const maxBackupEntry = 8 << 30

// checkBackupSum reads the archive in f whole and checks its SHA-256
// (version 2 and later) before anything is restored from it; f is left at
// its start.
func checkBackupSum(f *os.File) error {
	defer f.Seek(0, io.SeekStart)
	tr := tar.NewReader(f)
	sum := sha256.New()
	version, stored := 1, ""
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("backup archive: %w (the file is damaged or cut short)", err)
		}
		if stored != "" {
			return fmt.Errorf("backup archive: %q after %s", h.Name, backupSum)
		}
		data, err := io.ReadAll(io.LimitReader(tr, maxBackupEntry))
		if err != nil {
			return fmt.Errorf("backup archive: %s: %w (the file is damaged or cut short)", h.Name, err)
		}
		switch h.Name {
		case backupSum:
			stored = string(data)
			continue
		case backupVersion:
			if v, err := backupFormat.Check("", bytes.TrimSpace(data), false); err == nil {
				version = v
			}
		}
		entrySum(sum, h.Name, data)
	}
	if version < 2 {
		return nil // before archives carried their SHA-256
	}
	if stored == "" {
		return fmt.Errorf("backup archive: no %s entry: the file is cut short or not a whole backup", backupSum)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != stored {
		return fmt.Errorf("backup archive: SHA-256 mismatch (computed %s, recorded %s): the file is damaged; nothing was restored", got, stored)
	}
	return nil
}

// RestoreBackup unpacks a backup into an empty data directory of a stopped
// node. Started as usual afterwards, the node rejoins its live federation
// and catches up (it votes again once it has; see replication.InstallBackup);
// only if the whole federation is lost is it started with --recover, as a
// one-member federation holding the saved state. An anchor file left in the
// directory is set aside (see setAsideAnchors). A backup of another agency
// is refused, naming both: its node would serve that agency's records and
// keys under this one's name.
func RestoreBackup(r io.Reader, dataDir, agency string) error {
	if _, err := os.Stat(filepath.Join(dataDir, StoreFile)); err == nil {
		return fmt.Errorf("%s already holds %s: restore into an empty data directory", dataDir, StoreFile)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	// The archive is spooled and its SHA-256 checked before anything is
	// restored: a damaged backup restores nothing.
	spool, err := os.CreateTemp(dataDir, ".restore-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	if _, err := io.Copy(spool, r); err != nil {
		return fmt.Errorf("backup archive: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := checkBackupSum(spool); err != nil {
		return err
	}
	tr := tar.NewReader(spool)
	seen := map[string]bool{}
	for first := true; ; first = false {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("backup archive: %w", err)
		}
		if first && h.Name != backupVersion {
			// An archive from before versions existed: version 1.
			if _, err := backupFormat.Check("", nil, false); err != nil {
				return err
			}
		}
		switch h.Name {
		case backupVersion:
			if !first {
				return fmt.Errorf("backup archive: %s must come first", backupVersion)
			}
			found, err := io.ReadAll(io.LimitReader(tr, 16))
			if err != nil {
				return fmt.Errorf("backup archive: %w", err)
			}
			if _, err := backupFormat.Check("", bytes.TrimSpace(found), false); err != nil {
				return err
			}
		case backupAgency:
			saved, err := io.ReadAll(io.LimitReader(tr, 256))
			if err != nil {
				return fmt.Errorf("backup archive: %w", err)
			}
			if string(saved) != agency {
				return fmt.Errorf("the backup is of agency %s, not %s: restore it only as %s (each agency restores its own node's backup)", saved, agency, saved)
			}
		case backupStore, backupKeys:
			if err := writeFileSync(filepath.Join(dataDir, h.Name), io.LimitReader(tr, h.Size)); err != nil {
				return err
			}
		case backupSum: // checked above
		case backupFSM:
			if err := replication.InstallBackup(filepath.Join(dataDir, raftDir), io.LimitReader(tr, h.Size)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("backup archive: unexpected file %q", h.Name)
		}
		seen[h.Name] = true
	}
	for _, name := range []string{backupStore, backupFSM, backupKeys} {
		if !seen[name] {
			return fmt.Errorf("backup archive lacks %s", name)
		}
	}
	return setAsideAnchors(dataDir)
}

// setAsideAnchors moves an anchor file left in the data directory out of
// the way of the restored chain: it anchors the chain the restore replaced,
// whose events after the backup are gone, so the restored chain would
// differ from it at once. It is kept beside it, never deleted, as evidence
// of how far the lost chain went. Without one, an empty file in its place
// marks the restore all the same (the federation log may hold anchors of
// the lost chain): `audit anchors accept-restore` accepts it.
func setAsideAnchors(dataDir string) error {
	path := filepath.Join(dataDir, anchor.FileName)
	aside := filepath.Join(dataDir, anchor.BeforeRestorePrefix+time.Now().UTC().Format("20060102T150405Z"))
	if _, err := os.Stat(path); err != nil {
		if err := os.WriteFile(aside, []byte(anchor.EmptyFile), 0o600); err != nil {
			return fmt.Errorf("mark the restore of the audit chain: %w", err)
		}
		return nil
	}
	if err := os.Rename(path, aside); err != nil {
		return fmt.Errorf("set aside the anchors of the replaced audit chain: %w", err)
	}
	return nil
}

func writeFileSync(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
