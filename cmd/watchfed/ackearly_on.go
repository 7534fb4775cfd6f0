//go:build watchfed_testbug

package main

// ackBeforeCommit: a deliberate bug, built in only with the watchfed_testbug
// tag by testnet/jepsen's TestJepsenCatchesEarlyAck. Never ship this build.
const ackBeforeCommit = true
