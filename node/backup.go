package node

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

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
)

// backupFormat is the layout of a backup archive: which files it holds,
// under which names. An archive from before versions existed has no
// backupVersion entry and is read as version 1.
var backupFormat = fileversion.Format{Name: "backup archive", Current: 1, Reads: []int{1}}

func (n *Node) writeBackup(w io.Writer) error {
	tw := tar.NewWriter(w)
	add := func(name string, write func(io.Writer) (int64, error)) error {
		var b bytes.Buffer
		if _, err := write(&b); err != nil {
			return fmt.Errorf("%s: %w", name, err)
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
	return tw.Close()
}

// RestoreBackup unpacks a backup into an empty data directory of a stopped
// node. Start the node with --recover afterwards: it comes up as a
// one-member federation holding the saved state, and partners join it again
// by invitation. A backup of another agency is refused, naming both: its
// node would serve that agency's records and keys under this one's name.
func RestoreBackup(r io.Reader, dataDir, agency, advertise string) error {
	if _, err := os.Stat(filepath.Join(dataDir, StoreFile)); err == nil {
		return fmt.Errorf("%s already holds %s: restore into an empty data directory", dataDir, StoreFile)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	tr := tar.NewReader(r)
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
		case backupFSM:
			if err := replication.InstallBackup(filepath.Join(dataDir, raftDir), agency, advertise, io.LimitReader(tr, h.Size)); err != nil {
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
