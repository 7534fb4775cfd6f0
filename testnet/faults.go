package testnet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Fault kinds Net.Inject and Compose.Inject inject (the jepsen package draws them).
const (
	FaultPartitionOne    = "partition-one"    // one node cut off from the rest
	FaultPartitionLeader = "partition-leader" // the leader cut off
	FaultPartitionSplit  = "partition-split"  // a random minority and majority
	FaultOneWay          = "one-way"          // a node cannot reach another, the reverse works
	FaultLatency         = "latency"          // every link slow
	FaultDrop            = "drop"             // connections reset at random
	FaultCut             = "cut"              // every connection reset at once
	FaultKill            = "kill"             // kill -9 a node, restart it at heal
	FaultPowerLoss       = "power-loss"       // kill -9 a node and lose its unsynced writes, restart it at heal
	FaultPause           = "pause"            // SIGSTOP a node, SIGCONT at heal
	FaultDiskFull        = "disk-full"        // fill one node's disk, free it at heal
	// FaultRaftLogDiskFull fills one node's raft log disk
	// (Options.RaftLogBytes), frees it at heal; disk-full then fills the
	// disk of its record stores alone.
	FaultRaftLogDiskFull = "disk-full-raft-log"
)

// AllFaults are every fault kind; disk-full needs Options.DiskBytes,
// disk-full-raft-log Options.RaftLogBytes.
var AllFaults = []string{FaultPartitionOne, FaultPartitionLeader, FaultPartitionSplit, FaultOneWay,
	FaultLatency, FaultDrop, FaultCut, FaultKill, FaultPowerLoss, FaultPause, FaultDiskFull, FaultRaftLogDiskFull}

// Draw is what the seed decided for one fault: nodes A ≠ B, a permutation
// of the nodes, a latency.
type Draw struct {
	A, B    int
	Perm    []int
	Latency time.Duration
}

// Nodes are the testnet's members.
func (nt *Net) Nodes() []*Member { return nt.Members }

// Kinds: every fault needs the proxies, disk-full a per-node disk.
func (nt *Net) Kinds() []string {
	var out []string
	for _, k := range AllFaults {
		if (nt.Links == nil && k != FaultKill && k != FaultPowerLoss && k != FaultPause) ||
			(k == FaultDiskFull && nt.DiskBytes == 0) || (k == FaultRaftLogDiskFull && nt.RaftLogBytes == 0) {
			continue
		}
		out = append(out, k)
	}
	return out
}

// Inject implements jepsen.Nemesis.
func (nt *Net) Inject(ctx context.Context, kind string, d Draw) (string, func(context.Context) error, error) {
	ms := nt.Members
	a, b, perm, latency := d.A, d.B, d.Perm, d.Latency
	healLinks := func(context.Context) error { nt.Links.Heal(); return nil }
	switch kind {
	case FaultPartitionOne:
		nt.Links.Partition([]int{a}, others(len(ms), a))
		return fmt.Sprintf("partition %s | rest", ms[a].Agency), healLinks, nil
	case FaultPartitionLeader:
		l := leader(ctx, ms)
		if l < 0 {
			l = a
		}
		nt.Links.Partition([]int{l}, others(len(ms), l))
		return fmt.Sprintf("partition leader %s | rest", ms[l].Agency), healLinks, nil
	case FaultPartitionSplit:
		k := (len(ms) - 1) / 2
		nt.Links.Partition(perm[:k], perm[k:])
		return fmt.Sprintf("partition %v | %v", perm[:k], perm[k:]), healLinks, nil
	case FaultOneWay:
		nt.Links.OneWay(a, b)
		return fmt.Sprintf("one-way %s ↛ %s", ms[a].Agency, ms[b].Agency), healLinks, nil
	case FaultLatency:
		nt.Links.Slow(latency, 0)
		return fmt.Sprintf("latency %v on every link", latency), healLinks, nil
	case FaultDrop:
		nt.Links.Slow(0, 0.02)
		return "2% of chunks reset their connection", healLinks, nil
	case FaultCut:
		nt.Links.Cut()
		return "every connection reset", healLinks, nil
	case FaultKill:
		if err := nt.Kill(ms[a]); err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("kill -9 %s", ms[a].Agency), func(ctx context.Context) error { return nt.Restart(ctx, ms[a]) }, nil
	case FaultPowerLoss:
		if err := nt.Kill(ms[a]); err != nil {
			return "", nil, err
		}
		if err := losePowerState(ms[a]); err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("power loss on %s", ms[a].Agency), func(ctx context.Context) error { return nt.Restart(ctx, ms[a]) }, nil
	case FaultPause:
		if err := nt.Pause(ms[a]); err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("SIGSTOP %s", ms[a].Agency), func(context.Context) error { return nt.Resume(ms[a]) }, nil
	case FaultDiskFull, FaultRaftLogDiskFull:
		fill, what := nt.FillDisk, "disk"
		if kind == FaultRaftLogDiskFull {
			fill, what = nt.FillRaftLogDisk, "raft log disk"
		}
		if err := fill(ms[a]); err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("%s full on %s", what, ms[a].Agency), func(ctx context.Context) error {
			if err := nt.FreeDisk(ms[a]); err != nil {
				return err
			}
			// A full disk is an outage, not a crash: the node refuses
			// writes meanwhile and resumes by itself, without a restart.
			if !ms[a].Running() {
				return fmt.Errorf("%s exited on a full %s (see %s)", ms[a].Agency, what, ms[a].LogFile())
			}
			return nil
		}, nil
	}
	return "", nil, fmt.Errorf("unknown fault %q", kind)
}

// losePowerState leaves a killed member's files as a power loss may: what
// the node fsyncs (its record store and raft log) whole, its replicated
// state (raft/fsm.db, written without fsync) damaged, and the open marker
// beside it naming a boot that is gone. The node must rebuild the state from
// its raft snapshot and log when it starts.
func losePowerState(m *Member) error {
	path := filepath.Join(m.Dir, "raft", "fsm.db")
	if err := tearMetaPages(path); err != nil {
		return fmt.Errorf("power loss on %s: %w", m.Agency, err)
	}
	return os.WriteFile(path+".open", []byte("an-earlier-boot\n"), 0o600)
}

// tearMetaPages overwrites both meta pages of a bbolt file: what a torn
// write or a bad sector leaves.
func tearMetaPages(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteAt(bytes.Repeat([]byte{0xA5}, 2*os.Getpagesize()), 0)
	return err
}

func others(n, except int) []int {
	var out []int
	for i := 0; i < n; i++ {
		if i != except {
			out = append(out, i)
		}
	}
	return out
}

// leader is the position of the member that a reachable member names leader; -1 if none.
func leader(ctx context.Context, ms []*Member) int {
	for _, m := range ms {
		st, err := m.Status(ctx)
		if err != nil || st.Leader == "" {
			continue
		}
		for i, o := range ms {
			if o.Agency == st.Leader || strings.HasPrefix(st.Leader, o.Agency) {
				return i
			}
		}
	}
	return -1
}

// Status asks the member's node for its status on a connection of its own.
func (m *Member) Status(ctx context.Context) (*pb.GetStatusResponse, error) {
	conn, err := m.Dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return pb.NewFederationServiceClient(conn).GetStatus(cctx, &pb.GetStatusRequest{})
}

// HealAll lifts every fault: links, paused and dead processes, full disks.
func (nt *Net) HealAll(ctx context.Context) error {
	if nt.Links != nil {
		nt.Links.Heal()
	}
	for _, m := range nt.Members {
		if err := nt.Resume(m); err != nil {
			return err
		}
		if nt.DiskBytes > 0 || nt.RaftLogBytes > 0 {
			if err := nt.FreeDisk(m); err != nil {
				return err
			}
		}
		if err := nt.Restart(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// TmpfsAvailable reports whether a testnet can give its nodes a disk of
// their own (Options.DiskBytes): mounting a tmpfs needs root.
func TmpfsAvailable(dir string) error {
	nt := &Net{}
	if err := nt.mountTmpfs(dir, 1<<20); err != nil {
		return err
	}
	return nt.Close()
}
