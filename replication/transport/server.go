package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

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
	if req, ok := cmd.(*raft.AppendEntriesRequest); ok {
		clampCommit(req)
	}
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

// clampCommit lowers a request's commit index to the last entry it carries
// (its previous entry if it carries none): what the follower checks against
// the leader's log before it stores the entries. hashicorp/raft commits up to
// min(leaderCommit, its own last index), not min(leaderCommit, the request's
// last entry) as the Raft paper says, so a follower that still holds a
// deposed leader's entries past what the request carries (not yet found to
// conflict) would apply them as committed: entries the federation never
// committed, in place of the ones it did, until a checkpoint finds its
// state differs (what issue 17's checkpoint disagreements looked like). The
// leader sends its commit index again with the next request, so a
// follower's commit lags by no more than that.
func clampCommit(req *raft.AppendEntriesRequest) {
	last := req.PrevLogEntry
	if n := len(req.Entries); n > 0 {
		last = req.Entries[n-1].Index
	}
	req.LeaderCommitIndex = min(req.LeaderCommitIndex, last)
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

// pipelineReadAhead bounds the requests a pipeline stream holds decoded
// behind the one raft is storing.
const pipelineReadAhead = 16

// readAheadBytes bounds, with pipelineReadAhead, what a pipeline stream
// holds decoded ahead of raft: a follower whose disk stalls stops reading the
// leader's stream instead of taking it into memory.
const readAheadBytes = 16 << 20

// maxMergedBytes bounds the entries stored together from merged requests.
const maxMergedBytes = 8 << 20

// AppendEntriesPipeline answers requests in order. Requests that arrived
// while raft stored the previous ones, and that continue one another, are
// stored together: one append and one fsync on this follower instead of one
// each, and each request gets its own (identical) answer. Without this a
// follower under load stores one small batch per fsync while the leader's
// next batches queue in the stream, and the queue is most of the latency
// of a commit. It returns when the transport closes, so a node's graceful
// stop does not wait for its peers to hang up.
func (s *server) AppendEntriesPipeline(stream raftv1.RaftService_AppendEntriesPipelineServer) error {
	ctx := stream.Context()
	if err := s.authorize(ctx); err != nil {
		return err
	}
	next := make(chan pipelined, pipelineReadAhead)
	var aheadBytes atomic.Int64
	drained := make(chan struct{}, 1)
	go func() {
		for {
			for aheadBytes.Load() > readAheadBytes {
				select {
				case <-drained:
				case <-ctx.Done():
					return
				}
			}
			in, err := stream.Recv()
			r := pipelined{size: int64(len(in.GetMsgpack()))}
			if err == nil {
				r.req = &raft.AppendEntriesRequest{}
				if derr := decode(in.Msgpack, r.req); derr != nil {
					err = status.Error(codes.InvalidArgument, derr.Error())
				}
			}
			r.err = err
			s.t.readAhead.Add(1)
			aheadBytes.Add(r.size)
			select {
			case next <- r:
			case <-ctx.Done():
				s.t.readAhead.Add(-1)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	take := func(r pipelined) pipelined {
		s.t.readAhead.Add(-1)
		aheadBytes.Add(-r.size)
		select {
		case drained <- struct{}{}:
		default:
		}
		return r
	}
	defer func() { // what was read ahead and will not reach raft
		for {
			select {
			case r := <-next:
				take(r)
			default:
				return
			}
		}
	}()
	var carried *pipelined // taken from next, but not mergeable with the batch before it
	for {
		var first pipelined
		if carried != nil {
			first, carried = *carried, nil
		} else {
			select {
			case r := <-next:
				first = take(r)
			case <-s.t.ctx.Done():
				return status.Error(codes.Unavailable, ErrClosed.Error())
			}
		}
		if errors.Is(first.err, io.EOF) {
			return nil
		}
		if first.err != nil {
			return first.err
		}
		batch, size := []*raft.AppendEntriesRequest{first.req}, entriesSize(first.req.Entries)
	gather:
		for size < maxMergedBytes {
			select {
			case r := <-next:
				r = take(r)
				if r.err != nil || !continues(batch[len(batch)-1], r.req) {
					carried = &r
					break gather
				}
				batch, size = append(batch, r.req), size+entriesSize(r.req.Entries)
			default:
				break gather
			}
		}
		out := &raftv1.AppendEntriesPipelineResponse{}
		resp, err := s.dispatch(ctx, joined(batch), nil)
		if err != nil {
			if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
				return err // the stream itself is ending
			}
			out.Error = status.Convert(err).Message()
		} else if out.Msgpack, err = encode(resp); err != nil {
			return err
		}
		for range batch {
			if err := stream.Send(out); err != nil {
				return err
			}
		}
	}
}

// pipelined is a request read from a pipeline stream, or why none could be.
type pipelined struct {
	req  *raft.AppendEntriesRequest
	size int64 // encoded
	err  error
}

// continues reports whether b comes from the same leader in the same term
// as a and continues the log exactly where a ends: requests that the leader
// could have sent as one.
func continues(a, b *raft.AppendEntriesRequest) bool {
	if b == nil || b.Term != a.Term || !bytes.Equal(b.ID, a.ID) || !bytes.Equal(b.Addr, a.Addr) ||
		!bytes.Equal(b.Leader, a.Leader) || b.ProtocolVersion != a.ProtocolVersion {
		return false
	}
	lastIndex, lastTerm := a.PrevLogEntry, a.PrevLogTerm
	if n := len(a.Entries); n > 0 {
		lastIndex, lastTerm = a.Entries[n-1].Index, a.Entries[n-1].Term
	}
	return b.PrevLogEntry == lastIndex && b.PrevLogTerm == lastTerm
}

// joined is one request for a batch in which each request continues the one
// before: the first's header, every entry, the latest commit index. raft's
// answer to it (success, or the conflict that fails them all) holds for each.
func joined(batch []*raft.AppendEntriesRequest) *raft.AppendEntriesRequest {
	if len(batch) == 1 {
		return batch[0]
	}
	m := *batch[0]
	m.Entries = nil
	for _, r := range batch {
		m.Entries = append(m.Entries, r.Entries...)
		m.LeaderCommitIndex = max(m.LeaderCommitIndex, r.LeaderCommitIndex)
	}
	return &m
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
	if req.Size < 0 {
		return status.Errorf(codes.InvalidArgument, "raft: snapshot size %d", req.Size)
	}
	if accept := s.t.cfg.AcceptSnapshot; accept != nil {
		if err := accept(req.Size); err != nil {
			s.t.cfg.Logger.Warn("refused a raft snapshot", "from", string(req.Addr), "size", req.Size, "term", req.Term, "index", req.LastLogIndex, "err", err)
			// The leader may be a partner's node: it learns the refusal,
			// not this node's paths or free space (those are in its log).
			return status.Errorf(codes.ResourceExhausted, "raft: snapshot of %d bytes refused: no room for it on this member", req.Size)
		}
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
