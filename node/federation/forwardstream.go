package federation

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	"github.com/watchfed/watchfed/replication"
)

// Forwarded publications are pipelined over one stream per leader
// (PeerService.ForwardStream): a follower sends the next while the previous
// ones are replicated, so it publishes as fast as the leader does instead of
// one publication per round trip. The leader applies a stream's commands in
// the order sent and stops at the first one it refuses or fails to commit,
// so no later command of that stream enters the log without it; the
// follower then sends them again (the FSM keeps the first copy of a
// version). A stream speaks for the agency of the certificate that opened
// it, and every command on it is checked as a unary Forward is: a partner
// can reorder only its own entries, and inject nobody else's.

// errNoStream is a leader of a release without ForwardStream: forward one
// command at a time.
var errNoStream = errors.New("the leader does not take pipelined forwards")

// forwarder is the follower's end of the stream to one leader.
type forwarder struct {
	conn *grpc.ClientConn

	mu sync.Mutex
	// s is the open stream (nil: open one at the next send).
	s      *fwdStream
	closed bool
	// noStream: the leader answered Unimplemented.
	noStream atomic.Bool
}

// fwdStream is one open stream and the commands sent on it awaiting their
// answer, in order.
type fwdStream struct {
	stream  grpc.BidiStreamingClient[peerpb.ForwardStreamRequest, peerpb.ForwardStreamResponse]
	cancel  context.CancelFunc
	next    uint64 // the sequence of the next command sent
	mu      sync.Mutex
	pending []fwdPending
	err     error // once set, the stream is over
	// outstanding counts the commands sent whose wait has not returned.
	outstanding atomic.Int64
}

type fwdPending struct {
	seq  uint64
	done chan fwdResult
}

type fwdResult struct {
	idx uint64
	err error
}

func newForwarder(conn *grpc.ClientConn) *forwarder { return &forwarder{conn: conn} }

// submit sends an encoded command on the stream (opening one if need be) and
// returns a wait for its log index. Commands submitted one after another by
// one goroutine are applied in that order.
func (fw *forwarder) submit(data []byte) (wait func(ctx context.Context) (uint64, error), err error) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.closed {
		return nil, status.Error(codes.Unavailable, errConnsClosed.Error())
	}
	if fw.noStream.Load() {
		return nil, errNoStream
	}
	s := fw.s
	if s != nil && s.failed() != nil {
		if n := s.outstanding.Load(); n > 0 {
			// A new stream now could carry this command ahead of those
			// the broken one failed, before the caller sends them again.
			return nil, status.Errorf(codes.Unavailable, "%d forwards on a broken stream to the leader are not yet reported", n)
		}
		s = nil
	}
	if s == nil {
		ctx, cancel := context.WithCancel(context.Background())
		st, err := peerpb.NewPeerServiceClient(fw.conn).ForwardStream(ctx)
		if err != nil {
			cancel()
			return nil, err
		}
		s = &fwdStream{stream: st, cancel: cancel, next: 1}
		fw.s = s
		go fw.receive(s)
	}
	done := make(chan fwdResult, 1)
	s.mu.Lock()
	if err := s.err; err != nil {
		// The stream ended before this command was registered (a leader
		// may refuse it as soon as it opens): receive has already failed
		// those pending and would never answer this one.
		s.mu.Unlock()
		if fw.noStream.Load() {
			return nil, errNoStream
		}
		return nil, err
	}
	seq := s.next
	s.next++
	s.pending = append(s.pending, fwdPending{seq: seq, done: done})
	s.mu.Unlock()
	s.outstanding.Add(1)
	if err := s.stream.Send(&peerpb.ForwardStreamRequest{Sequence: seq, Command: data}); err != nil {
		// The stream broke: receive has the reason, and fails this command
		// with the others pending.
		s.cancel()
	}
	return func(ctx context.Context) (uint64, error) {
		defer s.outstanding.Add(-1)
		select {
		case r := <-done:
			return r.idx, r.err
		case <-ctx.Done():
			return 0, status.FromContextError(ctx.Err()).Err()
		}
	}, nil
}

// receive hands the leader's answers to the commands pending, in order, and
// when the stream ends fails every command still pending with its reason.
func (fw *forwarder) receive(s *fwdStream) {
	for {
		resp, err := s.stream.Recv()
		if err == nil {
			s.mu.Lock()
			if len(s.pending) == 0 || s.pending[0].seq != resp.Sequence {
				err = status.Errorf(codes.Internal, "the leader answered command %d out of turn", resp.Sequence)
			} else {
				p := s.pending[0]
				s.pending = s.pending[1:]
				p.done <- fwdResult{idx: resp.Index}
			}
			s.mu.Unlock()
			if err == nil {
				continue
			}
		}
		if status.Code(err) == codes.Unimplemented {
			fw.noStream.Store(true)
			err = status.Error(codes.Unavailable, errNoStream.Error())
		}
		if errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
			err = status.Error(codes.Unavailable, "the forward stream to the leader broke")
		}
		s.cancel()
		s.mu.Lock()
		s.err = err
		pending := s.pending
		s.pending = nil
		s.mu.Unlock()
		for _, p := range pending {
			p.done <- fwdResult{err: err}
		}
		return
	}
}

func (s *fwdStream) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// forwardAsync sends an encoded command to the leader at addr on the
// stream kept to it; wait returns its log index.
func (f *Federation) forwardAsync(addr string, data []byte) (wait func(ctx context.Context) (uint64, error), err error) {
	pc, err := f.peer(addr)
	if err != nil {
		return nil, err
	}
	return pc.fwd.submit(data)
}

// close ends the stream; the commands pending fail.
func (fw *forwarder) close() {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	fw.closed = true
	if fw.s != nil {
		fw.s.cancel()
	}
}

// ForwardStream is the leader's end: it applies the caller's commands in
// the order sent, answering each once committed, and ends at the first it
// refuses or that fails.
func (s *peerService) ForwardStream(stream grpc.BidiStreamingServer[peerpb.ForwardStreamRequest, peerpb.ForwardStreamResponse]) error {
	f := s.f
	ctx := stream.Context()
	id, err := f.nodeIdentity(ctx)
	if err != nil {
		return status.Error(codes.PermissionDenied, err.Error())
	}
	type submitted struct {
		seq  uint64
		wait func() (uint64, error)
	}
	// Commands wait for their answer here, in order; the room bounds what a
	// caller can have in flight. The receiver closes it.
	queue := make(chan submitted, fwdWindow)
	failed := make(chan struct{}) // closed at the first failure
	var failure error
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		for sub := range queue {
			if failure != nil {
				continue // nothing is answered after a failure
			}
			idx, err := sub.wait()
			if err == nil {
				err = stream.Send(&peerpb.ForwardStreamResponse{Sequence: sub.seq, Index: idx})
			} else {
				err = forwardError(err)
			}
			if err != nil {
				failure = err
				close(failed)
			}
		}
	}()
	received := make(chan error, 1)
	go func() {
		defer close(queue)
		received <- func() error {
			for want := uint64(1); ; want++ {
				req, err := stream.Recv()
				if err != nil {
					return nil // the caller closed or went away: answer what it sent
				}
				select {
				case <-failed:
					return nil // nothing after a failure may apply
				default:
				}
				if req.Sequence != want {
					return status.Errorf(codes.InvalidArgument, "command %d sent as %d: a stream's commands are numbered from 1 without gaps", want, req.Sequence)
				}
				var cmd peerpb.Command
				if err := proto.Unmarshal(req.Command, &cmd); err != nil {
					f.refused(id, "peer.forward", "undecodable command", err)
					return status.Errorf(codes.InvalidArgument, "command %d: %v", req.Sequence, err)
				}
				// A member's node forwards only what its agency signed (forward.go).
				if err := f.checkForwarded(&cmd, id.Agency); err != nil {
					f.refused(id, "peer.forward", forwardTarget(&cmd), err)
					return status.Errorf(codes.PermissionDenied, "%s's node: %v", id.Agency, err)
				}
				wait, err := f.rep.Submit(req.Command, fwdSubmitTimeout)
				if err != nil {
					return forwardError(err)
				}
				queue <- submitted{seq: req.Sequence, wait: wait}
			}
		}()
	}()
	select {
	case <-failed:
		// Returning cancels the stream, which ends the receiver; the
		// answerer sends nothing more.
		return failure
	case err := <-received:
		<-answered
		if err != nil {
			return err
		}
		return failure
	}
}

// fwdWindow bounds the commands of one stream submitted and not yet answered.
const fwdWindow = 64

// fwdSubmitTimeout bounds how long a forwarded command waits to enter raft.
const fwdSubmitTimeout = 30 * time.Second

// forwardError is the status a forwarded command's failure ends its stream with.
func forwardError(err error) error {
	if errors.Is(err, replication.ErrNotLeader) {
		return status.Error(codes.Unavailable, "not the leader")
	}
	return ApplyError(err)
}
