// Package anchor owns a node's anchoring of its audit chain: when the head
// of the chain is anchored (every so many events, after a while of
// activity, and at a clean shutdown), where (the federation log once the
// federation applies protocol 5; otherwise a file of the node's own), and
// which anchors `audit verify` checks the chain against.
package anchor

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	"github.com/watchfed/watchfed/replication"
)

// FileName is the anchor file in a node's data directory.
const FileName = "audit-anchors"

// fileHeader is the file's first line: its format and version.
const fileHeader = "watchfed audit anchors v1"

// fileKept is how many anchors the file keeps (the last ones).
const fileKept = 16

// The anchor file holds the node's last anchors, one a line after the
// header, each an AuditAnchor (base64 of its protobuf encoding) signed by
// the agency's signing key, oldest first. It is replaced whole (written to
// a temporary file, fsync'd, renamed, the directory fsync'd), so a crash
// leaves the old file or the new one. It protects less than the federation
// log: whoever can write the data directory can rewrite the chain and this
// file alike (the signing key sits beside them); it catches a chain
// shortened or edited by someone who cannot.

// ReadFile reads the anchors in the file at path (none if it is absent),
// each checked against the agency's signing key, oldest first. A line that
// does not decode, is not signed by key or goes backwards is an error
// naming the file and line.
func ReadFile(path string, key ed25519.PublicKey) ([]*peerpb.AuditAnchor, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<16)
	var out []*peerpb.AuditAnchor
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if line == 1 {
			if text != fileHeader {
				return nil, fmt.Errorf("%s:1: not an audit anchor file (want %q)", path, fileHeader)
			}
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		a := &peerpb.AuditAnchor{}
		if err := proto.Unmarshal(raw, a); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if err := replication.CheckAnchor(a, key); err != nil {
			return nil, fmt.Errorf("%s:%d: anchor of %s at %d: %v", path, line, a.Agency, a.Sequence, err)
		}
		if n := len(out); n > 0 && a.Sequence <= out[n-1].Sequence {
			return nil, fmt.Errorf("%s:%d: anchor at %d after one at %d: anchors never go backwards", path, line, a.Sequence, out[n-1].Sequence)
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// appendFile adds a (signed) to the file at path, keeping the last fileKept.
func appendFile(path string, key ed25519.PublicKey, a *peerpb.AuditAnchor) error {
	as, err := ReadFile(path, key)
	if err != nil {
		return err
	}
	if n := len(as); n > 0 && a.Sequence <= as[n-1].Sequence {
		return fmt.Errorf("%s: anchor at %d after one at %d: anchors never go backwards", path, a.Sequence, as[n-1].Sequence)
	}
	as = append(as, a)
	if len(as) > fileKept {
		as = as[len(as)-fileKept:]
	}
	var b bytes.Buffer
	b.WriteString(fileHeader + "\n")
	for _, a := range as {
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(a)
		if err != nil {
			return err
		}
		b.WriteString(base64.StdEncoding.EncodeToString(raw) + "\n")
	}
	return writeSynced(path, b.Bytes())
}

// writeSynced replaces the file at path with data, durably.
func writeSynced(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", filepath.Dir(path), err)
	}
	return nil
}
