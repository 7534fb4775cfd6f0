package main

import (
	"encoding/json"
	"strconv"

	"github.com/spf13/cobra"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// What became of a written version's shared entry (the JSON key
// "publication" of a write, beside "log_index").
const (
	pubCommitted = "committed"  // in the log at log_index, on a majority
	pubLocalOnly = "local_only" // a local-only record: never shared
	// Not shared yet: the node is in no federation, or the entry did not
	// commit within the node's publish wait; the node publishes it later.
	// The second (the node answers not_shared) exits with exitNotShared.
	pubNotShared = "not_shared"
)

// errNotShared ends a write stored but not shared within the node's publish
// wait while the node is in a federation (exit 7).
type errNotShared struct{}

func (errNotShared) Error() string {
	return "written, but not shared: its entry did not commit within the node's publish wait (no quorum reachable?); the node publishes it later"
}

// printWritten shows a written record with the log index of its shared
// entry and what became of it.
func (cf *clientFlags) printWritten(cmd *cobra.Command, r *pb.Record, logIndex uint64, notShared bool) error {
	if err := cf.printWrittenRecord(cmd, r, logIndex); err != nil {
		return err
	}
	if notShared {
		return errNotShared{}
	}
	return nil
}

func (cf *clientFlags) printWrittenRecord(cmd *cobra.Command, r *pb.Record, logIndex uint64) error {
	pub := pubCommitted
	switch {
	case logIndex > 0:
	case r.Local:
		pub = pubLocalOnly
	default:
		pub = pubNotShared
	}
	if cf.output == "json" {
		obj := protoJSON(r)
		extra, err := json.Marshal(struct {
			LogIndex    uint64 `json:"log_index"`
			Publication string `json:"publication"`
		}{logIndex, pub})
		if err != nil {
			return err
		}
		// The record's keys, then log_index and publication, in one object.
		obj = append(append(obj[:len(obj)-1:len(obj)-1], ','), extra[1:]...)
		return writeJSON(cmd.OutOrStdout(), json.RawMessage(obj))
	}
	idx := strconv.FormatUint(logIndex, 10)
	switch pub {
	case pubLocalOnly:
		idx = "- (local-only: never shared)"
	case pubNotShared:
		idx = "- (not yet shared: the node is in no federation, or no quorum within its publish wait; it publishes the entry later)"
	}
	return writeRecord(cmd.OutOrStdout(), r, "log_index", idx)
}
