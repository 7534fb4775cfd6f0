package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/watchfed/watchfed/node/api"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func newWatchCmd() *cobra.Command {
	var cf clientFlags
	var from string
	var limit int
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Follow the shared entries this agency can read, in log order (JSON lines with -o json)",
		Long: `Follow the shared entries this agency can read, in log order, then the new ones as
they commit. Every entry carries its cursor, LOG_INDEX:POSITION (a bulk publication puts
up to 1,024 entries at one log index): the CURSOR column, "cursor" with -o json.

--from takes either form:
  --from CURSOR  (e.g. 1234:17) resume after exactly that entry: keep the cursor of the
                 last entry you processed and pass it after a disconnect; nothing is
                 missed or repeated, even in the middle of a bulk publication.
  --from INDEX   (e.g. 1234) start with the first entry of that log index, all its
                 positions included (from the start: 1). Resuming with the last
                 entry's index repeats the entries of it already seen, and with that
                 index + 1 skips the rest of a bulk publication: use the cursor.`,
		Example: `  watchfed watch --from 1 -o json
  watchfed watch --from 1234:17 -o json   # resume after the entry whose cursor was 1234:17
  watchfed watch --from 1234:17 --limit 500 -o json   # the next 500 entries, then exit`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := watchFrom(from)
			if err != nil {
				return err
			}
			if limit < 0 {
				return usagef("--limit %d: want 0 (follow) or more", limit)
			}
			return cf.withConn(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				stream, err := pb.NewSharedServiceClient(conn).Watch(ctx, req)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				if cf.output != "json" {
					fmt.Fprintln(w, "CURSOR\t"+sharedHeader)
				}
				for n := 0; limit == 0 || n < limit; n++ {
					resp, err := stream.Recv()
					if err == io.EOF || ctx.Err() != nil {
						return nil
					}
					if err != nil {
						return err
					}
					if cf.output == "json" {
						fmt.Fprintln(w, string(protoJSON(resp.Entry)))
						continue
					}
					row := append([]string{resp.Entry.Cursor}, sharedRows([]*pb.SharedEntry{resp.Entry})[0]...)
					fmt.Fprintln(w, joinCells(row))
				}
				return nil
			})
		},
	}
	addClientFlags(cmd, &cf)
	cmd.Flags().IntVar(&limit, "limit", 0, "exit after this many entries (0: follow until interrupted)")
	cmd.Flags().StringVar(&from, "from", "1", "where to start: a cursor LOG_INDEX:POSITION (resume after that entry) or a log index (its first entry)")
	return cmd
}

// watchFrom reads --from: a cursor (resume after it) or a log index (from
// its first entry).
func watchFrom(from string) (*pb.WatchRequest, error) {
	if strings.Contains(from, ":") {
		if _, _, err := api.ParseCursor(from); err != nil {
			return nil, usagef("--from: %v", err)
		}
		return &pb.WatchRequest{After: from}, nil
	}
	index, err := strconv.ParseUint(from, 10, 64)
	if err != nil {
		return nil, usagef("--from %q: want a cursor LOG_INDEX:POSITION (from an entry) or a log index", from)
	}
	return &pb.WatchRequest{FromIndex: index}, nil
}
