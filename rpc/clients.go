package rpc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/rpc/api"
)

// clientState is what the server knows of one client: an IP address.
// Per-client limits are kept by address so that no client, however many
// connections it opens, can hold the slots every other client needs.
type clientState struct {
	addr   netip.Addr
	exempt bool // in Config.UnlimitedClients: global caps only

	// Guarded by clients.mu.
	conns  int       // open TCP connections
	ws     int       // open WebSockets
	tokens float64   // request-rate bucket
	filled time.Time // when tokens was last topped up
}

// clients admits connections and calls against the connection caps and
// the per-client limits, and tracks idle keep-alive connections so that a
// full server can reclaim one instead of making new clients wait.
type clients struct {
	cfg *Config

	mu    sync.Mutex
	m     map[netip.Addr]*clientState
	total int // open connections
	ws    int // open WebSockets
	idle  map[*trackedConn]struct{}
	swept int // len(m) after the last sweep
}

func newClients(cfg *Config) *clients {
	return &clients{cfg: cfg, m: make(map[netip.Addr]*clientState), idle: make(map[*trackedConn]struct{})}
}

// refusal is why a connection or a WebSocket was not admitted.
type refusal struct {
	status int
	err    *api.Error
}

func (cl *clients) exempt(a netip.Addr) bool {
	for _, p := range cl.cfg.unlimited {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// stateLocked returns a's state, creating it.
func (cl *clients) stateLocked(a netip.Addr) *clientState {
	st := cl.m[a]
	if st == nil {
		st = &clientState{addr: a, exempt: cl.exempt(a), tokens: float64(cl.cfg.RequestBurstPerClient), filled: time.Now()}
		cl.m[a] = st
		if len(cl.m) > 2*cl.swept+cl.cfg.MaxConnections {
			cl.sweepLocked()
		}
	}
	return st
}

// sweepLocked forgets clients with no connection whose rate bucket has
// refilled: remembering them would change nothing. The map so holds the
// clients with connections (at most MaxConnections) and those seen in the
// last few seconds.
func (cl *clients) sweepLocked() {
	now := time.Now()
	for a, st := range cl.m {
		if st.conns == 0 && cl.refill(st, now) >= float64(cl.cfg.RequestBurstPerClient) {
			delete(cl.m, a)
		}
	}
	cl.swept = len(cl.m)
}

// admit counts a new connection in, or says why not. A client at its cap,
// or a server at its global cap, first gets an idle keep-alive connection
// (its own, or anyone's) closed to make room.
func (cl *clients) admit(c net.Conn) (*trackedConn, *refusal) {
	a := remoteAddr(c.RemoteAddr())
	cl.mu.Lock()
	st := cl.stateLocked(a)
	var victims []*trackedConn
	defer func() {
		cl.mu.Unlock()
		for _, v := range victims {
			v.Conn.Close()
		}
	}()
	if !st.exempt && st.conns >= cl.cfg.MaxConnectionsPerClient {
		v := cl.idleOfLocked(st)
		if v == nil {
			return nil, &refusal{http.StatusTooManyRequests, api.Errorf(api.CodeTooManyConnections,
				"too many connections from %s: the limit is %d per client (rpc.max_connections_per_client)", a, cl.cfg.MaxConnectionsPerClient)}
		}
		victims = append(victims, v)
		cl.releaseLocked(v)
	}
	if cl.total >= cl.cfg.MaxConnections {
		v := cl.idleOfLocked(nil)
		if v == nil {
			return nil, &refusal{http.StatusServiceUnavailable, api.Errorf(api.CodeTooManyConnections,
				"the node serves its maximum of %d connections (rpc.max_open_connections); retry later", cl.cfg.MaxConnections)}
		}
		victims = append(victims, v)
		cl.releaseLocked(v)
	}
	st.conns++
	cl.total++
	return &trackedConn{Conn: c, cl: cl, st: st, counted: true}, nil
}

// idleOfLocked picks the longest-idle keep-alive connection, of st only
// when st is set.
func (cl *clients) idleOfLocked(st *clientState) *trackedConn {
	var best *trackedConn
	for c := range cl.idle {
		if (st == nil || c.st == st) && (best == nil || c.idleSince.Before(best.idleSince)) {
			best = c
		}
	}
	return best
}

// releaseLocked counts a connection out, once.
func (cl *clients) releaseLocked(c *trackedConn) {
	if !c.counted {
		return
	}
	c.counted = false
	delete(cl.idle, c)
	c.st.conns--
	cl.total--
}

// setState follows http.Server's view of a connection: idle keep-alive
// connections may be reclaimed.
func (cl *clients) setState(nc net.Conn, s http.ConnState) {
	c, ok := nc.(*trackedConn)
	if !ok {
		return
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if s == http.StateIdle && c.counted {
		c.idleSince = time.Now()
		cl.idle[c] = struct{}{}
	} else {
		delete(cl.idle, c)
	}
}

// enterWS counts a WebSocket in, or says why not.
func (cl *clients) enterWS(st *clientState) *refusal {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if !st.exempt && st.ws >= cl.cfg.MaxWebSocketsPerClient {
		return &refusal{http.StatusTooManyRequests, api.Errorf(api.CodeTooManyConnections,
			"too many WebSockets from %s: the limit is %d per client (rpc.max_websockets_per_client)", st.addr, cl.cfg.MaxWebSocketsPerClient)}
	}
	if cl.ws >= cl.cfg.MaxWebSockets {
		return &refusal{http.StatusServiceUnavailable, api.Errorf(api.CodeTooManyConnections,
			"the node serves its maximum of %d WebSockets (rpc.max_websockets); retry later", cl.cfg.MaxWebSockets)}
	}
	st.ws++
	cl.ws++
	return nil
}

func (cl *clients) leaveWS(st *clientState) {
	cl.mu.Lock()
	st.ws--
	cl.ws--
	cl.mu.Unlock()
}

// refill tops st's bucket up for the time passed and returns its tokens.
func (cl *clients) refill(st *clientState, now time.Time) float64 {
	burst := float64(cl.cfg.RequestBurstPerClient)
	st.tokens = min(burst, st.tokens+now.Sub(st.filled).Seconds()*cl.cfg.RequestsPerSecondPerClient)
	st.filled = now
	return st.tokens
}

// allowCall takes one call from st's rate budget. Nil st (a connection
// the server did not accept itself, as in tests) and exempt clients are
// not limited.
func (cl *clients) allowCall(st *clientState) bool {
	if st == nil || st.exempt {
		return true
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.refill(st, time.Now()) < 1 {
		return false
	}
	st.tokens--
	return true
}

// remoteAddr is the client key of a remote address: its IP (IPv4-mapped
// IPv6 addresses as IPv4).
func remoteAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// trackedConn is an admitted connection; closing it counts it out.
type trackedConn struct {
	net.Conn
	cl *clients
	st *clientState

	// Guarded by cl.mu.
	counted   bool
	idleSince time.Time
}

// Close counts the connection out and closes it.
func (c *trackedConn) Close() error {
	c.cl.mu.Lock()
	c.cl.releaseLocked(c)
	c.cl.mu.Unlock()
	return c.Conn.Close()
}

type clientKey struct{}

// clientOf is the client state of the connection a request came on.
func clientOf(ctx context.Context) *clientState {
	st, _ := ctx.Value(clientKey{}).(*clientState)
	return st
}

// limitedListener admits connections through clients; refused ones get a
// short HTTP answer saying why, written by a bounded set of goroutines.
type limitedListener struct {
	net.Listener
	cl      *clients
	log     func(msg string, args ...any)
	refuser chan struct{} // slots for refusal writers
	wg      *sync.WaitGroup
}

// refuseWait bounds how long a refused connection is kept to say why.
const refuseWait = 2 * time.Second

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, why := l.cl.admit(c)
		if tc != nil {
			return tc, nil
		}
		l.log("rpc: refused a connection", "remote", c.RemoteAddr().String(), "reason", why.err.Message)
		select {
		case l.refuser <- struct{}{}:
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				defer func() { <-l.refuser }()
				writeRefusal(c, why)
			}()
		default:
			c.Close() // too many refusals in progress to explain each
		}
	}
}

// writeRefusal answers a connection that was not admitted with an HTTP
// error and closes it, reading what the client sent meanwhile so the
// close does not reset the connection before the answer arrives.
func writeRefusal(c net.Conn, why *refusal) {
	defer c.Close()
	body := encodeError(nil, why.err)
	c.SetDeadline(time.Now().Add(refuseWait))
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: %d\r\n\r\n%s",
		why.status, http.StatusText(why.status), len(body), body)
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	buf := make([]byte, 4096)
	for n := 0; n < 64<<10; {
		m, err := c.Read(buf)
		n += m
		if err != nil {
			return
		}
	}
}
