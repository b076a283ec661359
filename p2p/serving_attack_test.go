package p2p

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// attacker is a plain libp2p host on ip that connects to n and completes
// the handshake, so n serves it like any peer of the chain.
func attacker(t *testing.T, ctx context.Context, ip string, n *Node) host.Host {
	t.Helper()
	h := startRawHost(t, ip)
	if err := h.Connect(ctx, peer.AddrInfo{ID: n.ID(), Addrs: n.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if err := Handshake(ctx, h, n.ID(), testChainID, testGenesis); err != nil {
		t.Fatal(err)
	}
	waitAdmission(t, ctx, n, h.ID(), true)
	return h
}

// waitBanned waits until n has banned p.
func waitBanned(t *testing.T, ctx context.Context, n *Node, h host.Host) {
	t.Helper()
	waitConnectedness(t, ctx, h, n.ID(), false)
	if !n.IsBanned(h.ID()) {
		t.Fatalf("%s disconnected but not banned", h.ID())
	}
}

// TestIdleStreamsCannotHoldServingSlots has eight identities open every
// block-sync and catch-up slot they can and send one byte of a request,
// then nothing. The server resets those streams after the short request
// deadline and penalises the idlers; meanwhile a restarted validator, which
// proves itself in the handshake, still syncs every block from that
// server.
func TestIdleStreamsCannotHoldServingSlots(t *testing.T) {
	const N = 40
	tc := getChain(t, N, 5)
	_, keys := testVals(t)
	a := startNode(t, newTestHandler(1, 0).serving(tc, N), testConfig(func(c *Config) {
		c.MaxPeersPerIP = 64
		c.RejectLimit = idleWeight // one idle stream gets an attacker banned
	}))
	ctx := waitCtx(t, 60*time.Second)

	var held []network.Stream
	var attackers []host.Host
	for range 8 {
		h := attacker(t, ctx, "127.0.0.1", a)
		attackers = append(attackers, h)
		for _, proto := range []string{syncProtocol, syncProtocol, catchupProtocol, catchupProtocol} {
			s, err := h.NewStream(ctx, a.ID(), a.protocol(proto))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write([]byte{syncRequestBytes}); err != nil { // a length, no body
				t.Fatal(err)
			}
			held = append(held, s)
		}
	}

	key := keys[0]
	f := startNode(t, newTestHandler(1, 0), testConfig(func(c *Config) { c.ValidatorKey = &key }))
	if err := f.Connect(ctx, addrOf(t, a, false)); err != nil {
		t.Fatal(err)
	}
	waitHeight(t, ctx, f, a.ID(), N)
	if p := peerInfo(a, f.ID()); p == nil || !p.Validator {
		t.Fatalf("validator's node not recognised as one: %+v", p)
	}
	var got []crypto.Hash
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	reached, err := f.NewSyncer().Sync(syncCtx, 1, inOrder(1, &got))
	if err != nil {
		t.Fatalf("sync under attack: %v", err)
	}
	if reached != N {
		t.Fatalf("reached %d, want %d", reached, N)
	}
	checkApplied(t, tc, 1, got, N)

	for _, s := range held {
		_ = s.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadAll(s); err == nil {
			t.Fatalf("idle stream to %s ended cleanly; want it reset", s.Protocol())
		}
	}
	// The first attacker certainly got slots (the others may have been
	// turned away as busy, which is no offence): it idled, so it is banned.
	waitBanned(t, ctx, a, attackers[0])
}

func peerInfo(n *Node, p peer.ID) *PeerInfo {
	for _, pi := range n.Peers() {
		if pi.ID == p {
			return &pi
		}
	}
	return nil
}

// TestMalformedRequestsArePenalised sends malformed block-sync and
// catch-up requests; each costs the sender malformedWeight, so with the
// reject limit at that weight one gets it banned.
func TestMalformedRequestsArePenalised(t *testing.T) {
	for name, proto := range map[string]string{"block sync": syncProtocol, "catch-up": catchupProtocol} {
		t.Run(name, func(t *testing.T) {
			a := startNode(t, newTestHandler(1, 0), testConfig(func(c *Config) { c.RejectLimit = malformedWeight }))
			ctx := waitCtx(t, 30*time.Second)
			h := attacker(t, ctx, "127.0.0.1", a)
			s, err := h.NewStream(ctx, a.ID(), a.protocol(proto))
			if err != nil {
				t.Fatal(err)
			}
			bad := make([]byte, syncRequestBytes) // version 0: unknown
			if err := writeFrame(s, bad); err != nil {
				t.Fatal(err)
			}
			_ = s.CloseWrite()
			waitBanned(t, ctx, a, h)
		})
	}
}

// TestServeBudgetBoundsBytesPerPeer has one peer ask for blocks as fast as
// it can; what it receives is bounded by the per-peer token bucket: the
// burst, plus the rate for the time it asked, plus one frame of debt.
func TestServeBudgetBoundsBytesPerPeer(t *testing.T) {
	const N, rate = 64, 64 << 10
	tc := getChain(t, N, 50)
	a := startNode(t, newTestHandler(1, 0).serving(tc, N), testConfig(func(c *Config) {
		c.ServeBytesPerSecond, c.ServeBurstBytes = rate, rate
	}))
	ctx := waitCtx(t, 60*time.Second)
	h := attacker(t, ctx, "127.0.0.1", a)
	maxFrame := 0
	for i := range tc.blocks {
		maxFrame = max(maxFrame, len(encodeSyncBlock(uint64(i+1), tc.blocks[i], tc.commits[i].Encode())))
	}
	start := time.Now()
	var total int64
	requests := 0
	for time.Since(start) < 2*time.Second {
		s, err := h.NewStream(ctx, a.ID(), a.protocol(syncProtocol))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFrame(s, syncRequest{from: 1, count: N}.encode()); err != nil {
			t.Fatal(err)
		}
		_ = s.CloseWrite()
		k, err := io.Copy(io.Discard, s)
		_ = s.Close()
		if err != nil {
			t.Fatalf("request %d: %v", requests, err)
		}
		total += k
		requests++
	}
	elapsed := time.Since(start)
	bound := int64(rate) + int64(float64(rate)*elapsed.Seconds()) + int64(maxFrame) + int64(requests)*(syncEndBytes+1)
	t.Logf("%d requests in %s: %d bytes served, bound %d", requests, elapsed, total, bound)
	if total > bound {
		t.Fatalf("served %d bytes to one peer in %s; budget allows %d", total, elapsed, bound)
	}
	if total < int64(maxFrame) {
		t.Fatalf("served only %d bytes: the budget must allow the burst", total)
	}
}

// TestMalformedRPCIsPenalised opens gossipsub streams and sends an RPC
// over the size limit, and one that is not protobuf. Pubsub resets such a
// stream; the node must also penalise the sender, here up to a ban.
func TestMalformedRPCIsPenalised(t *testing.T) {
	for name, frame := range map[string][]byte{
		"oversized": {0xff, 0xff, 0xff, 0x7f}, // a varint length of ~256 MiB
		"garbage":   {10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			a := startNode(t, newTestHandler(1, 0), testConfig(func(c *Config) { c.RejectLimit = malformedWeight }))
			ctx := waitCtx(t, 30*time.Second)
			h := attacker(t, ctx, "127.0.0.1", a)
			s, err := h.NewStream(ctx, a.ID(), protocol.ID(pubsub.GossipSubID_v11))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write(frame); err != nil {
				t.Fatal(err)
			}
			waitBanned(t, ctx, a, h)
		})
	}
}
