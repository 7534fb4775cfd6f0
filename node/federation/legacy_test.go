package federation

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

type statusOnly struct {
	peerpb.UnimplementedPeerServiceServer
	agency string
}

func (s statusOnly) GetNodeStatus(context.Context, *peerpb.GetNodeStatusRequest) (*peerpb.GetNodeStatusResponse, error) {
	return &peerpb.GetNodeStatusResponse{Status: &pb.GetStatusResponse{Agency: s.agency}}, nil
}

func serve(t *testing.T, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestPeerServiceAcrossReleases: during a rolling upgrade, a member of the
// release before watchfed.peer.v1 and one after reach each other's
// PeerService, whichever calls.
func TestPeerServiceAcrossReleases(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// An older member serves only the old name; a newer one calls it.
	old := serve(t, func(s *grpc.Server) {
		desc := peerpb.PeerService_ServiceDesc
		desc.ServiceName = legacyPeerService
		s.RegisterService(&desc, statusOnly{agency: "OLD"})
	})
	resp, err := peerClient{old}.GetNodeStatus(ctx, &peerpb.GetNodeStatusRequest{})
	if err != nil || resp.GetStatus().GetAgency() != "OLD" {
		t.Fatalf("newer calling older: %v, %v", resp, err)
	}

	// A newer member answers an older one calling by the old name.
	newer := serve(t, func(s *grpc.Server) {
		impl := statusOnly{agency: "NEW"}
		peerpb.RegisterPeerServiceServer(s, impl)
		registerLegacyPeerService(s, impl)
	})
	got := &peerpb.GetNodeStatusResponse{}
	if err := newer.Invoke(ctx, "/"+legacyPeerService+"/GetNodeStatus", &peerpb.GetNodeStatusRequest{}, got); err != nil || got.GetStatus().GetAgency() != "NEW" {
		t.Fatalf("older calling newer: %v, %v", got, err)
	}
	direct := peerClient{conn: newer}
	if resp, err := direct.GetNodeStatus(ctx, &peerpb.GetNodeStatusRequest{}); err != nil || resp.GetStatus().GetAgency() != "NEW" {
		t.Fatalf("newer calling newer: %v, %v", resp, err)
	}
}

type forwardOnly struct {
	peerpb.UnimplementedPeerServiceServer
}

func (forwardOnly) Forward(context.Context, *peerpb.ForwardRequest) (*peerpb.ForwardResponse, error) {
	return &peerpb.ForwardResponse{Index: 7}, nil
}

// TestForwardToLeaderWithoutStream: a leader of a release without
// ForwardStream fails the first pipelined forward as Unavailable (or, when
// its refusal arrives before the command is registered, at submit as
// errNoStream); later ones are refused at once (errNoStream), so the
// publisher forwards one at a time with Forward, which the leader answers.
// The first forward is tried on many fresh forwarders: the refusal races the
// command's registration, and a command registered after the stream ended
// must not wait for an answer that never comes (CI saw it wait 10 s).
func TestForwardToLeaderWithoutStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := serve(t, func(s *grpc.Server) { peerpb.RegisterPeerServiceServer(s, forwardOnly{}) })
	for i := range 100 {
		fw := newForwarder(conn)
		wait, err := fw.submit([]byte("cmd"))
		if err == nil {
			_, err = wait(ctx)
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("try %d: first pipelined forward = %v; want Unavailable", i, err)
			}
		} else if !errors.Is(err, errNoStream) {
			t.Fatalf("try %d: first submit = %v; want errNoStream or a wait", i, err)
		}
		if _, err := fw.submit([]byte("cmd")); !errors.Is(err, errNoStream) {
			t.Fatalf("try %d: second = %v; want errNoStream", i, err)
		}
		fw.close()
	}
	resp, err := peerClient{conn}.Forward(ctx, &peerpb.ForwardRequest{Command: []byte("cmd")})
	if err != nil || resp.Index != 7 {
		t.Fatalf("unary Forward = %v, %v", resp, err)
	}
}
