//go:build !watchfed_testbug

package main

// ackBeforeCommit is false in every real build. Only the reliability tests
// build the binary with the watchfed_testbug tag (ackearly_on.go), to prove
// their checker catches a node that acknowledges writes before they commit.
const ackBeforeCommit = false
