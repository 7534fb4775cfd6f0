package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/watchfed/watchfed/node"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Local is a federation of nodes running inside this process, for Go tests:
// the same nodes, certificates, TLS and gRPC as real processes, started and
// stopped without exec.
type Local struct {
	Dir   string
	Nodes []*LocalNode
	// Links join every pair of nodes, with StartLocalLinked.
	Links *Links
	opts  node.Options
}

// LocalNode is one in-process node.
type LocalNode struct {
	*Member
	node   *node.Node
	cancel context.CancelFunc
	done   chan error
}

// FastRaft is raft timing for tests on loopback: elections in a fraction of
// a second instead of seconds.
func FastRaft() *raft.Config {
	c := raft.DefaultConfig()
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 200 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.MaxAppendEntries = 512
	c.BatchApplyCh = true
	c.NoSnapshotRestoreOnStart = true
	return c
}

// StartLocal starts n agencies under dir: the first founds the federation,
// the others join by invitation.
func StartLocal(ctx context.Context, dir string, n int, opts node.Options) (*Local, error) {
	if opts.Raft == nil {
		opts.Raft = FastRaft()
	}
	l := &Local{Dir: dir, opts: opts}
	for i := 0; i < n; i++ {
		if _, err := l.Add(ctx); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// StartLocalLinked is StartLocal with every directed pair of nodes joined
// through a proxy (Links) that delays what it carries by delay, each way:
// agencies in different countries.
func StartLocalLinked(ctx context.Context, dir string, n int, opts node.Options, delay time.Duration) (*Local, error) {
	// Addresses, certificates and configurations first, so that each node's
	// peer_routes name the proxies before it starts (Add reuses them).
	var members []*Member
	var addrs []string
	for i := range n {
		m := &Member{Agency: AgencyID(i), Dir: filepath.Join(dir, AgencyID(i))}
		if err := m.prepare(0, addrs, false, ""); err != nil {
			return nil, err
		}
		members, addrs = append(members, m), append(addrs, m.Addr)
	}
	links, err := newLinks(addrs, 1)
	if err != nil {
		return nil, err
	}
	links.Slow(delay, 0)
	for i, m := range members {
		if err := m.setRoutes(links.Routes(i, addrs)); err != nil {
			links.Close()
			return nil, err
		}
	}
	l, err := StartLocal(ctx, dir, n, opts)
	if err != nil {
		links.Close()
		return nil, err
	}
	l.Links = links
	return l, nil
}

// Add starts the next agency's node and brings it into the federation.
func (l *Local) Add(ctx context.Context) (*LocalNode, error) {
	i := len(l.Nodes)
	m := &Member{Agency: AgencyID(i), Dir: filepath.Join(l.Dir, AgencyID(i))}
	var earlier, taken []string
	for _, ln := range l.Nodes {
		earlier, taken = append(earlier, ln.Agency), append(taken, ln.Addr)
	}
	if err := m.prepare(0, taken, false, ""); err != nil {
		return nil, err
	}
	if err := m.WritePolicy(earlier); err != nil {
		return nil, err
	}
	if i > 0 {
		ca, err := os.ReadFile(m.Env.CACert)
		if err != nil {
			return nil, err
		}
		var inv *pb.Invitation
		var proposal *pb.Proposal
		// Membership changes are made on the leader: a node forwards only
		// what its agency signed (before protocol 3 they are unsigned).
		err = l.leader(ctx).call(ctx, func(c pb.FederationServiceClient) error {
			resp, err := c.InvitePeer(ctx, &pb.InvitePeerRequest{Agency: m.Agency, Address: m.Addr, CaCert: ca, Voter: true})
			if err == nil {
				inv, proposal = resp.Invitation, resp.Proposal
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("invite %s: %w", m.Agency, err)
		}
		var approvers []*Member
		for _, ln := range l.Nodes {
			approvers = append(approvers, ln.Member)
		}
		if err := ApproveEverywhere(ctx, proposal, approvers); err != nil {
			return nil, fmt.Errorf("invite %s: %w", m.Agency, err)
		}
		if err := node.WriteInvitation(m.Dir, inv); err != nil {
			return nil, err
		}
		// The earlier agencies' policies name the newcomer once it is in
		// the registry (a policy naming a non-member is refused).
		for _, ln := range l.Nodes {
			if err := ln.WritePolicy(append(slices.Clone(earlier), m.Agency)); err != nil {
				return nil, err
			}
		}
	}
	ln := &LocalNode{Member: m}
	if err := l.run(ln); err != nil {
		return nil, err
	}
	l.Nodes = append(l.Nodes, ln)
	if i == 0 {
		if err := ln.call(ctx, func(c pb.FederationServiceClient) error {
			_, err := c.InitFederation(ctx, &pb.InitFederationRequest{})
			return err
		}); err != nil {
			return nil, fmt.Errorf("init federation: %w", err)
		}
	}
	return ln, ln.waitJoined(ctx)
}

// leader is the node that says it leads (the first node if none does).
func (l *Local) leader(ctx context.Context) *LocalNode {
	for _, ln := range l.Nodes {
		var st *pb.GetStatusResponse
		_ = ln.call(ctx, func(c pb.FederationServiceClient) (err error) {
			st, err = c.GetStatus(ctx, &pb.GetStatusRequest{})
			return err
		})
		if st.GetRole() == "leader" {
			return ln
		}
	}
	return l.Nodes[0]
}

func (l *Local) run(ln *LocalNode) error {
	cfg, err := node.LoadConfig(ln.ConfigPath())
	if err != nil {
		return err
	}
	// Every goroutine of the node carries its agency as a profiler label, so
	// that a CPU profile of a federation in one process tells its nodes apart
	// (go tool pprof -tagfocus agency=FR-DGT).
	pprof.Do(context.Background(), pprof.Labels("agency", ln.Agency), func(context.Context) {
		var n *node.Node
		if n, err = node.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), l.opts); err != nil {
			err = fmt.Errorf("%s: %w", ln.Agency, err)
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		ln.node, ln.cancel, ln.done = n, cancel, make(chan error, 1)
		go func() { ln.done <- n.Serve(ctx) }()
	})
	return err
}

// Stop stops a node gracefully (its data stays).
func (ln *LocalNode) Stop() error {
	if ln.cancel == nil {
		return nil
	}
	ln.cancel()
	ln.cancel = nil
	return <-ln.done
}

// Restart starts a stopped node again on its data.
func (l *Local) Restart(ctx context.Context, ln *LocalNode) error {
	if err := l.run(ln); err != nil {
		return err
	}
	return ln.waitHealthy(ctx, nil)
}

// Close stops every node (and the proxies between them).
func (l *Local) Close() error {
	var errs []error
	for _, ln := range l.Nodes {
		errs = append(errs, ln.Stop())
	}
	if l.Links != nil {
		l.Links.Close()
	}
	return errors.Join(errs...)
}

func (ln *LocalNode) call(ctx context.Context, fn func(pb.FederationServiceClient) error) error {
	conn, err := ln.Dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(pb.NewFederationServiceClient(conn))
}

// waitJoined waits until the node is a member of a federation with a leader.
func (ln *LocalNode) waitJoined(ctx context.Context) error {
	for {
		var st *pb.GetStatusResponse
		err := ln.call(ctx, func(c pb.FederationServiceClient) (err error) {
			st, err = c.GetStatus(ctx, &pb.GetStatusRequest{})
			return err
		})
		if err == nil && st.Role != "none" && st.Leader != "" && st.AppliedIndex > 0 {
			var peers *pb.ListPeersResponse
			_ = ln.call(ctx, func(c pb.FederationServiceClient) (err error) {
				peers, err = c.ListPeers(ctx, &pb.ListPeersRequest{})
				return err
			})
			for _, p := range peers.GetPeers() {
				if p.Agency == ln.Agency && p.Role != "invited" {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not join: %w (last: %v)", ln.Agency, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
