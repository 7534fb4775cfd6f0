package jepsen

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// The workload: each client creates, amends and delists designations on
// its own node and reads partners' entries consistently, recording every
// operation in the history the checker judges.

// client is one workload client, bound to one node.
type client struct {
	j    *Jepsen
	h    *history
	node int
	id   int
	conn *grpc.ClientConn
	rng  *rand.Rand
	n    int
	own  []*owned
	down bool // the last call found the node unavailable
}

type owned struct {
	id      string
	version uint64
}

func (c *client) tag() string {
	c.n++
	return fmt.Sprintf("jepsen c%d op%d", c.id, c.n)
}

func (c *client) run(ctx context.Context) {
	rc := pb.NewRecordServiceClient(c.conn)
	sc := pb.NewSharedServiceClient(c.conn)
	for ctx.Err() == nil {
		if c.down {
			// The node is down or unreachable: try again shortly rather than spin.
			wait(ctx, 200*time.Millisecond)
			c.down = false
		}
		p := c.rng.Float64()
		switch {
		case len(c.own) < 2 || p < 0.15:
			c.create(ctx, rc)
		case p < 0.45:
			c.amend(ctx, rc, c.rng.IntN(len(c.own)))
		case p < 0.55:
			c.delist(ctx, rc, c.rng.IntN(len(c.own)))
		default:
			c.read(ctx, sc)
		}
	}
}

// opCtx bounds one call: past the node's publish wait, so that a write
// that did not commit in time comes back without an index rather than as
// a client timeout.
func opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
}

func (c *client) invoke(w *written) {
	c.h.mu.Lock()
	c.h.invoked++
	c.h.writes[w.tag] = w
	c.h.mu.Unlock()
}

// settle records a write's outcome. A write acknowledged with a log index
// must be everywhere; any other outcome leaves it in flight: it may appear
// later or never, and the record is not written again by this client.
func (c *client) settle(w *written, call int64, idx uint64, err error, key int) {
	c.down = status.Code(err) == codes.Unavailable
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	ret := int64(math.MaxInt64)
	if err == nil && idx > 0 {
		w.acked = true
		ret = c.h.now()
	}
	if definitelyRefused(err) {
		delete(c.h.writes, w.tag)
		return
	}
	if w.id != "" {
		c.h.ops = append(c.h.ops, porcupine.Operation{ClientId: c.id, Input: regInput{write: true, version: w.version, tag: w.tag},
			Call: call, Output: uint64(0), Return: ret, Metadata: w.id})
	}
	if w.acked {
		if key < 0 {
			c.h.ids = append(c.h.ids, w.id)
			c.h.origin[w.id] = w.origin
			c.own = append(c.own, &owned{id: w.id, version: w.version})
		} else {
			c.own[key].version = w.version
		}
	} else if key >= 0 {
		c.own = slices.Delete(c.own, key, key+1)
	}
}

// definitelyRefused: the node said no before writing anything.
func definitelyRefused(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.Aborted, codes.NotFound, codes.PermissionDenied:
		return true
	}
	return false
}

func (c *client) create(ctx context.Context, rc pb.RecordServiceClient) {
	w := &written{origin: c.j.Target.Nodes()[c.node].Agency, version: 1, tag: c.tag()}
	c.invoke(w)
	call := c.h.now()
	octx, cancel := opCtx(ctx)
	defer cancel()
	rec := &pb.Record{
		Marking:    pb.Marking_MARKING_GREEN,
		ChangeNote: w.tag,
		Subject:    &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: "Jepsen Trading " + w.tag, Countries: []string{"RU"}},
		Detail:     &pb.Record_Designation{Designation: &pb.Designation{Program: "JEPSEN"}},
	}
	resp, err := rc.CreateRecord(octx, &pb.CreateRecordRequest{Record: rec})
	if err == nil {
		w.id = resp.Record.Id
	}
	c.settle(w, call, resp.GetLogIndex(), err, -1)
}

func (c *client) amend(ctx context.Context, rc pb.RecordServiceClient, k int) {
	o := c.own[k]
	w := &written{origin: c.j.Target.Nodes()[c.node].Agency, id: o.id, version: o.version + 1, tag: c.tag()}
	c.invoke(w)
	call := c.h.now()
	octx, cancel := opCtx(ctx)
	defer cancel()
	rec := &pb.Record{
		Id: o.id, Marking: pb.Marking_MARKING_GREEN, ChangeNote: w.tag,
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: "Jepsen Trading " + w.tag, Countries: []string{"RU"}},
		Detail:  &pb.Record_Designation{Designation: &pb.Designation{Program: "JEPSEN"}},
	}
	resp, err := rc.AmendRecord(octx, &pb.AmendRecordRequest{Record: rec, ExpectedVersion: o.version})
	c.settle(w, call, resp.GetLogIndex(), err, k)
}

func (c *client) delist(ctx context.Context, rc pb.RecordServiceClient, k int) {
	o := c.own[k]
	w := &written{origin: c.j.Target.Nodes()[c.node].Agency, id: o.id, version: o.version + 1, tag: c.tag()}
	c.invoke(w)
	call := c.h.now()
	octx, cancel := opCtx(ctx)
	defer cancel()
	resp, err := rc.DelistDesignation(octx, &pb.DelistDesignationRequest{Id: o.id, Reason: w.tag, ExpectedVersion: o.version})
	c.settle(w, call, resp.GetLogIndex(), err, k)
	// A delisted designation is final: nothing more to write on it.
	c.h.mu.Lock()
	if i := slices.Index(c.own, o); i >= 0 {
		c.own = slices.Delete(c.own, i, i+1)
	}
	c.h.mu.Unlock()
}

// read asks this client's node, consistently, for a record another agency
// published.
func (c *client) read(ctx context.Context, sc pb.SharedServiceClient) {
	self := c.j.Target.Nodes()[c.node].Agency
	c.h.mu.Lock()
	var cands []string
	for _, id := range c.h.ids {
		if c.h.origin[id] != self {
			cands = append(cands, id)
		}
	}
	c.h.mu.Unlock()
	if len(cands) == 0 {
		wait(ctx, 10*time.Millisecond) // nothing to read yet: let writers write
		return
	}
	id := cands[c.rng.IntN(len(cands))]
	c.h.mu.Lock()
	c.h.invoked++
	c.h.mu.Unlock()
	call := c.h.now()
	octx, cancel := opCtx(ctx)
	defer cancel()
	resp, err := sc.GetShared(octx, &pb.GetSharedRequest{Id: id, Consistent: true})
	var got uint64
	switch {
	case err == nil:
		got = resp.Entry.Record.Version
	case status.Code(err) == codes.NotFound:
	default:
		c.down = status.Code(err) == codes.Unavailable
		return // a failed read tells nothing
	}
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	c.h.ops = append(c.h.ops, porcupine.Operation{ClientId: c.id, Input: regInput{}, Call: call, Output: got, Return: c.h.now(), Metadata: id})
}
