// Package testnet starts local federations on loopback: N nodes of N
// agencies, each with its own CA, certificates, configuration and data
// directory, as real `watchfed node` processes. It drives them from outside,
// as operators would: through the CLI's gRPC API.
package testnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/watchfed/watchfed/node"
	"github.com/watchfed/watchfed/node/pki"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// agencies are the ids a testnet gives its nodes, in order.
var agencies = []string{"DE-BAFA", "FR-SBDU", "NL-CDIU", "IT-UAMA", "ES-SGCE", "SE-ISP", "FI-UM"}

// AgencyID names the i-th agency of a testnet.
func AgencyID(i int) string {
	if i < len(agencies) {
		return agencies[i]
	}
	return fmt.Sprintf("AGENCY%d", i+1)
}

// Member is one agency of a testnet.
type Member struct {
	Agency string
	Dir    string // D/<agency>: data, certificates, node.yaml, env
	Addr   string
	Env    node.ClientEnv // operator+analyst client certificate
	// Binary is the watchfed binary this member's node runs, from its next
	// start (a rolling upgrade swaps it); empty: Options.Binary.
	Binary string
	// Args are added to the node's command line from its next start
	// (--recover, say).
	Args []string
	// RaftLogDir is the raft log's own disk (Options.RaftLogBytes), empty
	// if the log lies in Dir/raft.
	RaftLogDir string
	// MetricsAddr serves /metrics and /readyz (a testnet with disks of its
	// own, where /readyz must say disk full); empty: none.
	MetricsAddr string
	// logFile is the node's log; empty: Dir/node.log.
	logFile string
	process *os.Process
	exited  chan error // receives the process's end
}

// LogFile is the node's log (its stderr). A node with a disk of its own
// logs beside it, DIR/<agency>-node.log: a full disk must not cut the log
// that says what happened.
func (m *Member) LogFile() string {
	if m.logFile != "" {
		return m.logFile
	}
	return filepath.Join(m.Dir, "node.log")
}

// ConfigPath is the node's configuration file.
func (m *Member) ConfigPath() string { return filepath.Join(m.Dir, "node.yaml") }

// Options describe a testnet.
type Options struct {
	Nodes  int
	Dir    string
	Binary string // the watchfed binary; default: this executable
	// BasePort: node i listens on BasePort+i; 0 picks free ports.
	BasePort int
	// Log receives the nodes' stderr; nil writes D/<agency>/node.log.
	Detach bool
	// Faults puts a fault proxy on every directed pair of nodes (Net.Links);
	// the proxies live in this process, so this is for tests.
	Faults bool
	// Seed seeds the proxies' drop decisions.
	Seed uint64
	// DiskBytes > 0 gives every node's directory its own tmpfs of this size,
	// so that FillDisk can fill one (needs root; Prepare fails otherwise).
	DiskBytes int64
	// RaftLogBytes > 0 puts every node's raft log on a tmpfs of its own of
	// this size (Member.RaftLogDir, the node's raft_log_dir), apart from
	// its record stores (node.db, raft/fsm.db), so that FillRaftLogDisk
	// and FillDisk can fill one without the other (needs root).
	RaftLogBytes int64
	// Env is added to the nodes' environment.
	Env []string
	// NodeConfig is YAML added to every node.yaml Prepare writes (e.g.
	// "raft_snapshot_threshold: 16\n").
	NodeConfig string
}

// Net is a running testnet.
type Net struct {
	Options
	Members []*Member
	Links   *Links // with Options.Faults
	mounts  []string
}

// Prepare makes every agency's CA, certificates, configuration and env file.
// It is idempotent: an existing directory is reused.
func Prepare(o Options) (*Net, error) {
	if o.Nodes < 1 {
		return nil, errors.New("--nodes: at least 1")
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.Binary = exe
	}
	nt := &Net{Options: o}
	for i := 0; i < o.Nodes; i++ {
		m := &Member{Agency: AgencyID(i), Dir: filepath.Join(o.Dir, AgencyID(i))}
		port := 0
		if o.BasePort > 0 {
			port = o.BasePort + i
		}
		if o.DiskBytes > 0 {
			if err := nt.mountTmpfs(m.Dir, o.DiskBytes); err != nil {
				nt.Close()
				return nil, err
			}
		}
		if o.DiskBytes > 0 || o.RaftLogBytes > 0 {
			m.logFile = m.Dir + "-node.log"
		}
		if o.RaftLogBytes > 0 {
			m.RaftLogDir = filepath.Join(m.Dir, raftLogDisk)
		}
		if err := m.prepare(port, nt.addrs(), o.DiskBytes > 0 || o.RaftLogBytes > 0, o.NodeConfig); err != nil {
			nt.Close()
			return nil, fmt.Errorf("%s: %w", m.Agency, err)
		}
		if o.RaftLogBytes > 0 {
			if err := nt.mountTmpfs(m.RaftLogDir, o.RaftLogBytes); err != nil {
				nt.Close()
				return nil, err
			}
		}
		nt.Members = append(nt.Members, m)
	}
	var all []string
	for _, m := range nt.Members {
		all = append(all, m.Agency)
	}
	for _, m := range nt.Members {
		if _, err := os.Stat(m.PolicyPath()); err == nil {
			continue // keep an existing (perhaps edited) policy
		}
		if err := m.WritePolicy(all); err != nil {
			return nil, err
		}
	}
	if o.Faults {
		addrs := make([]string, len(nt.Members))
		for i, m := range nt.Members {
			addrs[i] = m.Addr
		}
		links, err := newLinks(addrs, o.Seed)
		if err != nil {
			nt.Close()
			return nil, err
		}
		nt.Links = links
		for i, m := range nt.Members {
			if err := m.setRoutes(links.Routes(i, addrs)); err != nil {
				nt.Close()
				return nil, err
			}
		}
	}
	return nt, nil
}

// setRoutes rewrites the member's peer_routes: its partners through the proxies.
func (m *Member) setRoutes(routes map[string]string) error {
	data, err := os.ReadFile(m.ConfigPath())
	if err != nil {
		return err
	}
	cfg := string(data)
	if i := strings.Index(cfg, "peer_routes:"); i >= 0 {
		cfg = cfg[:i]
	}
	cfg += "peer_routes:\n"
	for from, to := range routes {
		cfg += fmt.Sprintf("  %q: %q\n", from, to)
	}
	return os.WriteFile(m.ConfigPath(), []byte(cfg), 0o600)
}

// addrs are the members' addresses, metrics listeners included.
func (nt *Net) addrs() []string {
	var out []string
	for _, m := range nt.Members {
		out = append(out, m.Addr)
		if m.MetricsAddr != "" {
			out = append(out, m.MetricsAddr)
		}
	}
	return out
}

// raftLogDisk is where Options.RaftLogBytes mounts a member's raft log disk,
// inside its directory.
const raftLogDisk = "raft-log"

// prepare gives the member port, or a free one other than the addresses
// taken by the federation's other members, and a metrics listener if asked.
func (m *Member) prepare(port int, taken []string, metrics bool, extra string) error {
	if data, err := os.ReadFile(m.ConfigPath()); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "listen: "); ok {
				m.Addr = v
			}
			if v, ok := strings.CutPrefix(line, "metrics_listen: "); ok {
				m.MetricsAddr = v
			}
		}
		m.Env = node.ClientEnv{Addr: m.Addr, CACert: filepath.Join(m.Dir, "certs", pki.CACertFile),
			ClientCert: filepath.Join(m.Dir, "certs", "client.pem"), ClientKey: filepath.Join(m.Dir, "certs", "client-key.pem")}
		return nil
	}
	m.Addr = "127.0.0.1:" + strconv.Itoa(port)
	if port == 0 {
		var err error
		if m.Addr, err = FreeAddr(taken...); err != nil {
			return err
		}
	}
	cfg := node.Defaults()
	cfg.Agency, cfg.Listen, cfg.DataDir = m.Agency, m.Addr, m.Dir
	if err := os.MkdirAll(m.Dir, 0o700); err != nil {
		return err
	}
	env, err := node.EnsureDevCerts(&cfg)
	if err != nil {
		return err
	}
	m.Env = env
	yaml := fmt.Sprintf("agency: %s\nlisten: %s\ndata_dir: .\nlog_format: json\ntls:\n  ca_cert: certs/ca.pem\n  cert: certs/node.pem\n  key: certs/node-key.pem\npolicy: %s\n", m.Agency, m.Addr, PolicyFile)
	if m.RaftLogDir != "" {
		// Small segments: a fault fills the disk while the node is bound to
		// need a new one (an append inside a preallocated segment cannot fail).
		yaml += "raft_log_dir: " + raftLogDisk + "\nraft_log_segment_bytes: 65536\n"
	}
	if metrics {
		if m.MetricsAddr, err = FreeAddr(append(taken, m.Addr)...); err != nil {
			return err
		}
		yaml += "metrics_listen: " + m.MetricsAddr + "\n"
	}
	yaml += extra
	return os.WriteFile(m.ConfigPath(), []byte(yaml), 0o600)
}

// Start starts every node and forms the federation: the first agency
// founds it, the others join by invitation. It returns when all have joined
// and a leader is elected.
// A directory whose nodes run is refused (*RunningError): starting them
// again would run two nodes on one data directory.
func (nt *Net) Start(ctx context.Context) error {
	if err := NotRunning(nt.Dir); err != nil {
		return err
	}
	first := nt.Members[0]
	if err := nt.start(ctx, first, ""); err != nil {
		return err
	}
	fed, conn, err := founder(ctx, first)
	if err != nil {
		return err
	}
	defer conn.Close()
	for i, m := range nt.Members[1:] {
		invitation := ""
		// A member's data, or a restored backup (fsm.db alone), rejoins
		// without an invitation.
		if _, err := os.Stat(filepath.Join(m.Dir, "raft", "fsm.db")); err != nil {
			invitation = filepath.Join(m.Dir, "invite.json")
			if err := invite(ctx, fed, m, m.Addr, invitation, nt.Members[:i+1]); err != nil {
				return err
			}
		}
		if err := nt.start(ctx, m, invitation); err != nil {
			return err
		}
	}
	return nt.WaitFormed(ctx)
}

// founder dials the first member and has it found the federation if it is
// in none yet; the caller closes the connection.
func founder(ctx context.Context, first *Member) (pb.FederationServiceClient, *grpc.ClientConn, error) {
	conn, err := first.Dial()
	if err != nil {
		return nil, nil, err
	}
	fed := pb.NewFederationServiceClient(conn)
	st, err := fed.GetStatus(ctx, &pb.GetStatusRequest{})
	if err == nil && st.Role == "none" {
		if _, err = fed.InitFederation(ctx, &pb.InitFederationRequest{}); err != nil {
			err = fmt.Errorf("init federation on %s: %w", first.Agency, err)
		}
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return fed, conn, nil
}

// invite has a member invite m, reached at addr, with every earlier member
// approving, and writes the invitation m's node starts with to path.
func invite(ctx context.Context, fed pb.FederationServiceClient, m *Member, addr, path string, earlier []*Member) error {
	ca, err := os.ReadFile(m.Env.CACert)
	if err != nil {
		return err
	}
	resp, err := fed.InvitePeer(ctx, &pb.InvitePeerRequest{Agency: m.Agency, Address: addr, CaCert: ca, Voter: true})
	if err != nil {
		return fmt.Errorf("invite %s: %w", m.Agency, err)
	}
	if err := ApproveEverywhere(ctx, resp.Proposal, earlier); err != nil {
		return fmt.Errorf("invite %s: %w", m.Agency, err)
	}
	data, err := protojson.Marshal(resp.Invitation)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

func (nt *Net) start(ctx context.Context, m *Member, invitation string) error {
	// An absolute path: the command line then names this directory's node
	// wherever `testnet down` runs (see nodeOf).
	config, err := filepath.Abs(m.ConfigPath())
	if err != nil {
		return err
	}
	args := []string{"node", "--config", config}
	if invitation != "" {
		args = append(args, "--join", invitation)
	}
	args = append(args, m.Args...)
	bin := nt.Binary
	if m.Binary != "" {
		bin = m.Binary
	}
	cmd := exec.Command(bin, args...)
	logf, err := os.OpenFile(m.LogFile(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), nt.Env...)
	// Its own process group: Ctrl-C on `testnet up` is handled by up, and
	// detached nodes outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", m.Agency, err)
	}
	m.process = cmd.Process
	if err := os.WriteFile(filepath.Join(m.Dir, "pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return err
	}
	exited, waited := make(chan error, 1), make(chan error, 1)
	go func() {
		err := cmd.Wait()
		exited <- err
		waited <- err
	}()
	m.exited = waited
	return m.waitHealthy(ctx, exited)
}

// Dial connects to the member's node with its operator+analyst certificate.
func (m *Member) Dial() (*grpc.ClientConn, error) {
	tlsCfg, err := pki.Files{CACert: m.Env.CACert, Cert: m.Env.ClientCert, Key: m.Env.ClientKey}.ClientConfig()
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(m.Addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
}

func (m *Member) waitHealthy(ctx context.Context, exited <-chan error) error {
	conn, err := m.Dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		cancel()
		if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(m.LogFile())
			return fmt.Errorf("%s exited (%v); its log:\n%s", m.Agency, err, tail(string(log), 20))
		case <-ctx.Done():
			return fmt.Errorf("%s not serving: %w", m.Agency, ctx.Err())
		default:
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitFormed waits until every member has joined, is reachable and a leader exists.
func (nt *Net) WaitFormed(ctx context.Context) error {
	conn, err := nt.Members[0].Dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	fed := pb.NewFederationServiceClient(conn)
	for {
		resp, err := fed.ListPeers(ctx, &pb.ListPeersRequest{})
		if err == nil && len(resp.Peers) == len(nt.Members) {
			ready, leader := 0, false
			for _, p := range resp.Peers {
				if p.Reachable {
					ready++
				}
				leader = leader || p.Role == "leader"
			}
			if ready == len(nt.Members) && leader {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("federation not formed: %w (last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
