package testnet

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// screenFor returns the result for record id when ln screens name, or nil.
func screenFor(t *testing.T, ln *LocalNode, name, id string) *pb.ScreenResult {
	t.Helper()
	resp, err := pb.NewScreeningServiceClient(conn(t, ln)).Screen(context.Background(), &pb.ScreenRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Results {
		if r.Record.Id == id {
			return r
		}
	}
	return nil
}

// TestSharedEntriesAreScreened: a partner's designation is screened like an
// own record as soon as it arrives, leaves the index when delisted, survives
// a restart, and stops being screened when the receive block distrusts the
// partner.
func TestSharedEntriesAreScreened(t *testing.T) {
	l := startLocal(t, 2)
	de, fr := l.Nodes[0], l.Nodes[1]
	created := add(t, de, "Tech Trade LLC")
	id := created.Record.Id
	waitFor(t, fr.Agency+" screens "+de.Agency+"'s designation", func() bool {
		r := screenFor(t, fr, "Tech Trade GmbH", id)
		return r != nil && r.Shared && r.Origin == de.Agency && r.Score == 1
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := fr.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := l.Restart(ctx, fr); err != nil {
		t.Fatal(err)
	}
	if screenFor(t, fr, "Tech Trade", id) == nil {
		t.Fatal("shared entry not screened after restart: the index was not rebuilt")
	}

	// Distrust the partner: its entries stay stored but leave screening.
	policy := fmt.Sprintf("agency: %s\ndefault: deny\npartners:\n  %s:\n    kinds: [designation, denial]\n    max_marking: GREEN\nreceive:\n  default: trust\n  partners:\n    %s:\n      kinds: []\n", fr.Agency, de.Agency, de.Agency)
	if err := os.WriteFile(fr.PolicyPath(), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fr.Agency+" stops screening a distrusted partner", func() bool { return screenFor(t, fr, "Tech Trade", id) == nil })
	if err := fr.WritePolicy([]string{de.Agency}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fr.Agency+" screens the partner again", func() bool { return screenFor(t, fr, "Tech Trade", id) != nil })

	if _, err := pb.NewRecordServiceClient(conn(t, de)).DelistDesignation(context.Background(), &pb.DelistDesignationRequest{Id: id, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fr.Agency+" stops screening the delisted entry", func() bool { return screenFor(t, fr, "Tech Trade", id) == nil })
}
