package p2p

import (
	"fmt"
	"math"
	"net"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Peer score thresholds. One rejected message costs
// invalidMessageWeight * count² on its topic, so a peer is graylisted (its
// RPCs ignored, and by this package disconnected and banned) after about six
// rejected messages on one topic, or three on each of four topics, while the
// positive contributions of an honest peer are capped at topicScoreCap.
const (
	gossipThreshold      = -500
	publishThreshold     = -1000
	graylistThreshold    = -2500
	acceptPXThreshold    = 100
	opportunisticGraft   = 5
	invalidMessageWeight = -100
	topicScoreCap        = 100
	scoreInspectPeriod   = time.Second
)

// scoreParams returns the gossipsub peer-scoring parameters for topics.
//
//   - P1 time in mesh: a small positive weight (at most +1 per topic).
//   - P2 first deliveries: +1 per first delivery, capped at 50, decaying over
//     ten minutes: rewards peers that relay useful messages.
//   - P3 mesh delivery deficit: disabled. Evidence and, between blocks, votes
//     are quiet topics; a deficit there says nothing about the peer.
//   - P4 invalid messages: heavily negative, decaying over half an hour, so
//     a peer that sends rejected messages stays graylisted.
//   - P6 IP colocation: mild, loopback exempt (local testnets).
//   - P7 behaviour penalty (broken IWANT promises, GRAFT spam): as in the
//     gossipsub specification's examples.
//   - P5 application-specific: minus the peer's penalty (Node.Penalize).
func scoreParams(topics []string, appScore func(peer.ID) float64) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	tp := make(map[string]*pubsub.TopicScoreParams, len(topics))
	for _, t := range topics {
		tp[t] = &pubsub.TopicScoreParams{
			TopicWeight:                    1,
			TimeInMeshWeight:               0.01,
			TimeInMeshQuantum:              time.Second,
			TimeInMeshCap:                  100,
			FirstMessageDeliveriesWeight:   1,
			FirstMessageDeliveriesDecay:    pubsub.ScoreParameterDecay(10 * time.Minute),
			FirstMessageDeliveriesCap:      50,
			InvalidMessageDeliveriesWeight: invalidMessageWeight,
			InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(30 * time.Minute),
		}
	}
	_, loop4, _ := net.ParseCIDR("127.0.0.0/8")
	_, loop6, _ := net.ParseCIDR("::1/128")
	params := &pubsub.PeerScoreParams{
		Topics:                      tp,
		TopicScoreCap:               topicScoreCap,
		AppSpecificScore:            appScore,
		AppSpecificWeight:           1,
		IPColocationFactorWeight:    -10,
		IPColocationFactorThreshold: 10,
		IPColocationFactorWhitelist: []*net.IPNet{loop4, loop6},
		BehaviourPenaltyWeight:      -10,
		BehaviourPenaltyThreshold:   6,
		BehaviourPenaltyDecay:       pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:               pubsub.DefaultDecayInterval,
		DecayToZero:                 pubsub.DefaultDecayToZero,
		RetainScore:                 30 * time.Minute,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:             gossipThreshold,
		PublishThreshold:            publishThreshold,
		GraylistThreshold:           graylistThreshold,
		AcceptPXThreshold:           acceptPXThreshold,
		OpportunisticGraftThreshold: opportunisticGraft,
	}
	return params, thresholds
}

// Application penalties: misbehaviour that only the node itself can see
// (consensus refusing a message, the mempool refusing a relayed
// transaction, a height claim that block sync could not back) lowers the
// sender's gossipsub score through AppSpecificScore and, past
// banPenalty, gets the sender banned. Each weight is in score points.
const (
	// banPenalty is the accumulated penalty at which a peer is banned:
	// the size of the graylist threshold, so a peer is banned by its own
	// misbehaviour alone even with a full positive score.
	banPenalty = -graylistThreshold + topicScoreCap
	// penaltyHalfLife is how fast penalties fade: an honest peer that
	// relays the odd stale message sheds it, a flood does not.
	penaltyHalfLife = time.Minute
	// maxPenaltyPeers bounds the penalty book; faded entries are swept
	// when it is full.
	maxPenaltyPeers = 4096
)

// Weights of the penalties this package and the node driver assign.
const (
	// PenaltyRefusedMessage: consensus refused a message the gossip
	// validator had accepted (too far ahead for its signer, a proposal
	// from the wrong proposer, a malformed block): 260 of them ban.
	PenaltyRefusedMessage = 10.0
	// PenaltyJunkTx: a relayed transaction that can never execute at this
	// node's state (an unfunded sender, a nonce beyond the window).
	PenaltyJunkTx = 1.0
	// PenaltyUnbackedClaim: a peer claimed a height block sync could not
	// get from it. The second such claim bans it.
	PenaltyUnbackedClaim = banPenalty / 2
)

// penaltyBook holds each peer's accumulated, exponentially fading penalty.
// It is safe for concurrent use.
type penaltyBook struct {
	halfLife time.Duration
	max      int
	now      func() time.Time

	mu sync.Mutex
	m  map[peer.ID]penalty
}

type penalty struct {
	v  float64
	at time.Time
}

func newPenaltyBook(halfLife time.Duration, max int) *penaltyBook {
	return &penaltyBook{halfLife: halfLife, max: max, now: time.Now, m: make(map[peer.ID]penalty)}
}

// faded is p's value at now.
func (b *penaltyBook) faded(p penalty, now time.Time) float64 {
	return p.v * math.Exp2(-float64(now.Sub(p.at))/float64(b.halfLife))
}

// add adds w to p's penalty and returns the new total.
func (b *penaltyBook) add(id peer.ID, w float64) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	p, ok := b.m[id]
	if !ok && len(b.m) >= b.max {
		for k, old := range b.m {
			if b.faded(old, now) < 1 {
				delete(b.m, k)
			}
		}
		if len(b.m) >= b.max {
			return w // under attack from thousands of peers: the ban check still sees w
		}
	}
	v := w
	if ok {
		v += b.faded(p, now)
	}
	b.m[id] = penalty{v: v, at: now}
	return v
}

// value returns p's current penalty (0 if none).
func (b *penaltyBook) value(id peer.ID) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.m[id]
	if !ok {
		return 0
	}
	return b.faded(p, b.now())
}

// appScore is gossipsub's application-specific score: minus the penalty.
func (b *penaltyBook) appScore(id peer.ID) float64 { return -b.value(id) }

// Penalize charges peer p weight score points for misbehaviour that only
// the application can judge, with reason for the log. The penalty lowers
// p's gossip score at once and fades with a half-life of a minute; a peer
// whose penalty reaches the graylist threshold is disconnected and banned.
// It never blocks and is safe to call from any goroutine.
func (n *Node) Penalize(p peer.ID, weight float64, reason string) {
	if p == "" || p == n.host.ID() || weight <= 0 {
		return
	}
	total := n.penalties.add(p, weight)
	n.log.Debug("penalised peer", "peer", p, "weight", weight, "total", total, "reason", reason)
	if total >= banPenalty {
		n.requestBan(p, fmt.Sprintf("penalty %.0f: %s", total, reason))
	}
}

// Penalty is p's current accumulated application penalty (0 for a peer in
// good standing).
func (n *Node) Penalty(p peer.ID) float64 { return n.penalties.value(p) }
