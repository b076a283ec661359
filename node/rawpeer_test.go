package node

import (
	"context"
	"testing"

	"github.com/ledgerd/ledgerd/p2p"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// newRawGossipPeer starts a plain libp2p host on loopback with the two
// gossip routers a ledgerd node runs on chainID (consensus topics on the
// standard protocols, transactions on their own), and none of ledgerd's
// validators: a peer free to publish anything. The host closes with the test.
func newRawGossipPeer(t *testing.T, ctx context.Context, chainID string) (h host.Host, std, txs *pubsub.PubSub) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if std, err = pubsub.NewGossipSub(ctx, h, pubsub.WithMaxMessageSize(1<<20)); err != nil {
		t.Fatal(err)
	}
	if txs, err = pubsub.NewGossipSub(ctx, h, pubsub.WithMaxMessageSize(1<<20),
		pubsub.WithGossipSubProtocols(p2p.TxGossipProtocols(chainID), func(pubsub.GossipSubFeature, protocol.ID) bool { return true })); err != nil {
		t.Fatal(err)
	}
	return h, std, txs
}
