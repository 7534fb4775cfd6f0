// Package raftv1 carries hashicorp/raft's RPCs between members over gRPC
// (each message wraps raft's own encoding). Generated with `go tool buf
// generate`; only this file is written by hand.
package raftv1
