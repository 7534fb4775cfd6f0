package transport

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	raftv1 "github.com/watchfed/watchfed/proto/watchfed/raft/v1"
)

// server hands incoming RPCs to raft through the consumer channel.
type server struct {
	raftv1.UnimplementedRaftServiceServer
	t *Transport
}

func (s *server) authorize(ctx context.Context) error {
	if s.t.cfg.Authorize == nil {
		return nil
	}
	if err := s.t.cfg.Authorize(ctx); err != nil {
		return status.Errorf(codes.PermissionDenied, "raft: %v", err)
	}
	return nil
}

// dispatch gives one command to raft and waits for its answer.
func (s *server) dispatch(ctx context.Context, cmd any, data io.Reader) (any, error) {
	ch := make(chan raft.RPCResponse, 1)
	rpc := raft.RPC{Command: cmd, Reader: data, RespChan: ch}
	s.t.hbMu.RLock()
	hb := s.t.heartbeat
	s.t.hbMu.RUnlock()
	if hb != nil && isHeartbeat(cmd) {
		hb(rpc)
	} else {
		select {
		case s.t.consumer <- rpc:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-s.t.ctx.Done():
			return nil, status.Error(codes.Unavailable, ErrClosed.Error())
		}
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return nil, status.Error(codes.Unknown, r.Error.Error())
		}
		return r.Response, nil
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-s.t.ctx.Done():
		return nil, status.Error(codes.Unavailable, ErrClosed.Error())
	}
}

func isHeartbeat(cmd any) bool {
	req, ok := cmd.(*raft.AppendEntriesRequest)
	if !ok {
		return false
	}
	leader := req.Addr
	if len(leader) == 0 {
		leader = req.Leader
	}
	return req.Term != 0 && leader != nil && req.PrevLogEntry == 0 && req.PrevLogTerm == 0 &&
		len(req.Entries) == 0 && req.LeaderCommitIndex == 0
}

// call decodes a request into req, dispatches it and encodes the response.
func (s *server) call(ctx context.Context, in []byte, req any) ([]byte, error) {
	if err := s.authorize(ctx); err != nil {
		return nil, err
	}
	if err := decode(in, req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	resp, err := s.dispatch(ctx, req, nil)
	if err != nil {
		return nil, err
	}
	return encode(resp)
}

func (s *server) AppendEntries(ctx context.Context, in *raftv1.AppendEntriesRequest) (*raftv1.AppendEntriesResponse, error) {
	b, err := s.call(ctx, in.Msgpack, &raft.AppendEntriesRequest{})
	if err != nil {
		return nil, err
	}
	return &raftv1.AppendEntriesResponse{Msgpack: b}, nil
}

func (s *server) RequestVote(ctx context.Context, in *raftv1.RequestVoteRequest) (*raftv1.RequestVoteResponse, error) {
	b, err := s.call(ctx, in.Msgpack, &raft.RequestVoteRequest{})
	if err != nil {
		return nil, err
	}
	return &raftv1.RequestVoteResponse{Msgpack: b}, nil
}

func (s *server) RequestPreVote(ctx context.Context, in *raftv1.RequestPreVoteRequest) (*raftv1.RequestPreVoteResponse, error) {
	b, err := s.call(ctx, in.Msgpack, &raft.RequestPreVoteRequest{})
	if err != nil {
		return nil, err
	}
	return &raftv1.RequestPreVoteResponse{Msgpack: b}, nil
}

func (s *server) TimeoutNow(ctx context.Context, in *raftv1.TimeoutNowRequest) (*raftv1.TimeoutNowResponse, error) {
	b, err := s.call(ctx, in.Msgpack, &raft.TimeoutNowRequest{})
	if err != nil {
		return nil, err
	}
	return &raftv1.TimeoutNowResponse{Msgpack: b}, nil
}

// AppendEntriesPipeline answers requests one after another, in order. It
// returns when the transport closes, so a node's graceful stop does not wait
// for its peers to hang up.
func (s *server) AppendEntriesPipeline(stream raftv1.RaftService_AppendEntriesPipelineServer) error {
	ctx := stream.Context()
	if err := s.authorize(ctx); err != nil {
		return err
	}
	type recv struct {
		in  *raftv1.AppendEntriesPipelineRequest
		err error
	}
	next := make(chan recv)
	go func() {
		for {
			in, err := stream.Recv()
			select {
			case next <- recv{in, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		var r recv
		select {
		case r = <-next:
		case <-s.t.ctx.Done():
			return status.Error(codes.Unavailable, ErrClosed.Error())
		}
		if errors.Is(r.err, io.EOF) {
			return nil
		}
		if r.err != nil {
			return r.err
		}
		out := &raftv1.AppendEntriesPipelineResponse{}
		req := &raft.AppendEntriesRequest{}
		if err := decode(r.in.Msgpack, req); err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		resp, err := s.dispatch(ctx, req, nil)
		if err != nil {
			if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
				return err // the stream itself is ending
			}
			out.Error = status.Convert(err).Message()
		} else if out.Msgpack, err = encode(resp); err != nil {
			return err
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

// InstallSnapshot feeds the streamed chunks to raft as one reader.
func (s *server) InstallSnapshot(stream raftv1.RaftService_InstallSnapshotServer) error {
	ctx := stream.Context()
	if err := s.authorize(ctx); err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	req := &raft.InstallSnapshotRequest{}
	if err := decode(first.Msgpack, req); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	r := &chunkReader{stream: stream, buf: first.Data}
	resp, err := s.dispatch(ctx, req, io.LimitReader(r, req.Size))
	if err != nil {
		return err
	}
	b, err := encode(resp)
	if err != nil {
		return err
	}
	return stream.SendAndClose(&raftv1.InstallSnapshotResponse{Msgpack: b})
}

type chunkReader struct {
	stream raftv1.RaftService_InstallSnapshotServer
	buf    []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		msg, err := r.stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("snapshot stream: %w", err)
		}
		r.buf = msg.Data
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}
