package testnet

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Link is the fault proxy on one directed pair of nodes: every connection
// the From node opens to the To node's advertised address goes through it
// (the From node's peer_routes point there). The harness partitions, delays
// and cuts it.
type Link struct {
	From, To int    // member positions
	Addr     string // where the proxy listens
	target   string

	ln      net.Listener
	mu      sync.Mutex
	blocked bool          // partitioned: bytes vanish, nothing is answered
	latency time.Duration // added before every chunk
	drop    float64       // probability that a chunk resets the connection
	rng     *rand.Rand
	conns   map[*proxyConn]struct{}
	closed  bool
}

type proxyConn struct {
	client, server net.Conn
	dead           bool // was inside a partition: discards until cut
}

func (pc *proxyConn) close() {
	pc.client.Close()
	if pc.server != nil {
		pc.server.Close()
	}
}

// newLink listens on a free loopback port and forwards to target.
func newLink(from, to int, target string, seed uint64) (*Link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy %d→%d: %w", from, to, err)
	}
	l := &Link{From: from, To: to, Addr: ln.Addr().String(), target: target, ln: ln,
		rng: rand.New(rand.NewPCG(seed, uint64(from)<<32|uint64(to))), conns: map[*proxyConn]struct{}{}}
	go l.accept()
	return l, nil
}

func (l *Link) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.serve(c)
	}
}

func (l *Link) serve(c net.Conn) {
	pc := &proxyConn{client: c}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return
	}
	l.conns[pc] = struct{}{}
	blocked := l.blocked
	pc.dead = blocked
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.conns, pc)
		l.mu.Unlock()
		pc.close()
	}()
	if blocked {
		// A partition answers nothing: the dialer sees its handshake time
		// out, as across a real broken network, not a quick refusal.
		_, _ = io.Copy(io.Discard, c)
		return
	}
	s, err := net.DialTimeout("tcp", l.target, 2*time.Second)
	if err != nil {
		return
	}
	l.mu.Lock()
	pc.server = s
	l.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { l.pipe(pc, s, c); done <- struct{}{} }()
	go func() { l.pipe(pc, c, s); done <- struct{}{} }()
	<-done // one side ended: end both
}

// pipe copies src to dst chunk by chunk, applying the link's faults. A
// latency delays each chunk from the moment it was read, as a long line
// does: chunks in flight overlap, so the delay costs no bandwidth.
func (l *Link) pipe(pc *proxyConn, dst, src net.Conn) {
	line := make(chan chunk, 1024)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		failed := false
		for c := range line {
			if failed {
				continue // drain: the reader ends once the connection is closed
			}
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d) // the fault itself: this link is slow
			}
			if _, err := dst.Write(c.data); err != nil {
				pc.close()
				failed = true
			}
		}
	}()
	eof := l.read(pc, src, line)
	close(line)
	<-wrote
	if tc, ok := dst.(*net.TCPConn); ok && eof {
		_ = tc.CloseWrite()
	}
}

// chunk is what one read took from a connection, due at the other end.
type chunk struct {
	data []byte
	due  time.Time
}

// read puts what src sends on the line, until src ends (eof: cleanly) or
// the link cuts it.
func (l *Link) read(pc *proxyConn, src net.Conn, line chan<- chunk) (eof bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			l.mu.Lock()
			if l.blocked {
				pc.dead = true
			}
			dead, latency := pc.dead, l.latency
			cut := !dead && l.drop > 0 && l.rng.Float64() < l.drop
			l.mu.Unlock()
			if cut {
				pc.close()
				return false
			}
			if !dead {
				line <- chunk{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(latency)}
			}
		}
		if err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

// NewLink is a proxy to target on a free loopback port, with no fault until
// Set or Block (for a benchmark's delayed links to other systems).
func NewLink(target string) (*Link, error) { return newLink(-1, -1, target, 0) }

// Block partitions the link: what From sends to To vanishes, and the answers
// of connections already open vanish too.
func (l *Link) Block() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.blocked = true
}

// Set changes the link's latency and drop probability.
func (l *Link) Set(latency time.Duration, drop float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.latency, l.drop = latency, drop
}

// Cut resets every open connection (the nodes reconnect).
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for pc := range l.conns {
		pc.close()
	}
}

// Heal lifts every fault; connections that were inside a partition are
// reset, since bytes they lost cannot be replayed.
func (l *Link) Heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.blocked, l.latency, l.drop = false, 0, 0
	for pc := range l.conns {
		if pc.dead {
			pc.close()
		}
	}
}

// Close stops the proxy and its connections.
func (l *Link) Close() {
	l.mu.Lock()
	l.closed = true
	for pc := range l.conns {
		pc.close()
	}
	l.mu.Unlock()
	l.ln.Close()
}

// Links are the fault proxies between every ordered pair of members.
type Links struct {
	n  int
	by map[[2]int]*Link
}

func newLinks(addrs []string, seed uint64) (*Links, error) {
	ls := &Links{n: len(addrs), by: map[[2]int]*Link{}}
	for from := range addrs {
		for to := range addrs {
			if from == to {
				continue
			}
			l, err := newLink(from, to, addrs[to], seed)
			if err != nil {
				ls.Close()
				return nil, err
			}
			ls.by[[2]int{from, to}] = l
		}
	}
	return ls, nil
}

// Link is the proxy for from's connections to to.
func (ls *Links) Link(from, to int) *Link { return ls.by[[2]int{from, to}] }

// Routes are the peer_routes of member from: each partner's address to its proxy.
func (ls *Links) Routes(from int, addrs []string) map[string]string {
	out := map[string]string{}
	for to, a := range addrs {
		if to != from {
			out[a] = ls.Link(from, to).Addr
		}
	}
	return out
}

// Partition splits the members into groups that cannot reach each other.
// Members in no group are cut off from everyone.
func (ls *Links) Partition(groups ...[]int) {
	group := map[int]int{}
	for g, ms := range groups {
		for _, m := range ms {
			group[m] = g + 1
		}
	}
	for k, l := range ls.by {
		if group[k[0]] == 0 || group[k[0]] != group[k[1]] {
			l.Block()
		}
	}
}

// OneWay stops from reaching to, while to still reaches from.
func (ls *Links) OneWay(from, to int) { ls.Link(from, to).Block() }

// Slow adds latency and a drop probability to every link.
func (ls *Links) Slow(latency time.Duration, drop float64) {
	for _, l := range ls.by {
		l.Set(latency, drop)
	}
}

// Cut resets every connection between members.
func (ls *Links) Cut() {
	for _, l := range ls.by {
		l.Cut()
	}
}

// Heal lifts every fault on every link.
func (ls *Links) Heal() {
	for _, l := range ls.by {
		l.Heal()
	}
}

// Close stops every proxy.
func (ls *Links) Close() {
	for _, l := range ls.by {
		l.Close()
	}
}
