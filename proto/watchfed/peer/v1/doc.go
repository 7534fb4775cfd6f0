// Package peerv1 is what federation members exchange among themselves and
// nothing else: the raft log's entry format (log.proto: commands, sealed
// publications, membership changes; its field numbers are the on-disk
// format of every member's log) and the node-to-node PeerService
// (peer.proto). Generated with `go tool buf generate`; only this file is
// written by hand.
package peerv1
