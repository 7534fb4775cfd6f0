package federation

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// A node keeps one long-lived client connection per partner address for its
// calls on their PeerService: forwarding, status and joins. Across borders a
// TCP and TLS handshake costs several round trips; paying it once per peer,
// not once per call, keeps handshakes off a write's path. gRPC re-establishes
// a connection after a fault by itself; a connection to an address that is no
// longer a member's, or whose member's CA changed, is closed as the registry
// changes (retain), and every connection on Close.

// peerConns are the node's connections to its partners, by address.
type peerConns struct {
	dial func(addr string) (*grpc.ClientConn, error)

	mu     sync.Mutex
	conns  map[string]*peerConn
	closed bool
}

// peerConn is one partner's connection and the forward stream on it.
type peerConn struct {
	conn *grpc.ClientConn
	// ca is the CA registered for the address's member when dialled: a
	// re-bound member is dialled again.
	ca  []byte
	fwd *forwarder
}

var errConnsClosed = errors.New("the node is shutting down")

func newPeerConns(dial func(addr string) (*grpc.ClientConn, error)) *peerConns {
	return &peerConns{dial: dial, conns: map[string]*peerConn{}}
}

// get returns addr's connection, dialling it (lazily: gRPC connects on the
// first call) if there is none.
func (p *peerConns) get(addr string, ca []byte) (*peerConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errConnsClosed
	}
	if pc, ok := p.conns[addr]; ok {
		return pc, nil
	}
	c, err := p.dial(addr)
	if err != nil {
		return nil, err
	}
	pc := &peerConn{conn: c, ca: ca, fwd: newForwarder(c)}
	p.conns[addr] = pc
	return pc, nil
}

// retain closes the connections to addresses keep refuses (given the CA the
// connection was made under); the next call to such an address dials anew.
func (p *peerConns) retain(keep func(addr string, ca []byte) bool) {
	p.mu.Lock()
	var drop []*peerConn
	for addr, pc := range p.conns {
		if !keep(addr, pc.ca) {
			drop = append(drop, pc)
			delete(p.conns, addr)
		}
	}
	p.mu.Unlock()
	for _, pc := range drop {
		pc.close()
	}
}

// Close closes every connection; later calls fail.
func (p *peerConns) Close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[string]*peerConn{}
	p.mu.Unlock()
	for _, pc := range conns {
		pc.close()
	}
}

func (pc *peerConn) close() {
	pc.fwd.close()
	pc.conn.Close()
}

// peer is the connection to a member's node at addr.
func (f *Federation) peer(addr string) (*peerConn, error) {
	return f.conns.get(addr, f.caAt(addr))
}

// caAt is the CA registered for the member at addr (nil if none is there).
func (f *Federation) caAt(addr string) []byte {
	for _, m := range f.knownMembers() {
		if m.Address == addr {
			return m.CaCert
		}
	}
	return nil
}

// connLoop closes connections the registry no longer vouches for, each time
// it changes, until ctx ends.
func (f *Federation) connLoop(ctx context.Context) {
	for {
		changed := f.rep.Changed()
		f.conns.retain(keepConn(f.knownMembers()))
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// keepConn keeps a connection to an address some member has, dialled under
// that member's current CA.
func keepConn(members []*pb.Member) func(addr string, ca []byte) bool {
	return func(addr string, ca []byte) bool {
		for _, m := range members {
			if m.Address == addr {
				return bytes.Equal(m.CaCert, ca)
			}
		}
		return false
	}
}

// peerTLS is the client side of the node's mutual TLS towards partners: each
// handshake (a reconnect included) trusts the CAs registered at that moment,
// so a long-lived connection never reconnects under a registry it outlived.
// Handshakes then holds the certificate to its agency's registered CA.
type peerTLS struct{ f *Federation }

func (c peerTLS) current() credentials.TransportCredentials {
	cfg := c.f.base.Clone()
	cfg.ClientCAs, cfg.ClientAuth = nil, tls.NoClientCert
	cfg.RootCAs = c.f.trustPool()
	return credentials.NewTLS(cfg)
}

func (c peerTLS) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.current().ClientHandshake(ctx, authority, raw)
}

func (c peerTLS) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("peerTLS is a client's")
}

func (c peerTLS) Info() credentials.ProtocolInfo          { return c.current().Info() }
func (c peerTLS) Clone() credentials.TransportCredentials { return c }

//lint:ignore SA1019 part of the interface grpc-go still defines.
func (c peerTLS) OverrideServerName(string) error { return nil }
