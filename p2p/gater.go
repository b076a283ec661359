package p2p

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// maxBans bounds the ban list; beyond it the ban closest to expiry goes.
const maxBans = 4096

// gater is the host's connection gater: it refuses banned peers in both
// directions and, persistent peers excepted, inbound peers from an IP that
// already has maxPerIP inbound peers and inbound peers beyond the peer cap
// plus the handshake slack (which peers are admitted is decided after the
// handshake, by Node.admitPeer). It is safe for concurrent use.
type gater struct {
	maxPeers   int
	maxPerIP   int
	persistent map[peer.ID]bool // fixed at construction
	now        func() time.Time

	mu     sync.Mutex
	banned map[peer.ID]time.Time // until
	net    network.Network       // set once the host exists
}

func newGater(maxPeers, maxPerIP int, persistent map[peer.ID]bool) *gater {
	return &gater{maxPeers: maxPeers, maxPerIP: maxPerIP, persistent: persistent, now: time.Now, banned: make(map[peer.ID]time.Time)}
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

// InterceptSecured refuses banned peers, and new inbound peers from an IP
// with maxPerIP inbound peers already or while the node has MaxPeers plus
// the handshake slack connected peers.
func (g *gater) InterceptSecured(dir network.Direction, p peer.ID, addrs network.ConnMultiaddrs) bool {
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
	peers := n.Peers()
	if len(peers) >= g.maxPeers+handshakeSlack(g.maxPeers) {
		return false
	}
	ip, err := manet.ToIP(addrs.RemoteMultiaddr())
	if err != nil {
		return true // not an IP transport
	}
	sameIP := 0
	for _, q := range peers {
		if g.persistent[q] {
			continue
		}
		for _, c := range n.ConnsToPeer(q) {
			if c.Stat().Direction != network.DirInbound {
				continue
			}
			if qip, err := manet.ToIP(c.RemoteMultiaddr()); err == nil && qip.Equal(ip) {
				sameIP++
				break
			}
		}
	}
	return sameIP < g.maxPerIP
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
func (c *rejectCounter) add(p peer.ID) bool { return c.addN(p, 1) }

// addN counts weight rejected messages from p (an offence worse than one
// rejected message) and reports whether p has now reached the limit.
func (c *rejectCounter) addN(p peer.ID, weight int) bool {
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
	w.count += weight
	return w.count >= c.limit
}

// forget drops p's count (after it is banned or gone).
func (c *rejectCounter) forget(p peer.ID) {
	c.mu.Lock()
	delete(c.peers, p)
	c.mu.Unlock()
}
