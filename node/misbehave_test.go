package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/p2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestGarbagePeerIsDisconnectedWhileNetworkCommits connects a raw libp2p
// peer (gossipsub without ledgerd's validators) to every validator of a
// running four-validator network. It publishes garbage, wrong-chain and
// badly signed messages on every topic. Every validator must disconnect
// and ban it, and the network must keep committing one chain meanwhile.
func TestGarbagePeerIsDisconnectedWhileNetworkCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	w := startTestnet(t, 4, nil)
	w.waitHeight(2, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	h, ps, txps := newRawGossipPeer(t, ctx, "node-test")
	conns, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer conns.Close()
	topics := map[string]*pubsub.Topic{}
	joins := map[string]*pubsub.TopicEventHandler{}
	for kind, name := range p2p.TopicNames("node-test") {
		router := ps
		if kind == "tx" {
			router = txps
		}
		if topics[kind], err = router.Join(name); err != nil {
			t.Fatal(err)
		}
		if joins[kind], err = topics[kind].EventHandler(); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range w.nodes {
		if err := h.Connect(ctx, peer.AddrInfo{ID: nd.net.ID(), Addrs: nd.net.Addrs()}); err != nil {
			t.Fatal(err)
		}
		if err := p2p.Handshake(ctx, h, nd.net.ID(), "node-test", nd.Genesis().Hash()); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until every honest node has joined every topic from our side.
	for kind, ev := range joins {
		joined := map[peer.ID]bool{}
		for len(joined) < len(w.nodes) {
			pe, err := ev.NextPeerEvent(ctx)
			if err != nil {
				t.Fatalf("topic %s: %d of %d peers joined: %v", kind, len(joined), len(w.nodes), err)
			}
			if pe.Type == pubsub.PeerJoin {
				joined[pe.Peer] = true
			}
		}
		ev.Cancel()
	}

	start := w.nodes[0].Store().Height()
	key := w.accounts[0]
	to := ledgerAddr("victim")
	for i := 0; i < 10; i++ {
		wrongChain := &ledger.Tx{ChainID: "other-chain", To: to, Amount: 1, Nonce: uint64(i)}
		wrongChain.Sign(key)
		badSig := &ledger.Tx{ChainID: "node-test", To: to, Amount: 1, Nonce: uint64(i)}
		badSig.Sign(key)
		badSig.Sig[3] ^= 0xff
		vote := &ledger.Vote{Type: ledger.Prevote, Height: start + 1, Round: uint32(i), BlockID: ledgerAddrHash(i)}
		vote.Sign("node-test", key) // signed by a non-validator
		msgs := map[string][][]byte{
			"tx":       {[]byte(fmt.Sprintf("garbage %d", i)), p2p.EncodeTxsMessage([]*ledger.Tx{wrongChain}), p2p.EncodeTxsMessage([]*ledger.Tx{badSig})},
			"vote":     {[]byte{1, 4, byte(i)}, p2p.EncodeVoteMessage(vote)},
			"proposal": {[]byte("not a proposal")},
			"evidence": {[]byte("not evidence")},
		}
		for kind, list := range msgs {
			for _, m := range list {
				if err := topics[kind].Publish(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	// Every honest node disconnects the attacker...
	connected := map[peer.ID]bool{}
	for _, nd := range w.nodes {
		connected[nd.net.ID()] = h.Network().Connectedness(nd.net.ID()) == network.Connected
	}
	for left := func() int {
		n := 0
		for _, c := range connected {
			if c {
				n++
			}
		}
		return n
	}; left() > 0; {
		select {
		case <-ctx.Done():
			t.Fatalf("attacker still connected to %d honest nodes", left())
		case e := <-conns.Out():
			ev := e.(event.EvtPeerConnectednessChanged)
			if _, honest := connected[ev.Peer]; honest {
				connected[ev.Peer] = ev.Connectedness == network.Connected
			}
		}
	}
	// ...and bans it.
	for i, nd := range w.nodes {
		if !nd.net.IsBanned(h.ID()) {
			t.Fatalf("node %d disconnected the attacker without banning it", i)
		}
	}
	// And the network kept committing one chain.
	w.waitHeight(start+3, 60*time.Second)
	w.checkSameChain()
}

func ledgerAddrHash(i int) (h [32]byte) {
	h[0], h[1] = 0xbe, byte(i)
	return h
}
