package testnet

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/watchfed/watchfed/node"
	"github.com/watchfed/watchfed/node/record"
	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestPartnerTextUnsafeToPrintRefused: a partner's node that skips the
// checks of a write (here: a record put straight into its store) publishes a
// name with an escape sequence and a bidi override. The receiving agency
// opens the entry, refuses it, and takes in what the partner publishes next.
func TestPartnerTextUnsafeToPrintRefused(t *testing.T) {
	l := startLocal(t, 2)
	de, fr := l.Nodes[0], l.Nodes[1]
	if err := fr.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := store.Open(filepath.Join(fr.Dir, node.StoreFile), store.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	ts := timestamppb.New(now)
	hostile := &pb.Record{
		Id: record.NewID(fr.Agency, now), Version: 1, Origin: fr.Agency, Kind: pb.Kind_KIND_DESIGNATION,
		Marking: pb.Marking_MARKING_GREEN, CreatedAt: ts, UpdatedAt: ts, UpdatedBy: "mallory",
		Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: "Evil \x1b]8;;http://evil\x07Corp \u202eETL"},
		Detail: &pb.Record_Designation{Designation: &pb.Designation{Program: "TEST", ListedOn: now.Format(time.DateOnly),
			Status: pb.DesignationStatus_DESIGNATION_STATUS_ACTIVE}},
	}
	if _, err := st.Put(ctx, hostile, &pb.AuditEvent{Time: ts, Agency: fr.Agency, Actor: "mallory", Action: "records.create", Target: hostile.Id, Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Restart(ctx, fr); err != nil {
		t.Fatal(err)
	}
	// The outbox publishes in order: once the next record arrives, the
	// hostile one went through the log before it.
	next := add(t, fr, "Clean Trading")
	waitFor(t, "DE takes in FR's next record", func() bool { _, ok := shared(t, de)[next.Record.Id]; return ok })
	if hit := grep(t, filepath.Join(de.Dir, "raft"), hostile.Id); hit == "" {
		t.Fatal("the hostile entry never reached DE's log: the test proves nothing")
	}
	if got, ok := shared(t, de)[hostile.Id]; ok {
		t.Fatalf("DE took in a partner's entry with an escape sequence: %q", got)
	}
	if !auditHas(t, de, "shared.refused", "invalid", "subject.name: contains U+001B (escape)") {
		t.Fatal("DE's audit log does not show the refused entry")
	}
}
