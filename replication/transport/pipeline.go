package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	raftv1 "github.com/watchfed/watchfed/proto/watchfed/raft/v1"
)

// maxInFlight bounds the requests a pipeline sends ahead of their responses.
const maxInFlight = 128

// AppendEntriesPipeline implements raft.Transport.
func (t *Transport) AppendEntriesPipeline(_ raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	c, err := t.client(target)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(t.ctx)
	stream, err := c.AppendEntriesPipeline(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	p := &pipeline{
		t: t, stream: stream, cancel: cancel,
		inflight: make(chan *appendFuture, maxInFlight),
		done:     make(chan raft.AppendFuture, maxInFlight),
		closed:   make(chan struct{}),
	}
	go p.receive()
	return p, nil
}

type pipeline struct {
	t      *Transport
	stream raftv1.RaftService_AppendEntriesPipelineClient
	cancel context.CancelFunc

	sendMu   sync.Mutex
	inflight chan *appendFuture     // sent, awaiting a response, in order
	done     chan raft.AppendFuture // answered, for raft's consumer

	closeOnce sync.Once
	closed    chan struct{}
	err       error // why the pipeline broke; set before closed is closed
}

// errTooLarge turns raft from the pipeline to plain AppendEntries, which
// sends a large batch in parts.
var errTooLarge = errors.New("batch too large for one message: sent in parts without the pipeline")

// AppendEntries sends a request without waiting for its response.
func (p *pipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	if len(args.Entries) > 1 && entriesSize(args.Entries) > p.t.budget() {
		return nil, errTooLarge
	}
	b, err := encode(args)
	if err != nil {
		return nil, err
	}
	f := &appendFuture{start: time.Now(), req: args, resp: resp, done: make(chan struct{})}
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	select {
	case p.inflight <- f:
	case <-p.closed:
		return nil, p.brokenErr()
	}
	if err := p.stream.Send(&raftv1.AppendEntriesPipelineRequest{Msgpack: b}); err != nil {
		p.fail(fmt.Errorf("pipeline send: %w", err))
		return nil, p.brokenErr()
	}
	return f, nil
}

// receive completes futures in order. A response that does not come within
// the timeout breaks the pipeline: raft then retries without it.
func (p *pipeline) receive() {
	for {
		var f *appendFuture
		select {
		case f = <-p.inflight:
		case <-p.closed:
			return
		}
		watchdog := time.AfterFunc(p.t.cfg.Timeout, func() { p.fail(errors.New("pipeline response timed out")) })
		msg, err := p.stream.Recv()
		watchdog.Stop()
		if err == nil && msg.Error != "" {
			err = errors.New(msg.Error)
		}
		if err == nil {
			err = decode(msg.Msgpack, f.resp)
		}
		if err != nil {
			f.complete(err)
			p.fail(fmt.Errorf("pipeline receive: %w", err))
			return
		}
		f.complete(nil)
		select {
		case p.done <- f:
		case <-p.closed:
			return
		}
	}
}

// fail breaks the pipeline once, failing everything still in flight.
func (p *pipeline) fail(err error) {
	p.closeOnce.Do(func() {
		p.err = err
		close(p.closed)
		p.cancel()
		for {
			select {
			case f := <-p.inflight:
				f.complete(err)
			default:
				return
			}
		}
	})
}

func (p *pipeline) brokenErr() error {
	<-p.closed
	if p.err != nil {
		return p.err
	}
	return raft.ErrPipelineShutdown
}

// Consumer implements raft.AppendPipeline.
func (p *pipeline) Consumer() <-chan raft.AppendFuture { return p.done }

// Close implements raft.AppendPipeline.
func (p *pipeline) Close() error {
	p.fail(raft.ErrPipelineShutdown)
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	_ = p.stream.CloseSend()
	return nil
}

type appendFuture struct {
	start time.Time
	req   *raft.AppendEntriesRequest
	resp  *raft.AppendEntriesResponse
	once  sync.Once
	err   error
	done  chan struct{}
}

func (f *appendFuture) complete(err error) {
	f.once.Do(func() { f.err = err; close(f.done) })
}

func (f *appendFuture) Error() error {
	<-f.done
	return f.err
}
func (f *appendFuture) Start() time.Time                      { return f.start }
func (f *appendFuture) Request() *raft.AppendEntriesRequest   { return f.req }
func (f *appendFuture) Response() *raft.AppendEntriesResponse { return f.resp }
