package p2p

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	libp2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multiaddr"
)

// Topic indices and their per-topic settings.
const (
	topicTx = iota
	topicProposal
	topicVote
	topicEvidence
	numTopics
)

// Gossip routers. Consensus messages and transactions travel on two
// separate gossipsub instances with their own stream protocols, so each has
// its own outbound queue per peer: a flood of transactions can fill the
// transaction queue and be dropped there, but never crowds out a vote or a
// block part.
const (
	routerConsensus = iota
	routerTx
	numRouters
)

type topicSpec struct {
	name        string // the kind part of the topic name
	kinds       kindSet
	router      int
	concurrency int // concurrent validations
	buffer      int // delivery buffer; pubsub drops beyond it
}

var topicSpecs = [numTopics]topicSpec{
	topicTx:       {"tx", kinds(kindTx), routerTx, 128, 1024},
	topicProposal: {"proposal", kinds(kindProposal, kindPart), routerConsensus, 64, 1024},
	topicVote:     {"vote", kinds(kindVote), routerConsensus, 128, 1024},
	topicEvidence: {"evidence", kinds(kindEvidence), routerConsensus, 16, 64},
}

// TxGossipProtocols are the stream protocols of chainID's transaction
// gossip router (the consensus topics use gossipsub's standard ones). A
// peer must speak one of them to exchange transactions.
func TxGossipProtocols(chainID string) []protocol.ID {
	return []protocol.ID{protocol.ID("/ledgerd/" + chainID + "/txgossip/1.2.0")}
}

// txGossipFeatures: the transaction router's protocol is gossipsub v1.2
// (mesh, peer exchange, IDONTWANT) under its own name.
func txGossipFeatures(feat pubsub.GossipSubFeature, _ protocol.ID) bool {
	switch feat {
	case pubsub.GossipSubFeatureMesh, pubsub.GossipSubFeaturePX, pubsub.GossipSubFeatureIdontwant:
		return true
	}
	return false
}

const (
	validatorTimeout = 2 * time.Second
	dialTimeout      = 10 * time.Second
	banQueue         = 64
	// maxStreamsPerPeer bounds the block-sync (and catch-up) streams one
	// peer may have served at once; the Syncer's PerPeerRequests default
	// stays within it.
	maxStreamsPerPeer = 2
)

var routerNames = [numRouters]string{routerConsensus: "consensus", routerTx: "tx"}

// topicName is the gossipsub topic of one message family on chainID.
func topicName(chainID, kind string) string { return "/ledgerd/" + chainID + "/" + kind + "/1" }

// Node is a running libp2p host with ledgerd's topics and protocols. Its
// methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	handler Handler
	vals    ValidatorSets
	host    host.Host
	routers [numRouters]*pubsub.PubSub
	cm      *connmgr.BasicConnMgr
	gater   *gater
	check   *checker
	rejects *rejectCounter
	// penalties is the application's account of each peer's misbehaviour
	// (Penalize); txRate bounds the transactions accepted per peer.
	penalties *penaltyBook
	txRate    *peerBuckets
	topics    [numTopics]*topic

	persistent []peer.AddrInfo
	wake       map[peer.ID]chan struct{} // per persistent peer: it disconnected
	bootstrap  []peer.AddrInfo

	heights    *peerHeights
	delivered  *hashCache // proposals handed to the handler from a part
	banCh      chan banRequest
	statusCh   chan peer.ID
	syncLimit  *streamLimiter // block-sync streams served at once
	catchLimit *streamLimiter // catch-up streams served at once
	budget     *peerBuckets   // bytes served per peer
	admits     *admissions    // handshake state of connected peers

	// State sync serving: the Handler's optional capabilities (nil when
	// it lacks them, and the protocol is then not registered).
	snapshots  SnapshotSource
	lights     LightBlockSource
	snapLimit  *streamLimiter // snapshot streams served at once
	lightLimit *streamLimiter // light-block streams served at once

	mesh    [numRouters]*meshTracker
	scoreMu sync.Mutex
	scores  [numRouters]map[peer.ID]float64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex // guards closed
	closed bool
}

type topic struct {
	topicSpec
	full string
	mesh *meshTracker
	t    *pubsub.Topic
	sub  *pubsub.Subscription
}

type banRequest struct {
	p      peer.ID
	reason string
}

// PeerInfo describes one connected peer.
type PeerInfo struct {
	ID         peer.ID
	Addrs      []multiaddr.Multiaddr // remote addresses of the open connections
	Inbound    bool                  // the first open connection was dialled by the peer
	Persistent bool
	Validator  bool    // proved in the handshake that a validator runs it
	Height     uint64  // latest height the peer reported, 0 if unknown
	Score      float64 // lower of its two gossip routers' scores at the last inspection
	Penalty    float64 // accumulated application penalty (Node.Penalize)
}

// New starts a node: it listens on cfg.ListenAddrs with identity key, joins
// the chain's topics, registers the stream protocols, dials the bootstrap
// and persistent peers, and delivers checked inbound messages to handler.
// vals gives the validator set of each height, which consensus messages
// and synced commits are checked against. ctx bounds the node's
// background work; Close releases everything.
func New(ctx context.Context, cfg Config, key libp2pcrypto.PrivKey, handler Handler, vals ValidatorSets) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("p2p config: %w", err)
	}
	if key == nil || handler == nil || vals == nil {
		return nil, errors.New("p2p: key, handler and validator set are required")
	}
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("p2p: node key: %w", err)
	}
	persistent, err := parsePeers(cfg.PersistentPeers, self)
	if err != nil {
		return nil, fmt.Errorf("p2p: persistent peers: %w", err)
	}
	bootstrap, err := parsePeers(cfg.BootstrapPeers, self)
	if err != nil {
		return nil, fmt.Errorf("p2p: bootstrap peers: %w", err)
	}
	persistentIDs := make(map[peer.ID]bool, len(persistent))
	for _, ai := range persistent {
		persistentIDs[ai.ID] = true
	}

	n := &Node{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "p2p"),
		handler:    handler,
		vals:       vals,
		rejects:    newRejectCounter(cfg.RejectLimit, cfg.RejectWindow),
		persistent: persistent,
		bootstrap:  bootstrap,
		wake:       make(map[peer.ID]chan struct{}, len(persistent)),
		heights:    newPeerHeights(),
		delivered:  newHashCache(256),
		banCh:      make(chan banRequest, banQueue),
		statusCh:   make(chan peer.ID, 256),
		syncLimit:  newStreamLimiter(maxSyncServers, maxStreamsPerPeer),
		catchLimit: newStreamLimiter(maxCatchupServers, maxStreamsPerPeer),
		budget:     newServeBudget(cfg.ServeBytesPerSecond, cfg.ServeBurstBytes),
		snapLimit:  newStreamLimiter(maxSnapshotServers, maxStreamsPerPeer),
		lightLimit: newStreamLimiter(maxLightServers, maxStreamsPerPeer),
		admits:     newAdmissions(),
		penalties:  newPenaltyBook(penaltyHalfLife, maxPenaltyPeers),
		txRate:     newPeerBuckets(txRatePerPeer, txBurstPerPeer, maxRatePeers),
	}
	for i := range n.mesh {
		n.mesh[i] = newMeshTracker(n.log)
		n.scores[i] = make(map[peer.ID]float64)
	}
	n.snapshots, _ = handler.(SnapshotSource)
	n.lights, _ = handler.(LightBlockSource)
	n.check = newChecker(cfg.ChainID, vals, handler.ConsensusPosition)
	n.check.txs, _ = handler.(TxChecker)
	n.check.txRate, n.check.penalize = n.txRate, n.Penalize
	n.check.behind = func() bool {
		top, _ := n.heights.max()
		return top > handler.LatestHeight()+1
	}
	for _, ai := range persistent {
		n.wake[ai.ID] = make(chan struct{}, 1)
	}

	low := max(1, cfg.MaxPeers*4/5)
	n.cm, err = connmgr.NewConnManager(low, cfg.MaxPeers, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("p2p: connection manager: %w", err)
	}
	n.gater = newGater(cfg.MaxPeers, cfg.MaxPeersPerIP, persistentIDs)
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.NoListenAddrs, // listen below, one address at a time
		libp2p.Security(noise.ID, noise.New),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.ConnectionManager(n.cm),
		libp2p.ConnectionGater(n.gater),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("ledgerd"),
	}
	if len(cfg.ExternalAddrs) > 0 {
		ext := make([]multiaddr.Multiaddr, 0, len(cfg.ExternalAddrs))
		for _, s := range cfg.ExternalAddrs {
			a, _ := multiaddr.NewMultiaddr(s) // validated above
			ext = append(ext, a)
		}
		opts = append(opts, libp2p.AddrsFactory(func([]multiaddr.Multiaddr) []multiaddr.Multiaddr { return ext }))
	}
	n.host, err = libp2p.New(opts...)
	if err != nil {
		n.cm.Close()
		return nil, fmt.Errorf("p2p: start host: %w", err)
	}
	// Every configured address must be listened on: libp2p alone starts
	// with any one that works (a node whose TCP port is taken would run on
	// QUIC only and log it at INFO).
	for _, s := range cfg.ListenAddrs {
		a, _ := multiaddr.NewMultiaddr(s) // validated above
		if err := n.host.Network().Listen(a); err != nil {
			n.host.Close()
			return nil, fmt.Errorf("p2p: listen on %s: %w", s, err)
		}
	}
	n.gater.setNetwork(n.host.Network())
	n.ctx, n.cancel = context.WithCancel(ctx)
	if err := n.start(); err != nil {
		n.cancel()
		n.host.Close()
		return nil, err
	}
	n.log.Info("p2p node started", "id", n.host.ID(), "addrs", n.host.Addrs(), "chain", cfg.ChainID)
	return n, nil
}

// start joins the topics, registers protocols and starts the goroutines.
func (n *Node) start() error {
	names := make([]string, numTopics)
	var routerTopics [numRouters][]string
	for i, spec := range topicSpecs {
		names[i] = topicName(n.cfg.ChainID, spec.name)
		routerTopics[spec.router] = append(routerTopics[spec.router], names[i])
	}
	for r := range numRouters {
		params, thresholds := scoreParams(routerTopics[r], n.penalties.appScore)
		opts := []pubsub.Option{
			pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
			pubsub.WithMessageIdFn(messageID),
			pubsub.WithMaxMessageSize(n.cfg.MaxMessageBytes),
			pubsub.WithPeerScore(params, thresholds),
			pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(func(s map[peer.ID]float64) { n.inspectScores(r, s) }), scoreInspectPeriod),
			pubsub.WithPeerExchange(false),
			pubsub.WithFloodPublish(true),
			pubsub.WithValidateQueueSize(256),
			pubsub.WithValidateThrottle(1024),
			pubsub.WithPeerOutboundQueueSize(256),
			pubsub.WithSubscriptionFilter(pubsub.WrapLimitSubscriptionFilter(pubsub.NewAllowlistSubscriptionFilter(routerTopics[r]...), 64)),
			pubsub.WithRawTracer(n.mesh[r]),
			pubsub.WithLogger(n.cfg.Logger.With("component", "pubsub", "router", routerNames[r])),
		}
		if r == routerTx {
			opts = append(opts, pubsub.WithGossipSubProtocols(TxGossipProtocols(n.cfg.ChainID), txGossipFeatures))
		}
		ps, err := pubsub.NewGossipSub(n.ctx, pubsubHost{Host: n.host, n: n}, opts...)
		if err != nil {
			return fmt.Errorf("p2p: start gossipsub (%s): %w", routerNames[r], err)
		}
		n.routers[r] = ps
	}
	for i, spec := range topicSpecs {
		t := &topic{topicSpec: spec, full: names[i], mesh: n.mesh[spec.router]}
		ps := n.routers[spec.router]
		if err := ps.RegisterTopicValidator(t.full, n.validator(t),
			pubsub.WithValidatorTimeout(validatorTimeout),
			pubsub.WithValidatorConcurrency(spec.concurrency)); err != nil {
			return fmt.Errorf("p2p: validator for %s: %w", t.full, err)
		}
		var err error
		if t.t, err = ps.Join(t.full); err != nil {
			return fmt.Errorf("p2p: join %s: %w", t.full, err)
		}
		if t.sub, err = t.t.Subscribe(pubsub.WithBufferSize(spec.buffer)); err != nil {
			return fmt.Errorf("p2p: subscribe %s: %w", t.full, err)
		}
		n.topics[i] = t
	}

	n.host.SetStreamHandler(handshakeProtocol, n.serveHandshake)
	n.host.SetStreamHandler(n.protocol(statusProtocol), n.admittedOnly(n.serveStatus))
	n.host.SetStreamHandler(n.protocol(syncProtocol), n.admittedOnly(n.serveSync))
	n.host.SetStreamHandler(n.protocol(catchupProtocol), n.admittedOnly(n.serveCatchup))
	if n.snapshots != nil {
		n.host.SetStreamHandler(n.protocol(snapshotProtocol), n.admittedOnly(n.serveSnapshots))
	}
	if n.lights != nil {
		n.host.SetStreamHandler(n.protocol(lightBlockProtocol), n.admittedOnly(n.serveLightBlock))
	}
	n.host.Network().Notify(&network.NotifyBundle{
		ConnectedF:    n.connected,
		DisconnectedF: n.disconnected,
	})
	for _, ai := range n.persistent {
		n.cm.Protect(ai.ID, "persistent")
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
	}

	for _, t := range n.topics {
		n.goTracked(func() { n.deliverLoop(t) })
	}
	n.goTracked(n.enforceBans)
	for range statusWorkers {
		n.goTracked(n.statusWorker)
	}
	n.goTracked(n.statusTicker)
	if n.cfg.CatchupInterval > 0 {
		n.goTracked(n.catchupLoop)
	}
	for _, ai := range n.persistent {
		n.goTracked(func() { n.keepConnected(ai, n.wake[ai.ID]) })
	}
	for _, ai := range n.bootstrap {
		n.goTracked(func() { n.dialOnce(ai) })
	}
	return nil
}

// messageID identifies a pubsub message by the hash of its data, so the
// same content published or forwarded by different peers is one message.
func messageID(m *pb.Message) string {
	h := sha256.Sum256(m.Data)
	return string(h[:])
}

// goTracked runs f in a goroutine that Close waits for. It reports false,
// without running f, once the node is closing.
func (n *Node) goTracked(f func()) bool {
	if !n.track() {
		return false
	}
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// track registers one unit of work Close must wait for; the caller calls
// n.wg.Done when it finishes. It reports false once the node is closing.
func (n *Node) track() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	return true
}

// Close stops every goroutine of the node, closes all connections and the
// listeners, and waits. It is safe to call more than once.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	err := n.host.Close() // resets every stream, unblocking handlers
	n.wg.Wait()
	n.log.Info("p2p node stopped")
	return err
}

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Addrs are the addresses the node listens on (or advertises).
func (n *Node) Addrs() []multiaddr.Multiaddr { return n.host.Addrs() }

// FullAddrs are Addrs with /p2p/<id> appended, as peers' configs want them.
func (n *Node) FullAddrs() []multiaddr.Multiaddr {
	out, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	return out
}

// Peers describes the connected peers that completed the handshake (so
// are on this chain), sorted by ID.
func (n *Node) Peers() []PeerInfo {
	heights := n.PeerHeights()
	scores := n.scoreSnapshot()
	var out []PeerInfo
	for _, p := range n.admittedPeers() {
		conns := n.host.Network().ConnsToPeer(p)
		if len(conns) == 0 {
			continue
		}
		_, validator := n.admits.info(p)
		info := PeerInfo{ID: p, Height: heights[p], Score: scores[p], Penalty: n.penalties.value(p), Persistent: n.wake[p] != nil, Validator: validator,
			Inbound: conns[0].Stat().Direction == network.DirInbound}
		for _, c := range conns {
			info.Addrs = append(info.Addrs, c.RemoteMultiaddr())
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// WaitMesh blocks until every topic's gossip mesh holds at least min
// peers (so what is published next goes to them at once, not by later
// gossip), or ctx ends. A driver may call it before starting consensus.
func (n *Node) WaitMesh(ctx context.Context, min int) error {
	for {
		ready := true
		var changed <-chan struct{}
		for _, t := range n.topics {
			var ps []peer.ID
			ps, changed = t.mesh.peers(t.full)
			if len(ps) < min {
				ready = false
				break
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for gossip mesh of %d peers: %w", min, ctx.Err())
		case <-changed:
		}
	}
}

// PublishTx gossips a transaction.
func (n *Node) PublishTx(ctx context.Context, tx *ledger.Tx) error {
	return n.PublishTxs(ctx, []*ledger.Tx{tx})
}

// PublishTxs gossips transactions, MaxTxsPerMessage to a message.
func (n *Node) PublishTxs(ctx context.Context, txs []*ledger.Tx) error {
	for len(txs) > 0 {
		k := min(len(txs), MaxTxsPerMessage)
		if err := n.publish(ctx, topicTx, encodeTxs(txs[:k])); err != nil {
			return err
		}
		txs = txs[k:]
	}
	return nil
}

// PublishProposal gossips a signed proposal and then every part of its
// block; parts must be those of SplitBlock for the proposed block.
func (n *Node) PublishProposal(ctx context.Context, p *ledger.Proposal, parts []*ledger.Part) error {
	if err := n.publish(ctx, topicProposal, encodeProposal(p)); err != nil {
		return err
	}
	for _, part := range parts {
		if err := n.publish(ctx, topicProposal, encodePart(p, part)); err != nil {
			return fmt.Errorf("part %d: %w", part.Index, err)
		}
	}
	return nil
}

// PublishVote gossips a signed vote.
func (n *Node) PublishVote(ctx context.Context, v *ledger.Vote) error {
	return n.publish(ctx, topicVote, encodeVote(v))
}

// PublishEvidence gossips evidence of equivocation.
func (n *Node) PublishEvidence(ctx context.Context, ev *ledger.Evidence) error {
	return n.publish(ctx, topicEvidence, encodeEvidence(ev))
}

// publish runs the message through the topic's validator (so the node
// never sends what its peers would reject) and gossips it.
func (n *Node) publish(ctx context.Context, i int, data []byte) error {
	t := n.topics[i]
	if err := t.t.Publish(ctx, data); err != nil {
		return fmt.Errorf("publish on %s: %w", t.full, err)
	}
	return nil
}

// validator is the pubsub validator of topic t.
func (n *Node) validator(t *topic) pubsub.ValidatorEx {
	return func(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		local := from == n.host.ID()
		v, m, err := n.check.checkFrom(t.kinds, msg.Data, from, msg.GetFrom(), local)
		switch v {
		case accept:
			msg.ValidatorData = m
			return pubsub.ValidationAccept
		case ignore:
			n.log.Debug("ignored message", "topic", t.name, "peer", from, "err", err)
			return pubsub.ValidationIgnore
		}
		n.log.Debug("rejected message", "topic", t.name, "peer", from, "err", err)
		if !local && n.rejects.add(from) {
			n.requestBan(from, "too many rejected messages")
		}
		return pubsub.ValidationReject
	}
}

// deliverLoop hands topic t's accepted messages to the handler.
func (n *Node) deliverLoop(t *topic) {
	self := n.host.ID()
	for {
		msg, err := t.sub.Next(n.ctx)
		if err != nil {
			return
		}
		if msg.ReceivedFrom == self {
			continue
		}
		m, ok := msg.ValidatorData.(*message)
		if !ok {
			continue
		}
		// The handler learns the message's author: its signature (StrictSign)
		// binds it, and what consensus or the mempool refuses is charged
		// to it, never to the honest peers that relayed it.
		n.noteHeight(msg.GetFrom(), m)
		n.deliver(msg.GetFrom(), m, true)
	}
}

// deliver hands one checked message to the handler. A part's proposal is
// delivered first, once per proposal when dedup is set.
func (n *Node) deliver(from peer.ID, m *message, dedup bool) {
	h := n.handler
	switch m.kind {
	case kindTx:
		h.HandleTxs(from, m.txs)
	case kindProposal:
		n.delivered.add(crypto.Sum(m.proposal.Encode()))
		h.HandleProposal(from, m.proposal)
	case kindPart:
		if n.delivered.add(crypto.Sum(m.proposal.Encode())) || !dedup {
			h.HandleProposal(from, m.proposal)
		}
		h.HandleBlockPart(from, m.proposal.Height, m.proposal.Round, m.part)
	case kindVote:
		h.HandleVote(from, m.vote)
	case kindEvidence:
		h.HandleEvidence(from, m.evidence)
	}
}

// noteHeight learns from a verified consensus message that its author has
// committed the height before the message's.
func (n *Node) noteHeight(author peer.ID, m *message) {
	var h uint64
	switch m.kind {
	case kindVote:
		h = m.vote.Height
	case kindProposal, kindPart:
		h = m.proposal.Height
	default:
		return
	}
	if h > 1 && n.admits.admitted(author) {
		n.heights.raise(author, h-1)
	}
}

// inspectScores receives router r's peer scores every scoreInspectPeriod.
func (n *Node) inspectScores(r int, scores map[peer.ID]float64) {
	n.scoreMu.Lock()
	clear(n.scores[r])
	for p, s := range scores {
		n.scores[r][p] = s
	}
	n.scoreMu.Unlock()
	for p, s := range scores {
		if s < graylistThreshold {
			n.requestBan(p, fmt.Sprintf("gossip score %.0f below the graylist threshold", s))
		}
	}
}

// requestBan queues p for disconnection; it never blocks (a full queue
// means bans are already being processed, and the peer will offend again).
func (n *Node) requestBan(p peer.ID, reason string) {
	select {
	case n.banCh <- banRequest{p, reason}:
	default:
	}
}

// Ban disconnects p and refuses it for the configured ban duration.
func (n *Node) Ban(p peer.ID, reason string) {
	n.gater.ban(p, n.cfg.BanDuration)
	n.rejects.forget(p)
	n.txRate.forget(p)
	n.heights.remove(p)
	n.log.Warn("banned peer", "peer", p, "reason", reason, "for", n.cfg.BanDuration)
	if err := n.host.Network().ClosePeer(p); err != nil {
		n.log.Debug("close banned peer", "peer", p, "err", err)
	}
}

// enforceBans carries out queued bans outside the callers' goroutines
// (pubsub validators and its score loop must not block on connection
// teardown).
func (n *Node) enforceBans() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case r := <-n.banCh:
			if n.gater.isBanned(r.p) && n.host.Network().Connectedness(r.p) != network.Connected {
				continue
			}
			n.Ban(r.p, r.reason)
		}
	}
}

// IsBanned reports whether p is currently banned.
func (n *Node) IsBanned(p peer.ID) bool { return n.gater.isBanned(p) }
