// Package transport is a raft.Transport over gRPC, served on the node's one
// port under the same mutual TLS as its public services.
//
// Every outgoing call has a deadline; AppendEntries is pipelined over one
// stream per follower; snapshots are streamed in chunks. A pipeline whose
// stream breaks or stalls fails its in-flight futures, so raft falls back to
// plain AppendEntries instead of wedging (hashicorp/raft#612).
package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	raftv1 "github.com/watchfed/watchfed/proto/watchfed/raft/v1"
)

// Config sets up a transport.
type Config struct {
	// LocalAddr is this node's address as peers dial it.
	LocalAddr raft.ServerAddress
	// Dial connects to a peer; the node supplies its TLS credentials here.
	Dial func(ctx context.Context, target string) (*grpc.ClientConn, error)
	// Authorize is called at the start of every incoming RPC; an error refuses it.
	Authorize func(ctx context.Context) error
	// Timeout bounds every outgoing RPC (default 10 s). A snapshot install
	// gets this much per chunk.
	Timeout time.Duration
	// MaxMessage is the largest gRPC message between nodes (default gRPC's
	// 4 MiB). AppendEntries batches beyond it are sent in parts.
	MaxMessage int
	// AcceptSnapshot is asked, before a byte of an incoming snapshot is
	// read, whether this node takes a snapshot of the size the leader
	// declares; an error refuses it (a hostile or mistaken leader must not
	// fill this node's disk). Nil takes any size.
	AcceptSnapshot func(size int64) error
	Logger         *slog.Logger
}

// ChunkSize is the size of snapshot chunks on the wire.
const ChunkSize = 1 << 20

// ErrClosed is returned by calls on a closed transport.
var ErrClosed = errors.New("raft transport closed")

// Transport implements raft.Transport, raft.WithClose and raft.WithPreVote.
type Transport struct {
	cfg      Config
	consumer chan raft.RPC

	hbMu      sync.RWMutex
	heartbeat func(raft.RPC)

	// readAhead counts the requests read from pipeline streams and not yet
	// taken to raft (tests wait on it).
	readAhead atomic.Int64

	mu     sync.Mutex
	conns  map[raft.ServerAddress]*grpc.ClientConn
	closed bool
	// ctx is cancelled by Close: it ends server handlers waiting on raft and
	// every outgoing stream.
	ctx    context.Context
	cancel context.CancelFunc
}

// New makes a transport; Register puts its server side on a gRPC server.
func New(cfg Config) (*Transport, error) {
	if cfg.Dial == nil || cfg.LocalAddr == "" {
		return nil, errors.New("transport: LocalAddr and Dial are required")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = 4 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Transport{cfg: cfg, consumer: make(chan raft.RPC), conns: map[raft.ServerAddress]*grpc.ClientConn{}, ctx: ctx, cancel: cancel}, nil
}

// Register adds the raft service to the node's gRPC server.
func (t *Transport) Register(s grpc.ServiceRegistrar) {
	raftv1.RegisterRaftServiceServer(s, &server{t: t})
}

// Consumer implements raft.Transport.
func (t *Transport) Consumer() <-chan raft.RPC { return t.consumer }

// LocalAddr implements raft.Transport.
func (t *Transport) LocalAddr() raft.ServerAddress { return t.cfg.LocalAddr }

// EncodePeer implements raft.Transport: the address is the peer.
func (t *Transport) EncodePeer(_ raft.ServerID, addr raft.ServerAddress) []byte { return []byte(addr) }

// DecodePeer implements raft.Transport.
func (t *Transport) DecodePeer(b []byte) raft.ServerAddress { return raft.ServerAddress(b) }

// SetHeartbeatHandler implements raft.Transport: heartbeats skip the
// consumer queue so a busy follower still answers them.
func (t *Transport) SetHeartbeatHandler(cb func(raft.RPC)) {
	t.hbMu.Lock()
	t.heartbeat = cb
	t.hbMu.Unlock()
}

// Close implements raft.WithClose: it ends every stream and connection.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	t.cancel()
	for addr, c := range t.conns {
		c.Close()
		delete(t.conns, addr)
	}
	return nil
}

func (t *Transport) client(target raft.ServerAddress) (raftv1.RaftServiceClient, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	if c, ok := t.conns[target]; ok {
		return raftv1.NewRaftServiceClient(c), nil
	}
	c, err := t.cfg.Dial(t.ctx, string(target))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	t.conns[target] = c
	return raftv1.NewRaftServiceClient(c), nil
}

func (t *Transport) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.ctx, t.cfg.Timeout)
}

// AppendEntries implements raft.Transport. A batch too large for one
// message goes in parts, each continuing the log where the previous one
// ended; the answer is the first refusal, or the last part's.
func (t *Transport) AppendEntries(_ raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	for _, part := range t.split(args) {
		err := t.unary(target, part, resp, func(ctx context.Context, c raftv1.RaftServiceClient, b []byte) ([]byte, error) {
			out, err := c.AppendEntries(ctx, &raftv1.AppendEntriesRequest{Msgpack: b})
			return out.GetMsgpack(), err
		})
		if err != nil || !resp.Success {
			return err
		}
	}
	return nil
}

// budget is the room for entries in one message, leaving the rest of
// MaxMessage to the encoding's overhead.
func (t *Transport) budget() int { return t.cfg.MaxMessage * 3 / 4 }

// entriesSize estimates what the entries take in a message.
func entriesSize(es []*raft.Log) int {
	n := 0
	for _, e := range es {
		n += len(e.Data) + len(e.Extensions) + 64
	}
	return n
}

// split cuts a batch whose entries exceed the budget into batches of
// consecutive entries. raft bounds a batch by its number of entries only, so
// a follower that was away during a bulk import would otherwise be sent the
// same oversized batch, refused by gRPC, for as long as the leader keeps
// that log. A single entry over the budget is sent alone (and refused if it
// exceeds MaxMessage; publications are bounded well below it).
func (t *Transport) split(args *raft.AppendEntriesRequest) []*raft.AppendEntriesRequest {
	if len(args.Entries) < 2 || entriesSize(args.Entries) <= t.budget() {
		return []*raft.AppendEntriesRequest{args}
	}
	var parts []*raft.AppendEntriesRequest
	part := *args
	part.Entries = nil
	size := 0
	for _, e := range args.Entries {
		es := entriesSize([]*raft.Log{e})
		if len(part.Entries) > 0 && size+es > t.budget() {
			done := part
			parts = append(parts, &done)
			last := done.Entries[len(done.Entries)-1]
			part = *args
			part.Entries, part.PrevLogEntry, part.PrevLogTerm = nil, last.Index, last.Term
			size = 0
		}
		part.Entries = append(part.Entries, e)
		size += es
	}
	return append(parts, &part)
}

// RequestVote implements raft.Transport.
func (t *Transport) RequestVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.unary(target, args, resp, func(ctx context.Context, c raftv1.RaftServiceClient, b []byte) ([]byte, error) {
		out, err := c.RequestVote(ctx, &raftv1.RequestVoteRequest{Msgpack: b})
		return out.GetMsgpack(), err
	})
}

// RequestPreVote implements raft.WithPreVote.
func (t *Transport) RequestPreVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.unary(target, args, resp, func(ctx context.Context, c raftv1.RaftServiceClient, b []byte) ([]byte, error) {
		out, err := c.RequestPreVote(ctx, &raftv1.RequestPreVoteRequest{Msgpack: b})
		return out.GetMsgpack(), err
	})
}

// TimeoutNow implements raft.Transport.
func (t *Transport) TimeoutNow(_ raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.unary(target, args, resp, func(ctx context.Context, c raftv1.RaftServiceClient, b []byte) ([]byte, error) {
		out, err := c.TimeoutNow(ctx, &raftv1.TimeoutNowRequest{Msgpack: b})
		return out.GetMsgpack(), err
	})
}

// unary makes one call with a deadline: args encoded, the answer decoded
// into resp.
func (t *Transport) unary(target raft.ServerAddress, args, resp any, call func(context.Context, raftv1.RaftServiceClient, []byte) ([]byte, error)) error {
	c, err := t.client(target)
	if err != nil {
		return err
	}
	b, err := encode(args)
	if err != nil {
		return err
	}
	ctx, cancel := t.callCtx()
	defer cancel()
	out, err := call(ctx, c, b)
	if err != nil {
		return err
	}
	return decode(out, resp)
}

// InstallSnapshot implements raft.Transport: the request, then the data in chunks.
func (t *Transport) InstallSnapshot(_ raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	c, err := t.client(target)
	if err != nil {
		return err
	}
	b, err := encode(args)
	if err != nil {
		return err
	}
	// The whole install may take a while; each chunk must make progress.
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	stream, err := c.InstallSnapshot(ctx)
	if err != nil {
		return err
	}
	watchdog := time.AfterFunc(t.cfg.Timeout, cancel)
	defer watchdog.Stop()
	// A send fails with io.EOF when the follower has already answered (a
	// refusal): its status says why.
	sent := func(what string, err error) error {
		if errors.Is(err, io.EOF) {
			_, err = stream.CloseAndRecv()
		}
		return fmt.Errorf("snapshot %s to %s: %w", what, target, err)
	}
	if err := stream.Send(&raftv1.InstallSnapshotRequest{Msgpack: b}); err != nil {
		return sent("header", err)
	}
	buf := make([]byte, ChunkSize)
	for {
		n, rerr := io.ReadFull(data, buf)
		if n > 0 {
			watchdog.Reset(t.cfg.Timeout)
			if err := stream.Send(&raftv1.InstallSnapshotRequest{Data: buf[:n]}); err != nil {
				return sent("data", err)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read snapshot: %w", rerr)
		}
	}
	watchdog.Reset(t.cfg.Timeout)
	out, err := stream.CloseAndRecv()
	if err != nil {
		return err
	}
	return decode(out.Msgpack, resp)
}

// encode and decode use raft's own msgpack settings (as NetworkTransport).
func encode(v any) ([]byte, error) {
	b := make([]byte, 0, encodedSize(v))
	if err := codec.NewEncoderBytes(&b, &codec.MsgpackHandle{}).Encode(v); err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// encodedSize is about the size of v encoded, for encode's buffer: a batch
// of a bulk import's publications (several MB) grown by doubling from
// msgpack's 1 KB default was allocated and copied a dozen times per
// follower.
func encodedSize(v any) int {
	const header = 512 // the request's own fields
	if r, ok := v.(*raft.AppendEntriesRequest); ok {
		// entriesSize allows 64 bytes an entry; a Log's field names and
		// values take about 100.
		return header + entriesSize(r.Entries) + 64*len(r.Entries)
	}
	return header
}

// decode decodes b into v; an append request's entries keep their data in
// b (decodeAppend).
func decode(b []byte, v any) error {
	if req, ok := v.(*raft.AppendEntriesRequest); ok {
		if decodeAppend(b, req) {
			return nil
		}
		*req = raft.AppendEntriesRequest{} // decoded again whole by the codec
	}
	if _, ok := boundedValue(b, maxValues); !ok {
		return fmt.Errorf("decode %T: not one whole msgpack value of at most %d values", v, maxValues)
	}
	if err := codec.NewDecoderBytes(b, &codec.MsgpackHandle{}).Decode(v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}
