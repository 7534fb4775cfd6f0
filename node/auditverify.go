package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/watchfed/watchfed/node/anchor"
	"github.com/watchfed/watchfed/node/api"
	"github.com/watchfed/watchfed/node/store"
	"github.com/watchfed/watchfed/policy/seal"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/replication"
)

// VerifyAuditOffline verifies the audit chain in a stopped node's data
// directory against its last anchors: the agency's last in the federation
// log as this node's fsm.db holds it, and the last in its anchor file.
func VerifyAuditOffline(ctx context.Context, dataDir string) (*pb.VerifyAuditLogResponse, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, KeysFile))
	if err != nil {
		return nil, fmt.Errorf("the node's keys (to check its anchors): %w", err)
	}
	keys, err := seal.UnmarshalKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dataDir, KeysFile), err)
	}
	pub := keys.Signing.Public().(ed25519.PublicKey)
	var logAnchors []replication.Anchor
	fsmPath := filepath.Join(dataDir, raftDir, "fsm.db")
	if _, err := os.Stat(fsmPath); err == nil {
		if logAnchors, err = replication.ReadAnchors(fsmPath, pub); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	own, err := anchor.Kept(logAnchors, filepath.Join(dataDir, anchor.FileName), pub)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(dataDir, StoreFile), store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	res, err := anchor.Verify(ctx, st, own)
	if err != nil {
		return nil, err
	}
	return api.VerifyResponse(res, own), nil
}
