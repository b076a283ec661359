package p2p

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// maxBans bounds the ban list; beyond it the ban closest to expiry goes.
const maxBans = 4096

// gater is the host's connection gater: it refuses banned peers in both
// directions and inbound peers beyond the peer cap, persistent peers
// excepted. It is safe for concurrent use.
type gater struct {
	maxPeers   int
	persistent map[peer.ID]bool // fixed at construction
	now        func() time.Time

	mu     sync.Mutex
	banned map[peer.ID]time.Time // until
	net    network.Network       // set once the host exists
}

func newGater(maxPeers int, persistent map[peer.ID]bool) *gater {
	return &gater{maxPeers: maxPeers, persistent: persistent, now: time.Now, banned: make(map[peer.ID]time.Time)}
}

func (g *gater) setNetwork(n network.Network) {
	g.mu.Lock()
	g.net = n
	g.mu.Unlock()
}

// ban refuses p until now+d.
func (g *gater) ban(p peer.ID, d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if len(g.banned) >= maxBans {
		var oldest peer.ID
		var oldestUntil time.Time
		for id, until := range g.banned {
			if !until.After(now) {
				delete(g.banned, id)
				continue
			}
			if oldest == "" || until.Before(oldestUntil) {
				oldest, oldestUntil = id, until
			}
		}
		if len(g.banned) >= maxBans {
			delete(g.banned, oldest)
		}
	}
	g.banned[p] = now.Add(d)
}

// isBanned reports whether p is banned now.
func (g *gater) isBanned(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.banned[p]
	if !ok {
		return false
	}
	if !until.After(g.now()) {
		delete(g.banned, p)
		return false
	}
	return true
}

// InterceptPeerDial refuses to dial banned peers.
func (g *gater) InterceptPeerDial(p peer.ID) bool { return !g.isBanned(p) }

// InterceptAddrDial allows every address of an allowed peer.
func (g *gater) InterceptAddrDial(peer.ID, multiaddr.Multiaddr) bool { return true }

// InterceptAccept allows the handshake; the peer is judged once known.
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses banned peers, and new inbound peers while the
// node already has MaxPeers peers.
func (g *gater) InterceptSecured(dir network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	if g.isBanned(p) {
		return false
	}
	if dir != network.DirInbound || g.persistent[p] {
		return true
	}
	g.mu.Lock()
	n := g.net
	g.mu.Unlock()
	if n == nil || n.Connectedness(p) == network.Connected {
		return true
	}
	return len(n.Peers()) < g.maxPeers
}

// InterceptUpgraded allows every connection that got this far.
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// rejectCounter counts rejected messages per peer in fixed windows.
type rejectCounter struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	peers map[peer.ID]*rejectWindow
}

type rejectWindow struct {
	start time.Time
	count int
}

// maxRejectPeers bounds the counter's map; it is swept when full.
const maxRejectPeers = 4096

func newRejectCounter(limit int, window time.Duration) *rejectCounter {
	return &rejectCounter{limit: limit, window: window, now: time.Now, peers: make(map[peer.ID]*rejectWindow)}
}

// add counts one rejected message from p and reports whether p has now
// reached the limit within the current window.
func (c *rejectCounter) add(p peer.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	w, ok := c.peers[p]
	if !ok || now.Sub(w.start) >= c.window {
		if !ok && len(c.peers) >= maxRejectPeers {
			for id, old := range c.peers {
				if now.Sub(old.start) >= c.window {
					delete(c.peers, id)
				}
			}
			if len(c.peers) >= maxRejectPeers {
				return false // under attack from thousands of peers: scoring still applies
			}
		}
		w = &rejectWindow{start: now}
		c.peers[p] = w
	}
	w.count++
	return w.count >= c.limit
}

// forget drops p's count (after it is banned or gone).
func (c *rejectCounter) forget(p peer.ID) {
	c.mu.Lock()
	delete(c.peers, p)
	c.mu.Unlock()
}

// streamLimiter bounds the inbound streams of one protocol served at once,
// in total and per peer, so one peer cannot take every slot.
type streamLimiter struct {
	total, perPeer int

	mu     sync.Mutex
	n      int
	active map[peer.ID]int
}

func newStreamLimiter(total, perPeer int) *streamLimiter {
	return &streamLimiter{total: total, perPeer: perPeer, active: make(map[peer.ID]int)}
}

// acquire takes a slot for p, reporting false when none is free.
func (l *streamLimiter) acquire(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n >= l.total || l.active[p] >= l.perPeer {
		return false
	}
	l.n++
	l.active[p]++
	return true
}

// release returns p's slot.
func (l *streamLimiter) release(p peer.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.active[p]--; l.active[p] <= 0 {
		delete(l.active, p)
	}
}
