package adversary

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/p2p"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	libp2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// attackerMaxMessageBytes is the pubsub message limit of a gossiping
// identity: well above the node's, so the attacker can send what the node
// must refuse.
const attackerMaxMessageBytes = 4 << 20

// dialTimeout bounds one dial of a target.
const dialTimeout = 10 * time.Second

// identity is one libp2p host of the attacker, optionally with gossipsub
// joined to the chain's topics (no validators: it publishes anything). It
// never listens: every stream runs over the connections it dials, as a
// peer behind NAT would. It counts the connections a target closed on it.
type identity struct {
	h      host.Host
	ps     *pubsub.PubSub
	topics map[string]*pubsub.Topic // by kind: tx, proposal, vote, evidence
	cancel context.CancelFunc

	closing atomic.Bool // set before we close connections ourselves
	mu      sync.Mutex
	dropped map[peer.ID]int // disconnections we did not ask for, by target
}

// newIdentity starts a host with a fresh ed25519 key drawn from rng and,
// with gossip set, gossipsub joined to chainID's topics.
func newIdentity(ctx context.Context, rng *rand.Rand, chainID string, gossip bool) (*identity, error) {
	var seed [32]byte
	for i := 0; i < len(seed); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			seed[i+j] = byte(v >> (8 * j))
		}
	}
	key, _, err := libp2pcrypto.GenerateEd25519Key(rand.NewChaCha8(seed))
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.NoListenAddrs,
		libp2p.Security(noise.ID, noise.New),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("ledgerd"),
	)
	if err != nil {
		return nil, fmt.Errorf("identity host: %w", err)
	}
	id := &identity{h: h, dropped: make(map[peer.ID]int)}
	ctx, id.cancel = context.WithCancel(ctx)
	h.Network().Notify(&network.NotifyBundle{DisconnectedF: func(_ network.Network, c network.Conn) {
		if id.closing.Load() {
			return
		}
		id.mu.Lock()
		id.dropped[c.RemotePeer()]++
		id.mu.Unlock()
	}})
	if !gossip {
		return id, nil
	}
	id.ps, err = pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMessageIdFn(p2p.MessageID),
		pubsub.WithMaxMessageSize(attackerMaxMessageBytes),
		pubsub.WithPeerExchange(false),
		pubsub.WithFloodPublish(true),
		pubsub.WithPeerOutboundQueueSize(1024),
	)
	if err != nil {
		id.close()
		return nil, fmt.Errorf("identity gossipsub: %w", err)
	}
	id.topics = make(map[string]*pubsub.Topic)
	for kind, name := range p2p.TopicNames(chainID) {
		t, err := id.ps.Join(name)
		if err != nil {
			id.close()
			return nil, fmt.Errorf("identity join %s: %w", name, err)
		}
		id.topics[kind] = t
	}
	return id, nil
}

// ID is the identity's peer ID.
func (id *identity) ID() peer.ID { return id.h.ID() }

// connect dials every target; it reports how many it reached.
func (id *identity) connect(ctx context.Context, targets []peer.AddrInfo) int {
	var wg sync.WaitGroup
	var ok atomic.Int64
	for _, t := range targets {
		wg.Go(func() {
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			if id.h.Connect(dctx, t) == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return int(ok.Load())
}

// connected lists the targets the identity is connected to.
func (id *identity) connected(targets []peer.AddrInfo) []peer.ID {
	var out []peer.ID
	for _, t := range targets {
		if id.h.Network().Connectedness(t.ID) == network.Connected {
			out = append(out, t.ID)
		}
	}
	return out
}

// droppedBy reports how often target closed a connection of ours.
func (id *identity) droppedBy(target peer.ID) int {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.dropped[target]
}

// publish sends data on the topic of kind once at least one target is
// known to be subscribed to it, waiting at most a second for that. (The
// identity does not subscribe itself, so it has no mesh and pubsub's
// readiness option would never be satisfied; the subscribers it learned
// from the targets' hellos are what flood publishing sends to.)
func (id *identity) publish(ctx context.Context, kind string, data []byte) error {
	t := id.topics[kind]
	if t == nil {
		return fmt.Errorf("publish: no topic %q", kind)
	}
	deadline := time.Now().Add(time.Second)
	for len(t.ListPeers()) == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("publish on %s: no subscribed peer", kind)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return t.Publish(ctx, data)
}

// close shuts the identity down; disconnections from here on are ours.
func (id *identity) close() {
	id.closing.Store(true)
	for _, t := range id.topics {
		_ = t.Close()
	}
	id.cancel()
	_ = id.h.Close()
}
