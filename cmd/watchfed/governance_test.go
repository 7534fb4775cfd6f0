package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestProposalOutput: proposals list prints exactly the columns and JSON
// keys of the CLI contract, and a pending proposal says how to approve it,
// with whatever a partner put in it escaped.
func TestProposalOutput(t *testing.T) {
	p := &pb.Proposal{Id: "42", Action: "remove", Agency: "BE-FPS", ProposedBy: "FR\x1b]8;;SBDU", Approvals: 1, Needed: 2,
		State: "pending", ExpiresAt: timestamppb.New(time.Date(2026, 12, 9, 9, 0, 0, 0, time.UTC))}
	var js bytes.Buffer
	if err := writeJSON(&js, []proposalJSON{toProposalJSON(p)}); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range got[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"action", "agency", "approvals", "expires_at", "id", "needed", "proposed_by", "state"}
	if !slices.Equal(keys, want) {
		t.Fatalf("JSON keys %v, want %v", keys, want)
	}
	if got[0]["approvals"] != 1.0 || got[0]["needed"] != 2.0 || got[0]["expires_at"] != "2026-12-09T09:00:00Z" {
		t.Errorf("JSON %v", got[0])
	}
	var tbl bytes.Buffer
	if err := table(&tbl, proposalsHeader, [][]string{proposalRow(p)}); err != nil {
		t.Fatal(err)
	}
	if h := strings.Fields(strings.SplitN(tbl.String(), "\n", 2)[0]); !slices.Equal(h, []string{"ID", "ACTION", "AGENCY", "PROPOSED_BY", "APPROVALS", "NEEDED", "STATE", "EXPIRES_AT"}) {
		t.Errorf("header %v", h)
	}
	var line bytes.Buffer
	printProposal(&line, p)
	if strings.ContainsRune(line.String(), 0x1b) || !strings.Contains(line.String(), "1 of 2 approvals") || !strings.Contains(line.String(), "watchfed proposals approve 42") {
		t.Errorf("printed %q", line.String())
	}
}
