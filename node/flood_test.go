package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/p2p"
	"github.com/ledgerd/ledgerd/privval"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// attacker is a raw libp2p peer that publishes whatever it is told on the
// chain's topics. It joins the transaction topic on both gossipsub's
// standard protocols and the node's transaction protocols, so it reaches
// a node whichever router carries transactions.
type attacker struct {
	h      host.Host
	topics map[string][]*pubsub.Topic
}

func startAttacker(t *testing.T, ctx context.Context, w *testNet) *attacker {
	t.Helper()
	h, std, txr := newRawGossipPeer(t, ctx, "node-test")
	a := &attacker{h: h, topics: map[string][]*pubsub.Topic{}}
	for kind, name := range p2p.TopicNames("node-test") {
		routers := []*pubsub.PubSub{std}
		if kind == "tx" {
			routers = append(routers, txr)
		}
		for _, r := range routers {
			tp, err := r.Join(name)
			if err != nil {
				t.Fatal(err)
			}
			a.topics[kind] = append(a.topics[kind], tp)
		}
	}
	for _, nd := range w.nodes {
		if err := h.Connect(ctx, peer.AddrInfo{ID: nd.net.ID(), Addrs: nd.net.Addrs()}); err != nil {
			t.Fatal(err)
		}
		if err := p2p.Handshake(ctx, h, nd.net.ID(), nd.Genesis().ChainID, nd.Genesis().Hash()); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// waitJoined waits until kind's topic, on one of its routers, lists every
// node as a peer.
func (a *attacker) waitJoined(t *testing.T, ctx context.Context, kind string, n int) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, tp := range a.topics[kind] {
			if len(tp.ListPeers()) >= n {
				return
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("topic %s never listed %d peers", kind, n)
		}
	}
}

func (a *attacker) publish(t *testing.T, ctx context.Context, kind string, data []byte) {
	t.Helper()
	for _, tp := range a.topics[kind] {
		if err := tp.Publish(ctx, data); err != nil && ctx.Err() == nil {
			t.Fatal(err)
		}
	}
}

// bannedByAll reports how many nodes banned and disconnected a.
func (a *attacker) bannedBy(w *testNet) int {
	n := 0
	for _, nd := range w.nodes {
		if nd.net.IsBanned(a.h.ID()) && a.h.Network().Connectedness(nd.net.ID()) != network.Connected {
			n++
		}
	}
	return n
}

// floodUntilBanned calls send every 100ms until every node has banned and
// disconnected a, or fails after timeout.
func (a *attacker) floodUntilBanned(t *testing.T, ctx context.Context, w *testNet, timeout time.Duration, send func(pass int)) {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for pass := 0; a.bannedBy(w) < len(w.nodes); pass++ {
		send(pass)
		select {
		case <-tick.C:
		case <-deadline:
			scores := make([]string, 0, len(w.nodes))
			for _, nd := range w.nodes {
				for _, p := range nd.Peers() {
					if p.ID == a.h.ID() {
						scores = append(scores, fmt.Sprintf("score %+.0f penalty %.0f", p.Score, p.Penalty))
					}
				}
			}
			t.Fatalf("after %s of flooding, %d of %d nodes banned the attacker (its standing where still connected: %v)",
				timeout, a.bannedBy(w), len(w.nodes), scores)
		}
	}
}

// TestJunkTransfersGetSenderBanned: a peer gossips batches of 256
// transfers with valid signatures that can never execute (an unfunded
// sender, nonces 10^6 ahead). No node may admit one, every node must ban
// the peer, and the chain keeps committing.
func TestJunkTransfersGetSenderBanned(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	w := startTestnet(t, 4, nil)
	w.waitHeight(2, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	a := startAttacker(t, ctx, w)
	a.waitJoined(t, ctx, "tx", len(w.nodes))

	seed := crypto.Sum([]byte("pauper"))
	pauper, err := crypto.PrivKeyFromSeed(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	to := ledgerAddr("someone")
	start := w.nodes[0].Store().Height()
	a.floodUntilBanned(t, ctx, w, 60*time.Second, func(pass int) {
		batch := make([]*ledger.Tx, p2p.MaxTxsPerMessage)
		for i := range batch {
			tx := &ledger.Tx{ChainID: "node-test", To: to, Amount: 1000, Fee: 1, Nonce: 1_000_000 + uint64(pass*len(batch)+i)}
			tx.Sign(pauper)
			batch[i] = tx
		}
		a.publish(t, ctx, "tx", p2p.EncodeTxsMessage(batch))
	})
	for i, nd := range w.nodes {
		if _, ok := nd.Mempool().NextNonce(pauper.PubKey().Address()); ok {
			t.Errorf("node %d admitted junk transfers to its mempool", i)
		}
	}
	w.waitHeight(start+3, 60*time.Second)
	w.checkSameChain()
}

// TestFutureRoundVotesGetSenderBanned: a peer holding a validator's key
// gossips, for the next height, votes at every round the gossip window
// admits (1..MaxRoundsAhead). Consensus refuses all but the first
// MaxFutureRounds of them; each refusal must be charged to the peer that
// relayed it, until every node bans it, and the chain keeps committing.
func TestFutureRoundVotesGetSenderBanned(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	w := startTestnet(t, 4, nil)
	w.waitHeight(2, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cfg, err := LoadConfig(w.tn.Nodes[0].Home)
	if err != nil {
		t.Fatal(err)
	}
	key, err := privval.LoadKeyFile(cfg.ValidatorKeyFile()) // a byzantine twin of validator 0
	if err != nil {
		t.Fatal(err)
	}
	a := startAttacker(t, ctx, w)
	a.waitJoined(t, ctx, "vote", len(w.nodes))

	start := w.nodes[0].Store().Height()
	a.floodUntilBanned(t, ctx, w, 60*time.Second, func(pass int) {
		h := w.nodes[0].Store().Height() + 2 // the height after the one being decided
		for r := uint32(1); r <= p2p.MaxRoundsAhead; r++ {
			for _, typ := range []ledger.VoteType{ledger.Prevote, ledger.Precommit} {
				v := &ledger.Vote{Type: typ, Height: h, Round: r, BlockID: crypto.Sum(fmt.Appendf(nil, "flood %d %d", pass, r))}
				v.Sign("node-test", key)
				a.publish(t, ctx, "vote", p2p.EncodeVoteMessage(v))
			}
		}
	})
	w.waitHeight(start+3, 60*time.Second)
	w.checkSameChain()
}
