package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// storedInvitation is the invitation kept in the data directory, nil if none.
func (n *Node) storedInvitation() (*pb.Invitation, error) {
	data, err := os.ReadFile(filepath.Join(n.cfg.DataDir, InvitationFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	inv := &pb.Invitation{}
	if err := protojson.Unmarshal(data, inv); err != nil {
		return nil, fmt.Errorf("%s: %w", InvitationFile, err)
	}
	return inv, nil
}

// ErrJoinWithState refuses --join on a data directory that already holds
// federation state (a restored backup, a member's data) from anything but
// the same invitation: the invitation would be ignored.
var ErrJoinWithState = errors.New("--join on a data directory that holds federation state")

// checkJoin keeps the invitation of --join, unless the data directory holds
// federation state the invitation did not start: a member's data, or a
// restored backup, which rejoins on its own. Starting again with the
// invitation the node joined by is fine.
func (n *Node) checkJoin(inv *pb.Invitation) error {
	stored, err := n.storedInvitation()
	if err != nil {
		return err
	}
	if stored != nil && proto.Equal(stored, inv) {
		return nil
	}
	if has, what := n.fed.HasState(); has {
		return fmt.Errorf("%w: %s holds %s. A member's node, or one restored from its backup, "+
			"rejoins its federation on its own: start it without --join. To join a federation afresh "+
			"instead, move the data directory aside and start with --join and an empty one",
			ErrJoinWithState, n.cfg.DataDir, what)
	}
	return WriteInvitation(n.cfg.DataDir, inv)
}
