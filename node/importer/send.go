package importer

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// chunkBytes bounds one message of an import stream, well under the
// node's max_message_bytes.
const chunkBytes = 1 << 20

// Send streams a parsed edition to a node's ImportService and returns the
// node's summary. progress, if set, is called with the number of records sent.
func Send(ctx context.Context, c pb.ImportServiceClient, res *Result, marking pb.Marking, dryRun bool, progress func(sent int)) (*pb.ImportResponse, error) {
	stream, err := c.Import(ctx)
	if err != nil {
		return nil, err
	}
	req := &pb.ImportRequest{Source: res.Source, Marking: marking, DryRun: dryRun}
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
