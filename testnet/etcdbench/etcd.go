// Command etcdbench prints watchfed's replication benchmark next to the same
// write load against an etcd cluster embedded in this process, 3 members on
// loopback and the WAN cases' members behind the same delays
// (go.etcd.io/etcd/server/v3/embed): 512-byte values, fsync on, mutual TLS
// 1.3 between members and from clients. It is a module of its own so that
// etcd stays out of watchfed's dependencies:
//
//	cd testnet/etcdbench && go run .
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/watchfed/watchfed/node/pki"
	"github.com/watchfed/watchfed/testnet"
	"github.com/watchfed/watchfed/testnet/bench"
)

// Cluster is an etcd cluster in this process.
type Cluster struct {
	members []*embed.Etcd
	tls     *tls.Config // a client's: certificate and trusted CA
	clients []string    // the members' client URLs
	leader  int         // the leader's position
	links   []*testnet.Link
}

// StartEtcd starts n members under dir with mutual TLS 1.3 between them
// and towards clients, certificates from watchfed's own pki. With delay > 0
// every member's peer port is behind a testnet proxy that delays what it
// carries by delay each way, as watchfed's WAN rows do between agencies: a
// message between two members takes delay, a round trip twice that.
// Clients reach their member directly (an agency's own).
func StartEtcd(ctx context.Context, dir string, n int, delay time.Duration) (*Cluster, error) {
	ca, err := pki.NewCA("ETCD-BENCH")
	if err != nil {
		return nil, err
	}
	certs := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		return nil, err
	}
	if err := ca.Save(certs); err != nil {
		return nil, err
	}
	issue := func(name string) (string, string, error) {
		is, err := ca.Issue(pki.IssueRequest{Agency: "ETCD-BENCH", Name: name, Roles: []pki.Role{pki.RoleNode}, Hosts: []string{"127.0.0.1", "localhost"}})
		if err != nil {
			return "", "", err
		}
		return pki.SaveIssued(is, filepath.Join(certs, name))
	}
	type ports struct{ peer, advertise, client string }
	ps := make([]ports, n)
	var initial []string
	c := &Cluster{}
	for i := range ps {
		if ps[i].peer, err = freeURL(); err != nil {
			return nil, err
		}
		if ps[i].client, err = freeURL(); err != nil {
			return nil, err
		}
		ps[i].advertise = ps[i].peer
		if delay > 0 {
			l, err := testnet.NewLink(strings.TrimPrefix(ps[i].peer, "https://"))
			if err != nil {
				c.Close()
				return nil, err
			}
			l.Set(delay, 0)
			c.links = append(c.links, l)
			ps[i].advertise = "https://" + l.Addr
		}
		c.clients = append(c.clients, ps[i].client)
		initial = append(initial, fmt.Sprintf("m%d=%s", i, ps[i].advertise))
	}
	for i := range n {
		cert, key, err := issue(fmt.Sprintf("m%d", i))
		if err != nil {
			return nil, err
		}
		tlsInfo := embedTLS(cert, key, filepath.Join(certs, pki.CACertFile))
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = filepath.Join(dir, cfg.Name)
		cfg.Logger, cfg.LogLevel = "zap", "fatal" // its shutdown logs errors that are none
		pu, _ := url.Parse(ps[i].peer)
		au, _ := url.Parse(ps[i].advertise)
		cu, _ := url.Parse(ps[i].client)
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*au}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = "watchfed-bench"
		cfg.ClusterState = embed.ClusterStateFlagNew
		cfg.ClientTLSInfo, cfg.PeerTLSInfo = tlsInfo, tlsInfo
		cfg.TlsMinVersion, cfg.TlsMaxVersion = "TLS1.3", "TLS1.3"
		cfg.UnsafeNoFsync = false // fsync on, as for watchfed
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("start etcd member %d: %w", i, err)
		}
		c.members = append(c.members, e)
	}
	for _, e := range c.members {
		select {
		case <-e.Server.ReadyNotify():
		case <-ctx.Done():
			c.Close()
			return nil, fmt.Errorf("etcd cluster not ready: %w", ctx.Err())
		}
	}
	cert, key, err := issue("client")
	if err != nil {
		c.Close()
		return nil, err
	}
	cti := embedTLS(cert, key, filepath.Join(certs, pki.CACertFile))
	if c.tls, err = cti.ClientConfig(); err != nil {
		c.Close()
		return nil, err
	}
	c.tls.MinVersion, c.tls.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	c.leader = -1
	for i, e := range c.members {
		if e.Server.Leader() == e.Server.MemberID() {
			c.leader = i
		}
	}
	if c.leader < 0 {
		c.Close()
		return nil, errors.New("etcd cluster has no leader")
	}
	return c, nil
}

func embedTLS(cert, key, ca string) (ti transport.TLSInfo) {
	ti.CertFile, ti.KeyFile, ti.TrustedCAFile, ti.ClientCertAuth = cert, key, ca, true
	return ti
}

func freeURL() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "https://" + l.Addr().String(), nil
}

// Close stops every member and proxy.
func (c *Cluster) Close() {
	for _, e := range c.members {
		e.Close()
	}
	for _, l := range c.links {
		l.Close()
	}
}

// Client connects to the leader, or to a follower (which forwards the
// writes to the leader, as a watchfed follower does).
func (c *Cluster) Client(at bench.Site) (*clientv3.Client, error) {
	i := c.leader
	for k, e := range c.members {
		if e.Server.Leader() == e.Server.MemberID() {
			i = k // leadership may have moved since the start
		}
	}
	if at == bench.AtFollower {
		i = (c.leader + 1) % len(c.clients)
	}
	// Quiet: the client logs every call cut short at the end of a row.
	return clientv3.New(clientv3.Config{Endpoints: []string{c.clients[i]}, TLS: c.tls, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

// Clients is n connections to the leader or to a follower.
func (c *Cluster) Clients(n int, at bench.Site) ([]*clientv3.Client, error) {
	var out []*clientv3.Client
	for range n {
		cl, err := c.Client(at)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		out = append(out, cl)
	}
	return out, nil
}

// Workload names the etcd rows.
const Workload = "Put over gRPC, acked with revision"

// PutOp returns an op that puts a fresh key with a value of size bytes,
// through clients shared 8 publishers to a connection as for watchfed.
func PutOp(clients []*clientv3.Client, size int) bench.Op {
	value := strings.Repeat("v", size)
	var seq atomic.Int64
	return func(ctx context.Context, c int) error {
		_, err := clients[c%len(clients)].Put(ctx, fmt.Sprintf("bench/%012d", seq.Add(1)), value)
		return err
	}
}
