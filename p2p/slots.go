package p2p

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Penalty weights, in rejected-message units of the reject counter
// (Config.RejectLimit within Config.RejectWindow gets a peer banned).
const (
	// idleWeight: a serving stream opened without a request in time.
	idleWeight = 2
	// malformedWeight: a request, hello or pubsub RPC that breaks the
	// protocol's encoding. Honest ledgerd nodes never send one.
	malformedWeight = 4
)

// penalise counts weight rejected messages against p for reason, banning
// it once it reaches the reject limit.
func (n *Node) penalise(p peer.ID, reason string, weight int) {
	n.log.Info("penalised peer", "peer", p, "reason", reason, "weight", weight)
	if n.rejects.addN(p, weight) {
		n.requestBan(p, "too many protocol violations, last: "+reason)
	}
}

// privileged reports whether p gets the slots reserved for validators and
// persistent peers: it is a configured persistent peer, or it proved in the
// handshake that a validator runs it.
func (n *Node) privileged(p peer.ID) bool {
	if n.wake[p] != nil {
		return true
	}
	_, validator := n.admits.info(p)
	return validator
}

// inboundCap is how many ordinary (not validator, not persistent) inbound
// peers a node admits: MaxPeers less a fifth (at least one slot) reserved
// for validators, persistent peers and the peers it dials itself.
func inboundCap(maxPeers int) int { return max(0, maxPeers-max(1, maxPeers/5)) }

// handshakeSlack is how many connections beyond MaxPeers the gater lets
// through to the handshake, so that a validator or an honest newcomer can
// still prove itself (and take a reserved slot or evict a worse peer) when
// the node is full. Such a connection lasts at most the handshake timeout.
func handshakeSlack(maxPeers int) int { return max(4, maxPeers/5) }

// admitPeer gives p, whose handshake matched, a peer slot:
//
//   - validators, persistent peers and peers this node dialled are always
//     admitted; if that takes the node over MaxPeers, the lowest-scored
//     ordinary inbound peer is evicted;
//   - an ordinary inbound peer is admitted while fewer than inboundCap
//     ordinary inbound peers are and the node is below MaxPeers; otherwise
//     it takes the place of the lowest-scored ordinary inbound peer admitted
//     more than EvictGrace ago, or is refused if there is none.
//
// Ties in score go to the peer admitted longest ago.
func (n *Node) admitPeer(p peer.ID, validator bool) {
	scores := n.scoreSnapshot()
	now := time.Now()
	n.admits.mu.Lock()
	e := n.admits.m[p]
	if e == nil || n.host.Network().Connectedness(p) != network.Connected {
		n.admits.mu.Unlock()
		return // gone meanwhile
	}
	if e.ok {
		n.admits.mu.Unlock()
		return // both sides dialled: admitted once already
	}
	special := validator || n.wake[p] != nil || !e.inbound
	total, ordinary := 0, 0
	var victim peer.ID
	var victimScore float64
	var victimSince time.Time
	for q, qe := range n.admits.m {
		if !qe.ok {
			continue
		}
		total++
		if !qe.inbound || qe.validator || n.wake[q] != nil {
			continue
		}
		ordinary++
		if !special && now.Sub(qe.since) < n.cfg.EvictGrace {
			continue
		}
		s := scores[q]
		if victim == "" || s < victimScore || (s == victimScore && qe.since.Before(victimSince)) {
			victim, victimScore, victimSince = q, s, qe.since
		}
	}
	var evict peer.ID
	switch {
	case special:
		if total >= n.cfg.MaxPeers {
			evict = victim
		}
	case ordinary < inboundCap(n.cfg.MaxPeers) && total < n.cfg.MaxPeers:
	case victim != "":
		evict = victim
	default:
		n.admits.mu.Unlock()
		n.log.Info("refused peer: inbound peer slots full", "peer", p, "peers", total, "inbound_ordinary", ordinary)
		n.refuse(p, e)
		return
	}
	if evict != "" {
		if ve := n.admits.m[evict]; ve != nil {
			ve.ok = false
			delete(n.admits.m, evict)
		}
	}
	e.ok, e.validator, e.since = true, validator, now
	close(e.done)
	n.admits.notifyLocked()
	n.admits.mu.Unlock()

	if evict != "" {
		n.log.Info("evicted peer to admit another", "evicted", evict, "score", victimScore, "admitted", p)
		if err := n.host.Network().ClosePeer(evict); err != nil {
			n.log.Debug("close evicted peer", "peer", evict, "err", err)
		}
	}
	if special {
		n.cm.Protect(p, "ledgerd-reserved")
	}
	n.log.Debug("admitted peer", "peer", p, "validator", validator, "inbound", e.inbound)
	select {
	case n.statusCh <- p:
	default: // the periodic refresh will cover it
	}
}

// scoreSnapshot copies the latest gossipsub scores: per peer, the lower of
// its two routers' scores, so misbehaving on either router counts.
func (n *Node) scoreSnapshot() map[peer.ID]float64 {
	n.scoreMu.Lock()
	defer n.scoreMu.Unlock()
	out := make(map[peer.ID]float64, len(n.scores[routerConsensus]))
	for _, rs := range n.scores {
		for p, s := range rs {
			if old, ok := out[p]; !ok || s < old {
				out[p] = s
			}
		}
	}
	return out
}

// streamLimiter bounds the inbound streams of one protocol served at once,
// in total and per peer. Half of the slots are reserved for privileged
// peers (validators and persistent peers): ordinary peers, however many
// identities they use, hold at most the other half.
type streamLimiter struct {
	total, perPeer, ordinary int

	mu       sync.Mutex
	n        int // slots held
	nOrdin   int // slots held by ordinary peers
	active   map[peer.ID]int
	activeOr map[peer.ID]bool
}

func newStreamLimiter(total, perPeer int) *streamLimiter {
	return &streamLimiter{total: total, perPeer: perPeer, ordinary: total - total/2,
		active: make(map[peer.ID]int), activeOr: make(map[peer.ID]bool)}
}

// acquire takes a slot for p, reporting false when none is free for it.
func (l *streamLimiter) acquire(p peer.ID, privileged bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n >= l.total || l.active[p] >= l.perPeer || (!privileged && l.nOrdin >= l.ordinary) {
		return false
	}
	l.n++
	l.active[p]++
	if !privileged {
		l.nOrdin++
		l.activeOr[p] = true
	}
	return true
}

// release returns a slot p acquired with the same privileged flag.
func (l *streamLimiter) release(p peer.ID, privileged bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if !privileged {
		l.nOrdin--
	}
	if l.active[p]--; l.active[p] <= 0 {
		delete(l.active, p)
		delete(l.activeOr, p)
	}
}

// maxBudgets bounds the per-peer serving buckets kept.
const maxBudgets = 1024

// newServeBudget is the token bucket of bytes per peer that everything the
// node serves (block-sync and catch-up answers) spends from, so no peer gets
// more than rate bytes a second however it asks.
func newServeBudget(rate, burst int) *peerBuckets {
	return newPeerBuckets(float64(rate), float64(burst), maxBudgets)
}
