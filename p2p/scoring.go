package p2p

import (
	"net"
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
func scoreParams(topics []string) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
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
		AppSpecificScore:            func(peer.ID) float64 { return 0 },
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
