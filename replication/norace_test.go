//go:build !race

package replication

// raceSlowdown: see race_test.go.
const raceSlowdown = 1
