package testnet

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node"
	"github.com/watchfed/watchfed/node/pki"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// liveHeap is the bytes of live objects after a collection. HeapInuse would
// count whole spans, so fragmentation left by earlier work could hide or
// inflate what the watchers hold. The second collection empties the
// sync.Pool caches (gRPC keeps its message buffers there), which survive
// one.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestSlowWatchConsumerBounded: watchers that stop reading a large backlog
// cost the node a bounded amount of memory (a batch of at most 512 KiB and a
// flow-control window each, not the backlog), and watchers beyond the limit
// are refused.
func TestSlowWatchConsumerBounded(t *testing.T) {
	const watchers, records = 4, 300
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := StartLocal(ctx, t.TempDir(), 3, node.Options{PublishWait: 30 * time.Second, MaxWatchers: watchers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	origin, partner := l.Nodes[0], l.Nodes[1]

	// A backlog of records near the size limit: 300 × 24 KiB.
	text := strings.Repeat("statement of reasons ", 390)
	rc := pb.NewRecordServiceClient(conn(t, origin))
	var wg sync.WaitGroup
	errs := make(chan error, records)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < records; i += 8 {
				_, err := rc.CreateRecord(ctx, &pb.CreateRecordRequest{Record: &pb.Record{
					Marking: pb.Marking_MARKING_GREEN, ChangeNote: text,
					Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: fmt.Sprintf("Backlog Trading %d", i)},
					Detail:  &pb.Record_Designation{Designation: &pb.Designation{Program: "TEST", Statement: text, LegalBasis: text}},
				}})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Both partners take the backlog in before the heap is measured: the
	// watchers' cost must not hide in, or be hidden by, replication.
	for _, p := range l.Nodes[1:] {
		pc := pb.NewSharedServiceClient(conn(t, p))
		waitFor(t, p.Agency+" holds the backlog", func() bool {
			resp, err := pc.ListShared(ctx, &pb.ListSharedRequest{PageSize: 1000}, grpc.MaxCallRecvMsgSize(64<<20))
			return err == nil && len(resp.Entries) == records
		})
	}
	backlog := uint64(records * 3 * len(text))

	// Watchers on their own connection with small windows, each reading one
	// entry and then nothing.
	tlsCfg, err := pki.Files{CACert: partner.Env.CACert, Cert: partner.Env.ClientCert, Key: partner.Env.ClientKey}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	slow, err := grpc.NewClient(partner.Addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	before := liveHeap()
	sc := pb.NewSharedServiceClient(slow)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	for i := 0; i < watchers; i++ {
		st, err := sc.Watch(wctx, &pb.WatchRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
	}

	// One more watcher than the limit is refused.
	st, err := pb.NewSharedServiceClient(conn(t, partner)).Watch(ctx, &pb.WatchRequest{})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("watcher over the limit: %v, want ResourceExhausted", err)
	}

	// While they stall, the node's memory stays far below what buffering
	// the backlog for each of them would take. Observed for a while, as
	// every Send that could run ahead has run by then; paced by round trips.
	limit := backlog * watchers / 4
	fc := pb.NewFederationServiceClient(conn(t, partner))
	var grew uint64
	for start := time.Now(); time.Since(start) < 3*time.Second; {
		if _, err := fc.GetStatus(ctx, &pb.GetStatusRequest{}); err != nil {
			t.Fatalf("node unresponsive with stalled watchers: %v", err)
		}
		if h := liveHeap(); h > before {
			grew = max(grew, h-before)
		}
		if grew > limit {
			t.Fatalf("heap grew %d MiB with %d stalled watchers over a %d MiB backlog", grew>>20, watchers, backlog>>20)
		}
	}
	t.Logf("heap grew at most %.1f MiB with %d stalled watchers over a %.1f MiB backlog (buffering it would take %.0f MiB)",
		float64(grew)/(1<<20), watchers, float64(backlog)/(1<<20), float64(backlog*watchers)/(1<<20))
}
