package p2p

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// rawPeer is a plain libp2p host with gossipsub joined to the chain's
// topics but none of this package's validators: it publishes whatever it
// is told to.
type rawPeer struct {
	h      host.Host
	ps     *pubsub.PubSub
	topics [numTopics]*pubsub.Topic
}

func startRawPeer(t *testing.T, chainID string) *rawPeer {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		h.Close()
	})
	var routers [numRouters]*pubsub.PubSub
	for i := range routers {
		opts := []pubsub.Option{pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
			pubsub.WithMessageIdFn(messageID), pubsub.WithMaxMessageSize(DefaultMaxMessageBytes)}
		if i == routerTx {
			opts = append(opts, pubsub.WithGossipSubProtocols(TxGossipProtocols(chainID), txGossipFeatures))
		}
		if routers[i], err = pubsub.NewGossipSub(ctx, h, opts...); err != nil {
			t.Fatal(err)
		}
	}
	r := &rawPeer{h: h, ps: routers[routerConsensus]}
	for i, spec := range topicSpecs {
		if r.topics[i], err = routers[spec.router].Join(topicName(chainID, spec.name)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// TestMisbehavingPeerIsBanned connects a raw gossipsub peer to an honest
// node; it publishes garbage, wrong-chain and bad-signature messages on
// every topic. The honest node rejects every one, disconnects and bans the
// peer, refuses it when it dials back, and honest messages between honest
// nodes keep flowing.
//
// Two mechanisms ban: gossipsub's score falling below the graylist
// threshold, and the per-peer count of rejected messages; each subtest
// leaves only one of them able to fire first.
func TestMisbehavingPeerIsBanned(t *testing.T) {
	t.Run("by score", func(t *testing.T) { testMisbehavingPeer(t, 1<<20) })
	t.Run("by reject count", func(t *testing.T) { testMisbehavingPeer(t, 4) })
}

func testMisbehavingPeer(t *testing.T, rejectLimit int) {
	const H = 3
	_, keys := testVals(t)
	ha, hb, hc := newTestHandler(H, 0), newTestHandler(H, 0), newTestHandler(H, 0)
	a := startNode(t, ha, testConfig(func(c *Config) { c.RejectLimit = rejectLimit }))
	b := startNode(t, hb, testConfig(func(c *Config) { c.PersistentPeers = []string{addrOf(t, a, false)} }))
	startNode(t, hc, testConfig(func(c *Config) { c.PersistentPeers = []string{addrOf(t, a, false)} }))
	ctx := waitCtx(t, 30*time.Second)

	m := startRawPeer(t, testChainID)
	ai := peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}
	if err := m.h.Connect(ctx, ai); err != nil {
		t.Fatal(err)
	}
	if err := Handshake(ctx, m.h, a.ID(), testChainID, testGenesis); err != nil {
		t.Fatal(err)
	}
	topics := m.topics[:]
	waitTopicPeers(t, ctx, topics, 1)
	if err := a.WaitMesh(ctx, 2); err != nil { // b and c at least
		t.Fatal(err)
	}

	acct := getChain(t, 0, 0).c.Accounts
	to := acct[1].PubKey().Address()
	bad := map[int][][]byte{}
	for i := range 3 {
		garbage := func(topic int) []byte { return fmt.Appendf(nil, "garbage %d on %d", i, topic) }
		wrongTx := &ledger.Tx{ChainID: "other-chain", To: to, Amount: uint64(1 + i), Fee: 1}
		wrongTx.Sign(acct[0])
		badTx := ledgertest.Transfer(acct[0], to, uint64(1+i), 1, 0)
		badTx.Sig[1] ^= 1
		wrongVote := &ledger.Vote{Type: ledger.Prevote, Height: H, Round: uint32(i), BlockID: hashOf("b")}
		wrongVote.Sign("other-chain", keys[0])
		badVote := signedVote(keys, 0, ledger.Precommit, H, uint32(i), hashOf("b"))
		badVote.Sig[2] ^= 1
		prop, parts := signedProposal(keys, 0, H, uint32(i+1), mustBlock(t))
		badProp := *prop
		badProp.Sig[3] ^= 1
		wrongProp := *prop
		wrongProp.Sign("other-chain", keys[0])
		ev := ledger.NewEvidence(signedVote(keys, 1, ledger.Prevote, H, uint32(i), hashOf("x")), signedVote(keys, 1, ledger.Prevote, H, uint32(i), hashOf("y")))
		ev.VoteA.Sig[4] ^= 1
		bad[topicTx] = append(bad[topicTx], garbage(topicTx), encodeTx(wrongTx), encodeTx(badTx))
		bad[topicVote] = append(bad[topicVote], garbage(topicVote), encodeVote(wrongVote), encodeVote(badVote))
		bad[topicProposal] = append(bad[topicProposal], garbage(topicProposal), encodeProposal(&wrongProp), encodeProposal(&badProp), encodePart(&badProp, parts[0]))
		bad[topicEvidence] = append(bad[topicEvidence], garbage(topicEvidence), encodeEvidence(ev))
	}
	for i, msgs := range bad {
		for _, data := range msgs {
			if err := m.topics[i].Publish(ctx, data); err != nil {
				t.Fatal(err)
			}
		}
	}

	waitConnectedness(t, ctx, m.h, a.ID(), false)
	if !a.IsBanned(m.h.ID()) {
		t.Fatal("misbehaving peer disconnected but not banned")
	}
	if err := m.h.Connect(ctx, ai); err == nil {
		waitConnectedness(t, ctx, m.h, a.ID(), false) // the gater closes it once secured
	}

	// Honest traffic still flows, and nothing bad reached any handler.
	tx := ledgertest.Transfer(acct[1], acct[0].PubKey().Address(), 7, 1, 0)
	if err := b.PublishTx(ctx, tx); err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]*testHandler{"a": ha, "c": hc} {
		if got := recvOne(t, ctx, h.txs, "honest tx at "+name); got.Hash() != tx.Hash() {
			t.Fatalf("%s got tx %s, want the honest %s", name, got.Hash(), tx.Hash())
		}
	}
	for name, h := range map[string]*testHandler{"a": ha, "b": hb, "c": hc} {
		if n := len(h.txs) + len(h.votes) + len(h.proposals) + len(h.parts) + len(h.evidence); n != 0 {
			t.Errorf("%s: %d invalid messages delivered", name, n)
		}
	}
}

func mustBlock(t *testing.T) *ledger.Block {
	t.Helper()
	b, err := ledger.DecodeBlock(getChain(t, 1, 2).blocks[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}
