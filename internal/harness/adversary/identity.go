package adversary

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/p2p"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	libp2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// attackerMaxMessageBytes is the pubsub message limit of a gossiping
// identity: well above the node's, so the attacker can send what the node
// must refuse.
const attackerMaxMessageBytes = 4 << 20

// dialTimeout bounds one dial of a target.
const dialTimeout = 10 * time.Second

// identity is one libp2p host of the attacker, optionally with gossip
// joined to the chain's topics (no validators: it publishes anything): the
// consensus topics on the standard gossipsub router, the transaction topic
// on a second router speaking p2p.TxGossipProtocols, as the nodes do. It
// listens only on its source address (so the connections it dials come
// from that address; the nodes never dial it) and every stream runs over
// the connections it dials. Unless it is told not to, it runs the chain
// handshake on every connection it makes. It counts the connections a
// target closed on it.
type identity struct {
	h         host.Host
	ps        *pubsub.PubSub           // consensus router
	txps      *pubsub.PubSub           // transaction router
	topics    map[string]*pubsub.Topic // by kind: tx, proposal, vote, evidence
	cancel    context.CancelFunc
	chainID   string
	genesis   crypto.Hash
	handshake bool

	closing atomic.Bool // set before we close connections ourselves
	mu      sync.Mutex
	dropped map[peer.ID]int  // disconnections we did not ask for, by target
	joined  map[peer.ID]bool // targets that completed the handshake with us
}

// idOptions shapes a new identity.
type idOptions struct {
	// ip is the loopback source address its connections come from
	// ("" = whatever the kernel picks, 127.0.0.1 towards the nodes).
	ip string
	// gossip joins the chain's topics on both routers.
	gossip bool
	// noHandshake skips the chain handshake: the node must drop it.
	noHandshake bool
}

// newIdentity starts a host with a fresh ed25519 key drawn from rng.
func newIdentity(ctx context.Context, rng *rand.Rand, env *Env, o idOptions) (*identity, error) {
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
	listen := libp2p.NoListenAddrs
	if o.ip != "" {
		listen = libp2p.ListenAddrStrings("/ip4/" + o.ip + "/tcp/0")
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		listen,
		libp2p.Security(noise.ID, noise.New),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("ledgerd"),
	)
	if err != nil {
		return nil, fmt.Errorf("identity host on %q: %w", o.ip, err)
	}
	id := &identity{h: h, dropped: make(map[peer.ID]int), joined: make(map[peer.ID]bool), chainID: env.ChainID, genesis: env.GenesisHash, handshake: !o.noHandshake}
	ctx, id.cancel = context.WithCancel(ctx)
	h.Network().Notify(&network.NotifyBundle{DisconnectedF: func(_ network.Network, c network.Conn) {
		if id.closing.Load() {
			return
		}
		id.mu.Lock()
		// A connection refused before or during the handshake is not a
		// penalty (the node does that to anyone it has no slot for);
		// only an identity that skips the handshake on purpose counts
		// that drop.
		if !id.handshake || id.joined[c.RemotePeer()] {
			id.dropped[c.RemotePeer()]++
		}
		id.mu.Unlock()
	}})
	if !o.gossip {
		return id, nil
	}
	opts := func(extra ...pubsub.Option) []pubsub.Option {
		return append([]pubsub.Option{
			pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
			pubsub.WithMessageIdFn(p2p.MessageID),
			pubsub.WithMaxMessageSize(attackerMaxMessageBytes),
			pubsub.WithPeerExchange(false),
			pubsub.WithFloodPublish(true),
			pubsub.WithPeerOutboundQueueSize(1024),
		}, extra...)
	}
	if id.ps, err = pubsub.NewGossipSub(ctx, h, opts()...); err != nil {
		id.close()
		return nil, fmt.Errorf("identity gossipsub: %w", err)
	}
	if id.txps, err = pubsub.NewGossipSub(ctx, h, opts(pubsub.WithGossipSubProtocols(p2p.TxGossipProtocols(env.ChainID), txGossipFeatures))...); err != nil {
		id.close()
		return nil, fmt.Errorf("identity tx gossipsub: %w", err)
	}
	id.topics = make(map[string]*pubsub.Topic)
	for kind, name := range p2p.TopicNames(env.ChainID) {
		ps := id.ps
		if kind == topicTx {
			ps = id.txps
		}
		t, err := ps.Join(name)
		if err != nil {
			id.close()
			return nil, fmt.Errorf("identity join %s: %w", name, err)
		}
		id.topics[kind] = t
	}
	return id, nil
}

// txGossipFeatures are the features of the transaction router's protocol
// (gossipsub v1.2 under the chain's own name), as the nodes announce them.
func txGossipFeatures(feat pubsub.GossipSubFeature, _ protocol.ID) bool {
	switch feat {
	case pubsub.GossipSubFeatureMesh, pubsub.GossipSubFeaturePX, pubsub.GossipSubFeatureIdontwant:
		return true
	}
	return false
}

// ID is the identity's peer ID.
func (id *identity) ID() peer.ID { return id.h.ID() }

// connect dials every target (and runs the handshake on each new
// connection unless the identity skips it); it reports how many it reached
// and, with the handshake, was admitted by.
func (id *identity) connect(ctx context.Context, targets []peer.AddrInfo) int {
	var wg sync.WaitGroup
	var ok atomic.Int64
	for _, t := range targets {
		wg.Go(func() {
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			if id.join(dctx, t) == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return int(ok.Load())
}

// join connects to t if the identity is not connected and then runs the
// chain handshake on the new connection (unless it skips it). A target
// that is already connected is taken as joined: the handshake ran when
// that connection was made.
func (id *identity) join(ctx context.Context, t peer.AddrInfo) error {
	if id.h.Network().Connectedness(t.ID) == network.Connected {
		return nil
	}
	if err := id.h.Connect(ctx, t); err != nil {
		return fmt.Errorf("connect %s: %w", t.ID, err)
	}
	if !id.handshake {
		return nil
	}
	if err := p2p.Handshake(ctx, id.h, t.ID, id.chainID, id.genesis); err != nil {
		return err
	}
	id.mu.Lock()
	id.joined[t.ID] = true
	id.mu.Unlock()
	return nil
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

// droppedBy reports how often target closed a connection of ours (after
// admitting it, for an identity that handshakes).
func (id *identity) droppedBy(target peer.ID) int {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.dropped[target]
}

// publish sends data on the topic of kind once every target the identity
// is connected to is known to be subscribed to it, waiting at most a
// second for that, and then to whichever subscribed targets it knows (at
// least one). (The identity does not subscribe itself, so it has no mesh
// and pubsub's readiness option would never be satisfied; the subscribers
// it learned from the targets' hellos are what flood publishing sends to.)
// Waiting for all of them matters to the judge: an identifiable attack
// must reach every node, and a message flood-published before a node's
// subscription arrived never reaches that node.
func (id *identity) publish(ctx context.Context, targets []peer.AddrInfo, kind string, data []byte) error {
	t := id.topics[kind]
	if t == nil {
		return fmt.Errorf("publish: no topic %q", kind)
	}
	deadline := time.Now().Add(time.Second)
	for {
		subscribed := t.ListPeers()
		missing := slices.ContainsFunc(id.connected(targets), func(p peer.ID) bool { return !slices.Contains(subscribed, p) })
		if !missing || (len(subscribed) > 0 && time.Now().After(deadline)) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("publish on %s: no subscribed peer", kind)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return t.Publish(ctx, data)
}

// excuse forgets target's drops so far: they were not penalties (the
// harness stopped the target itself).
func (id *identity) excuse(target peer.ID) {
	id.mu.Lock()
	delete(id.dropped, target)
	id.mu.Unlock()
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
