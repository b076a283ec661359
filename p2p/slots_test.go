package p2p

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"
)

// joinFrom starts a node listening (and so dialling) from ip, connects it
// to n, and reports whether n admitted it (false once it is disconnected).
func joinFrom(t *testing.T, ctx context.Context, n *Node, ip string, mut ...func(*Config)) (*Node, bool) {
	t.Helper()
	j := startNode(t, newTestHandler(1, 0), testConfig(append([]func(*Config){func(c *Config) {
		c.ListenAddrs = []string{"/ip4/" + ip + "/tcp/0"}
	}}, mut...)...))
	if err := j.Connect(ctx, addrOf(t, n, false)); err != nil {
		return j, false
	}
	for _, c := range n.host.Network().ConnsToPeer(j.ID()) {
		if got, err := manet.ToIP(c.RemoteMultiaddr()); err == nil && got.String() != ip {
			t.Fatalf("connection from %s arrived from %s: the test needs its source address", ip, got)
		}
	}
	// Admitted, or refused (disconnected): whichever comes first.
	sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for {
		changed := n.admits.watch()
		if n.admits.admitted(j.ID()) {
			return j, true
		}
		if n.host.Network().Connectedness(j.ID()) != network.Connected {
			return j, false
		}
		select {
		case <-changed:
		case <-sub.Out():
		case <-ctx.Done():
			t.Fatalf("%s from %s neither admitted nor refused", j.ID(), ip)
		}
	}
}

// TestPeerSlotsResistSybils fills a node's inbound slots with idle
// identities from several addresses. An honest newcomer still gets in (the
// lowest-scored inbound peer makes way), a validator's node and a
// persistent peer get in on reserved slots, and one IP cannot hold more
// than MaxPeersPerIP inbound slots.
func TestPeerSlotsResistSybils(t *testing.T) {
	keyP := genKey(t)
	idP, _ := peer.IDFromPrivateKey(keyP)
	_, keys := testVals(t)
	const maxPeers = 5
	a := startNode(t, newTestHandler(1, 0), testConfig(func(c *Config) {
		c.MaxPeers = maxPeers
		c.MaxPeersPerIP = 2
		c.EvictGrace = time.Nanosecond
		c.PersistentPeers = []string{"/ip4/127.0.0.1/tcp/9/p2p/" + idP.String()}
	}))
	ctx := waitCtx(t, 60*time.Second)

	// Per IP: a third peer from 127.0.0.2 is refused.
	for i := range 3 {
		_, ok := joinFrom(t, ctx, a, "127.0.0.2")
		if want := i < 2; ok != want {
			t.Fatalf("peer %d from 127.0.0.2: admitted %v, want %v", i+1, ok, want)
		}
	}
	// Sybils from more addresses fill every ordinary slot, and more.
	for i := range maxPeers {
		joinFrom(t, ctx, a, fmt.Sprintf("127.0.0.%d", 3+i))
	}
	if got := len(a.Peers()); got > maxPeers {
		t.Fatalf("%d peers, cap %d", got, maxPeers)
	}
	if _, ok := joinFrom(t, ctx, a, "127.0.0.20"); !ok {
		t.Fatal("honest newcomer refused once Sybils filled the slots")
	}
	key := keys[1]
	v, ok := joinFrom(t, ctx, a, "127.0.0.21", func(c *Config) { c.ValidatorKey = &key })
	if !ok {
		t.Fatal("validator's node refused")
	}
	if p := peerInfo(a, v.ID()); p == nil || !p.Validator {
		t.Fatalf("validator's node not recognised: %+v", p)
	}
	p := startNodeKey(t, newTestHandler(1, 0), testConfig(func(c *Config) { c.ListenAddrs = []string{"/ip4/127.0.0.2/tcp/0"} }), keyP)
	if err := p.Connect(ctx, addrOf(t, a, false)); err != nil {
		t.Fatalf("persistent peer refused: %v", err)
	}
	waitAdmission(t, ctx, a, p.ID(), true)
	if got := len(a.Peers()); got > maxPeers+1 {
		t.Fatalf("%d peers with cap %d (one persistent above it at most)", got, maxPeers)
	}
}
