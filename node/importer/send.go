package importer

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node/record"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// chunkBytes bounds one message of an import stream, well under the
// node's max_message_bytes.
const chunkBytes = 1 << 20

// Options are how an edition is imported: its marking, a dry run, and the
// operator's overrides of the node's safety limits (audited by the node).
type Options struct {
	Marking      pb.Marking
	DryRun       bool
	AllowRejects bool     // more than 1 % of the rows may be rejected
	MaxDelist    *uint32  // at most this many delistings or revocations
	MaxDelistPct *float64 // else at most this percentage of the records in force
}

// Send streams a parsed edition to a node's ImportService with the default
// limits and returns the node's summary.
func Send(ctx context.Context, c pb.ImportServiceClient, res *Result, marking pb.Marking, dryRun bool, progress func(sent int)) (*pb.ImportResponse, error) {
	return SendWith(ctx, c, res, Options{Marking: marking, DryRun: dryRun}, progress)
}

// SendWith streams a parsed edition to a node's ImportService and returns
// the node's summary. An entry too large to send (over the record size
// limit) is moved to the rejects, by line. The rejects are counted and their
// refs sent, so the node refuses an edition of too many bad rows and does not
// delist an entry whose row it never saw. progress, if set, is called with
// the number of records sent.
func SendWith(ctx context.Context, c pb.ImportServiceClient, res *Result, o Options, progress func(sent int)) (*pb.ImportResponse, error) {
	res.rejectOversized()
	stream, err := c.Import(ctx)
	if err != nil {
		return nil, err
	}
	req := &pb.ImportRequest{Source: res.Source, Marking: o.Marking, DryRun: o.DryRun, AllowRejects: o.AllowRejects,
		MaxDelistCount: o.MaxDelist, MaxDelistPercent: o.MaxDelistPct, RowsRejected: uint32(len(res.Rejects))}
	for _, r := range res.Rejects {
		if r.Ref != "" {
			req.UnreadRefs = append(req.UnreadRefs, r.Ref)
		}
	}
	size, sent := 0, 0
	flush := func() error {
		if err := stream.Send(req); err != nil {
			if errors.Is(err, io.EOF) {
				// The node ended the call: its status says why.
				_, err = stream.CloseAndRecv()
			}
			return fmt.Errorf("send: %w", err)
		}
		sent += len(req.Records)
		if progress != nil {
			progress(sent)
		}
		req, size = &pb.ImportRequest{}, 0
		return nil
	}
	for _, it := range res.Items {
		n := proto.Size(it.Record)
		if size+n > chunkBytes && len(req.Records) > 0 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		req.Records = append(req.Records, it.Record)
		size += n
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return stream.CloseAndRecv()
}

// rejectOversized moves the items over the record size limit to the rejects:
// the node would refuse them, and they may not fit in a message at all.
func (r *Result) rejectOversized() {
	kept := r.Items[:0]
	for _, it := range r.Items {
		if proto.Size(it.Record) > record.MaxRecordBytes {
			// Validate names the fields over their limits, beside the size.
			r.reject(it.Line, it.Record.GetSourceRef(), "%v", record.Validate(it.Record))
			continue
		}
		kept = append(kept, it)
	}
	clear(r.Items[len(kept):])
	r.Items = kept
}
