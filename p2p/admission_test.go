package p2p

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// startRawHost starts a plain libp2p host (no ledgerd protocols) listening
// on TCP at ip, so the connections it dials come from ip.
func startRawHost(t *testing.T, ip string) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/"+ip+"/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestOtherChainPeerIsRefused connects nodes of another chain ID and of
// the same chain ID with another genesis: the handshake refuses both, they
// are disconnected, banned, and never counted as peers, while a node of
// this chain is admitted. A plain libp2p host that never handshakes is
// disconnected once the handshake timeout passes and is never a peer.
func TestOtherChainPeerIsRefused(t *testing.T) {
	ha := newTestHandler(1, 0)
	a := startNode(t, ha, testConfig(func(c *Config) { c.HandshakeTimeout = 2 * time.Second }))
	addrA := addrOf(t, a, false)
	b := startNode(t, newTestHandler(1, 0), testConfig(func(c *Config) { c.BootstrapPeers = []string{addrA} }))
	x := startNode(t, newTestHandler(1, 0), testConfig(func(c *Config) { c.ChainID = "other-chain" }))
	y := startNode(t, newTestHandler(1, 0), testConfig(func(c *Config) { c.GenesisHash = crypto.Sum([]byte("another genesis")) }))
	ctx := waitCtx(t, 30*time.Second)
	waitAdmission(t, ctx, a, b.ID(), true)
	for name, other := range map[string]*Node{"other chain ID": x, "other genesis": y} {
		if err := other.Connect(ctx, addrA); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		waitConnectedness(t, ctx, a.host, other.ID(), false)
		if !a.IsBanned(other.ID()) {
			t.Fatalf("%s: disconnected but not banned", name)
		}
		if err := other.Connect(ctx, addrA); err == nil {
			waitConnectedness(t, ctx, other.host, a.ID(), false)
		}
		if len(other.Peers()) != 0 {
			t.Fatalf("%s: counts %v as peers", name, other.Peers())
		}
	}

	raw := startRawHost(t, "127.0.0.1")
	if err := raw.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		t.Fatal(err)
	}
	for _, p := range a.Peers() {
		if p.ID == raw.ID() {
			t.Fatal("a host that never completed the handshake counts as a peer")
		}
	}
	waitConnectedness(t, ctx, a.host, raw.ID(), false)

	peers := a.Peers()
	if len(peers) != 1 || peers[0].ID != b.ID() {
		t.Fatalf("peers %v, want only %s", peers, b.ID())
	}
	if _, ok := a.PeerHeights()[x.ID()]; ok {
		t.Fatal("status exchanged with a peer of another chain")
	}

	// Gossip still flows between the nodes of this chain.
	if err := b.WaitMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	acct := getChain(t, 0, 0).c.Accounts
	tx := ledgertest.Transfer(acct[0], acct[1].PubKey().Address(), 2, 1, 0)
	if err := b.PublishTx(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if got := recvOne(t, ctx, ha.txs, "tx"); got.Hash() != tx.Hash() {
		t.Fatalf("got tx %s, want %s", got.Hash(), tx.Hash())
	}
}

// TestHandshakeWithOtherChainFails runs the exported dialling side against
// a node of another chain: it reports the mismatch.
func TestHandshakeWithOtherChainFails(t *testing.T) {
	a := startNode(t, newTestHandler(1, 0), testConfig())
	ctx := waitCtx(t, 30*time.Second)
	raw := startRawHost(t, "127.0.0.1")
	if err := raw.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		t.Fatal(err)
	}
	err := Handshake(ctx, raw, a.ID(), "other-chain", testGenesis)
	if err == nil || !strings.Contains(err.Error(), "another chain") {
		t.Fatalf("handshake with the wrong chain: %v", err)
	}
}

// TestListenAddressInUse starts a node whose TCP port is taken: it must
// fail, naming the address, rather than run on QUIC alone.
func TestListenAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := "/ip4/127.0.0.1/tcp/" + strings.Split(l.Addr().String(), ":")[1]
	cfg := testConfig(func(c *Config) { c.ListenAddrs = []string{taken, "/ip4/127.0.0.1/udp/0/quic-v1"} })
	vals, _ := testVals(t)
	n, err := New(context.Background(), cfg, genKey(t), newTestHandler(1, 0), staticSets{vals})
	if err == nil {
		n.Close()
		t.Fatalf("node started with %s taken; listening on %v", taken, n.Addrs())
	}
	if !strings.Contains(err.Error(), taken) {
		t.Fatalf("error %q does not name %s", err, taken)
	}
}
