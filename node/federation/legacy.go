package federation

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
)

// PeerService was watchfed.v1.PeerService before the node-to-node protocol
// moved to its own proto package (watchfed.peer.v1); its messages are the
// same on the wire. During a rolling upgrade members of both releases meet,
// so a node answers under both names and, when a member does not know the
// new one, calls it by the old. Drop this once no member runs a release
// from before the move.
const legacyPeerService = "watchfed.v1.PeerService"

// registerLegacyPeerService serves the PeerService under its old name too.
// The handlers report the new method names to the interceptors, so the same
// authorisation rules apply.
func registerLegacyPeerService(s *grpc.Server, impl peerpb.PeerServiceServer) {
	desc := peerpb.PeerService_ServiceDesc
	desc.ServiceName = legacyPeerService
	s.RegisterService(&desc, impl)
}

// peerClient calls a member's PeerService, by the old name if the member
// does not know the new one.
type peerClient struct{ conn *grpc.ClientConn }

func (c peerClient) invoke(ctx context.Context, method string, req, resp any) error {
	err := c.conn.Invoke(ctx, method, req, resp)
	if status.Code(err) == codes.Unimplemented {
		old := strings.Replace(method, "/"+peerpb.PeerService_ServiceDesc.ServiceName+"/", "/"+legacyPeerService+"/", 1)
		err = c.conn.Invoke(ctx, old, req, resp)
	}
	return err
}

func (c peerClient) Forward(ctx context.Context, req *peerpb.ForwardRequest) (*peerpb.ForwardResponse, error) {
	resp := &peerpb.ForwardResponse{}
	return resp, c.invoke(ctx, peerpb.PeerService_Forward_FullMethodName, req, resp)
}

func (c peerClient) Join(ctx context.Context, req *peerpb.JoinRequest) (*peerpb.JoinResponse, error) {
	resp := &peerpb.JoinResponse{}
	return resp, c.invoke(ctx, peerpb.PeerService_Join_FullMethodName, req, resp)
}

func (c peerClient) GetNodeStatus(ctx context.Context, req *peerpb.GetNodeStatusRequest) (*peerpb.GetNodeStatusResponse, error) {
	resp := &peerpb.GetNodeStatusResponse{}
	return resp, c.invoke(ctx, peerpb.PeerService_GetNodeStatus_FullMethodName, req, resp)
}
