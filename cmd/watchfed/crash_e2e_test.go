package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

func designation(name string) *pb.Record {
	return &pb.Record{
		Marking: pb.Marking_MARKING_GREEN,
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: name, Countries: []string{"RU"}},
		Detail:  &pb.Record_Designation{Designation: &pb.Designation{Program: "TEST"}},
	}
}

// TestKillDuringWrites: kill -9 the node during a stream of concurrent writes;
// after a restart every acknowledged write is there and the audit chain verifies.
func TestKillDuringWrites(t *testing.T) {
	dir := t.TempDir()
	n := startDevNode(t, dir, freeAddr(t))
	client := pb.NewRecordServiceClient(n.conn())

	var (
		mu    sync.Mutex
		acked = map[string]string{} // id → name
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	enough := make(chan struct{})
	var once sync.Once
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("Writer %d Entity %d", w, i)
				resp, err := client.CreateRecord(ctx, &pb.CreateRecordRequest{Record: designation(name)})
				if err != nil {
					return // the node is gone
				}
				mu.Lock()
				acked[resp.Record.Id] = name
				if len(acked) >= 300 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Fatal("300 writes were not acknowledged within 60s")
	}
	n.kill() // SIGKILL while the writers are still writing
	wg.Wait()
	cancel()

	n2 := startDevNode(t, dir, freeAddr(t))
	c2 := pb.NewRecordServiceClient(n2.conn())
	for id, name := range acked {
		resp, err := c2.GetRecord(context.Background(), &pb.GetRecordRequest{Id: id})
		if err != nil {
			t.Fatalf("acknowledged write %s lost after kill -9: %v", id, err)
		}
		if resp.Record.Subject.Name != name {
			t.Fatalf("%s: name %q, want %q", id, resp.Record.Subject.Name, name)
		}
	}
	verify := n2.ok("audit", "verify")
	t.Logf("%d acknowledged writes survived; %s", len(acked), verify)
}
