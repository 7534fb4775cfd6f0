package node

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/node/anchor"
	"github.com/watchfed/watchfed/node/store"
	"github.com/watchfed/watchfed/replication"
)

// backupArchive is a backup as writeBackup lays it out: the version entry
// (none when version is nil, as before versions existed), node.db, fsm.db
// and the keys, and from version 2 the SHA-256. fsmStamp, if set, overrides
// the format stamp of fsm.db.
func backupArchive(t *testing.T, version []byte, versionFirst bool, fsmStamp []byte) []byte {
	return backupArchiveSum(t, version, versionFirst, fsmStamp, string(version) == "2")
}

func backupArchiveSum(t *testing.T, version []byte, versionFirst bool, fsmStamp []byte, withSum bool) []byte {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "node.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var nodeDB bytes.Buffer
	if _, err := st.Backup(&nodeDB); err != nil {
		t.Fatal(err)
	}
	st.Close()
	fsmPath := filepath.Join(dir, "fsm.db")
	fsm, err := replication.OpenFSM(fsmPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	fsm.Close()
	if fsmStamp != nil {
		db, err := bolt.Open(fsmPath, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("format"), fsmStamp) })
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	fsmDB, err := os.ReadFile(fsmPath)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	sum := sha256.New()
	add := func(name string, b []byte) {
		entrySum(sum, name, b)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if version != nil && versionFirst {
		add(backupVersion, version)
	}
	add(backupStore, nodeDB.Bytes())
	if version != nil && !versionFirst {
		add(backupVersion, version)
	}
	add(backupFSM, fsmDB)
	add(backupKeys, []byte("keys"))
	if withSum {
		add(backupSum, []byte(hex.EncodeToString(sum.Sum(nil))))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestRestoreBackupFormatVersion: a backup archive of the current version,
// or from before versions existed, restores; an archive of a newer or
// unknown version, or holding a state file of one, is refused with a
// message naming what and which versions this binary reads, and an archive
// refused by its version writes nothing.
func TestRestoreBackupFormatVersion(t *testing.T) {
	for _, tc := range []struct {
		name         string
		version      []byte
		versionFirst bool
		fsmStamp     []byte
		wantErr      []string
		wroteNothing bool
	}{
		{name: "current version", version: []byte("2"), versionFirst: true},
		{name: "version 1", version: []byte("1"), versionFirst: true},
		{name: "written before versions"},
		{name: "newer version", version: []byte("3"), versionFirst: true, wroteNothing: true,
			wantErr: []string{"backup archive: format version 3; this binary reads versions 1, 2", "newer watchfed"}},
		{name: "unknown version", version: []byte("2.0"), versionFirst: true, wroteNothing: true,
			wantErr: []string{`backup archive: unknown format version "2.0"; this binary reads versions 1, 2`}},
		{name: "version not first", version: []byte("1"), wantErr: []string{backupVersion + " must come first"}},
		{name: "state file of a newer version", version: []byte("1"), versionFirst: true, fsmStamp: []byte("4"),
			wantErr: []string{"fsm.db", "format version 4; this binary reads versions 1, 2, 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			archive := backupArchive(t, tc.version, tc.versionFirst, tc.fsmStamp)
			dataDir := filepath.Join(t.TempDir(), "data")
			err := RestoreBackup(bytes.NewReader(archive), dataDir, "DE-BAFA")
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range []string{StoreFile, KeysFile, filepath.Join(raftDir, "fsm.db")} {
					if _, err := os.Stat(filepath.Join(dataDir, f)); err != nil {
						t.Errorf("restored data directory lacks %s: %v", f, err)
					}
				}
				return
			}
			if err == nil {
				t.Fatal("restored an archive this binary does not read")
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			if _, err := os.Stat(filepath.Join(dataDir, StoreFile)); tc.wroteNothing && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused archive wrote %s (%v)", StoreFile, err)
			}
		})
	}
}

// TestRestoreRefusesAnotherAgency: a backup names its agency; restoring it
// as another agency is refused naming both, and writes nothing.
func TestRestoreRefusesAnotherAgency(t *testing.T) {
	// The archive writeBackup lays out: the version, the agency, the files.
	tr := tar.NewReader(bytes.NewReader(backupArchive(t, []byte("1"), true, nil)))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b := new(bytes.Buffer)
		if _, err := b.ReadFrom(tr); err != nil {
			t.Fatal(err)
		}
		add(h.Name, b.Bytes())
		if h.Name == backupVersion {
			add(backupAgency, []byte("DE-BAFA"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	err := RestoreBackup(bytes.NewReader(out.Bytes()), dataDir, "FR-SBDU")
	if err == nil || !strings.Contains(err.Error(), "the backup is of agency DE-BAFA, not FR-SBDU") {
		t.Fatalf("restore as FR-SBDU: %v, want refused naming DE-BAFA and FR-SBDU", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, StoreFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused restore wrote %s (%v)", StoreFile, err)
	}
	// An anchor file of the chain the restore replaces is set aside, kept.
	anchors := filepath.Join(dataDir, anchor.FileName)
	if err := os.WriteFile(anchors, []byte("anchors of the lost chain\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RestoreBackup(bytes.NewReader(out.Bytes()), dataDir, "DE-BAFA"); err != nil {
		t.Fatalf("restore as DE-BAFA: %v", err)
	}
	if _, err := os.Stat(anchors); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the replaced chain's anchor file is still in place (%v)", err)
	}
	aside, _ := filepath.Glob(anchors + ".before-restore-*")
	if len(aside) != 1 {
		t.Fatalf("set-aside anchor files: %v, want one", aside)
	}
	if b, _ := os.ReadFile(aside[0]); string(b) != "anchors of the lost chain\n" {
		t.Errorf("set-aside anchor file holds %q", b)
	}
}

// TestRestoreBackupDamaged: a backup (version 2) carries the SHA-256 of its
// entries; an archive with a flipped byte inside a file, or without its
// checksum (cut short), restores nothing and says why.
func TestRestoreBackupDamaged(t *testing.T) {
	whole := backupArchive(t, []byte("2"), true, nil)
	at := bytes.Index(whole, []byte("node.db")) // the node.db entry's header
	flipped := bytes.Clone(whole)
	flipped[at+512+2000] ^= 0x20 // inside its content, past the header block
	for _, tc := range []struct {
		name    string
		archive []byte
		wantErr string
	}{
		{"byte flipped in node.db", flipped, "SHA-256 mismatch"},
		{"no checksum", backupArchiveSum(t, []byte("2"), true, nil, false), "no " + backupSum + " entry"},
		{"cut short", whole[:len(whole)/2], "damaged or cut short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			err := RestoreBackup(bytes.NewReader(tc.archive), dataDir, "DE-BAFA")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("restore: %v, want %q", err, tc.wantErr)
			}
			left, _ := os.ReadDir(dataDir)
			if len(left) != 0 {
				t.Fatalf("a refused backup left %v in the data directory", left)
			}
		})
	}
}
