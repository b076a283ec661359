package sim

import (
	"math/rand/v2"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
)

// msgKind is what a network message carries.
type msgKind uint8

const (
	msgProposal msgKind = iota
	msgVote
	msgEvidence
	msgStatus  // "I need height h, I am in round r"
	msgCatchup // a decided block with its proposal and commit
)

// message is immutable once sent; every receiver shares it.
type message struct {
	kind     msgKind
	from     int
	proposal *ledger.Proposal
	block    *ledger.Block
	vote     *ledger.Vote
	evidence *ledger.Evidence
	commit   *ledger.Commit
	height   uint64
	round    uint32
}

// network models links between nodes: a base latency per link, and during
// the fault phase extra delays, drops, partitions and the twins' split.
type network struct {
	s       *simulation
	latency [][]time.Duration
	// Fault parameters, active until the heal. Every link has its own
	// extra-delay bound and loss rate, redrawn every epoch, so nodes see
	// messages in different orders and some links are briefly terrible.
	slowP    float64       // chance a link is slow in an epoch
	delayMax time.Duration // bound of a slow link's extra delay
	spikeP   float64       // chance any message is held up anyway
	lossP    float64       // chance a link is lossy in an epoch
	slow     [][]time.Duration
	loss     [][][numLossKinds]float64 // by message kind: proposal, prevote, precommit, other
	group    []int                     // partition group of each node; nil when whole
	// roundSplit makes delivery depend on what a message is about: each
	// sender's proposals, prevotes and precommits of each height and round
	// reach their own random set of nodes (a decided block counts as the
	// precommits of its round), in the spirit of the Twins approach. The
	// cuts are directed, so a node can hear a quorum that cannot hear
	// itself.
	roundSplit bool
	splits     map[splitKey][]bool
	sides      map[splitKey][]int
	delays     map[splitKey]time.Duration
	// Twin split: twin a only reaches the honest nodes of side 0, twin b
	// those of side 1; the sides are fixed (side), or drawn anew for each
	// height and round (twinRounds) like roundSplit.
	twinA, twinB int
	side         []int // side of each honest node (0 or 1); nil when off
	twinRounds   bool
	faulty       bool
}

func newNetwork(s *simulation, twinKey int, halves [2][]int) *network {
	n := len(s.nodes)
	net := &network{s: s, latency: make([][]time.Duration, n), twinA: -1, twinB: -1, faulty: true,
		splits: map[splitKey][]bool{}, sides: map[splitKey][]int{}, delays: map[splitKey]time.Duration{}, slow: make([][]time.Duration, n), loss: make([][][numLossKinds]float64, n)}
	for i := range net.latency {
		net.slow[i] = make([]time.Duration, n)
		net.loss[i] = make([][numLossKinds]float64, n)
		net.latency[i] = make([]time.Duration, n)
		for j := range net.latency[i] {
			net.latency[i][j] = time.Duration(5+s.rng.IntN(45)) * time.Millisecond
			if s.opts.ZeroLatency {
				net.latency[i][j] = 0
			}
		}
	}
	if twinKey < 0 {
		return net
	}
	for _, nd := range s.nodes {
		if nd.twin {
			if net.twinA < 0 {
				net.twinA = nd.idx
			} else {
				net.twinB = nd.idx
			}
		}
	}
	o := s.opts
	if o.ByzantineThird {
		// Each twin joins one half of the honest validators; the halves
		// cannot talk to each other until the heal.
		net.side = make([]int, n)
		net.group = make([]int, n)
		for h, idxs := range halves {
			for _, vi := range idxs {
				nd := s.nodeOfKey(vi)
				net.side[nd.idx] = h
				net.group[nd.idx] = h
			}
		}
		net.group[net.twinA], net.group[net.twinB] = 0, 1
		return net
	}
	switch s.rng.IntN(4) {
	case 0: // the twins reach everyone
	case 1: // the twins split the honest nodes between them
		net.side = make([]int, n)
		for _, nd := range s.nodes {
			if nd.honest {
				net.side[nd.idx] = s.rng.IntN(2)
			}
		}
	default: // ... differently in every round
		net.twinRounds = true
	}
	return net
}

// nodeOfKey returns the (first) node running validator key number i.
func (s *simulation) nodeOfKey(i int) *node {
	addr := simKey("validator", i).PubKey().Address()
	for _, n := range s.nodes {
		if n.addr == addr {
			return n
		}
	}
	panic("sim: no node for key")
}

// connected reports whether a message from a can reach b now.
func (net *network) connected(a, b int, m *message) bool {
	if !net.faulty {
		return true
	}
	if net.group != nil && net.group[a] != net.group[b] {
		return false
	}
	if net.roundSplit {
		if g := net.splitOf(a, m); g != nil && !g[b] {
			return false
		}
	}
	side := net.side
	if net.twinRounds {
		side = net.twinSides(m)
	}
	if side != nil {
		for _, pair := range [][2]int{{a, b}, {b, a}} {
			t, o := pair[0], pair[1]
			if t == net.twinA && o != net.twinB && net.s.nodes[o].honest && side[o] != 0 {
				return false
			}
			if t == net.twinB && o != net.twinA && net.s.nodes[o].honest && side[o] != 1 {
				return false
			}
		}
	}
	return true
}

// Loss rates are drawn per kind of message.
const numLossKinds = 4

func lossKind(m *message) int {
	switch {
	case m.kind == msgProposal:
		return 0
	case m.kind == msgVote && m.vote.Type == ledger.Prevote:
		return 1
	case m.kind == msgVote:
		return 2
	}
	return 3
}

// redraw starts a new epoch of link faults.
func (net *network) redraw() {
	r := net.s.rng
	for a := range net.slow {
		for b := range net.slow[a] {
			net.slow[a][b], net.loss[a][b] = 0, [numLossKinds]float64{}
			if net.slowP > 0 && r.Float64() < net.slowP {
				net.slow[a][b] = time.Duration(100+r.Int64N(int64(net.delayMax/time.Millisecond))) * time.Millisecond
			}
			if net.lossP > 0 {
				// Each kind of message has its own loss rate on the link,
				// so that, say, prevotes pass while precommits are lost.
				for k := range net.loss[a][b] {
					net.loss[a][b][k] = 0.05 * r.Float64()
					if r.Float64() < net.lossP {
						net.loss[a][b][k] = 0.3 + 0.6*r.Float64()
					}
				}
			}
		}
	}
}

type splitKey struct {
	height uint64
	round  uint32
	kind   int
	from   int
}

// classOf returns the class of consensus message m sent by node from:
// its sender, height, round and kind (a decided block counts as the
// precommits of its round). Other messages have no class.
func classOf(from int, m *message) (splitKey, bool) {
	switch m.kind {
	case msgProposal:
		return splitKey{m.proposal.Height, m.proposal.Round, 0, from}, true
	case msgVote:
		return splitKey{m.vote.Height, m.vote.Round, int(m.vote.Type), from}, true
	case msgCatchup:
		return splitKey{m.commit.Height, m.commit.Round, int(ledger.Precommit), from}, true
	}
	return splitKey{}, false
}

// keyRand returns a generator for k and salt, independent of the order in
// which the simulation asks: a pure function of the seed and the key.
func (net *network) keyRand(k splitKey, salt uint64) *rand.Rand {
	return rand.New(rand.NewPCG(net.s.opts.Seed^k.height*0x9e3779b97f4a7c15^salt,
		uint64(k.round)<<12|uint64(k.kind+1)<<10|uint64(k.from+1)))
}

// splitOf returns the nodes that m, sent by node from, may reach (nil:
// all), drawn once per class: half of the time all of them, otherwise
// each with probability one half.
func (net *network) splitOf(from int, m *message) []bool {
	k, ok := classOf(from, m)
	if !ok {
		return nil
	}
	if g, ok := net.splits[k]; ok {
		return g
	}
	r := net.keyRand(k, 1)
	var g []bool
	if r.IntN(2) == 0 {
		g = make([]bool, len(net.s.nodes))
		for i := range g {
			g[i] = r.IntN(2) == 0
		}
	}
	net.splits[k] = g
	return g
}

// classDelay returns the extra delay of every message of m's class, drawn
// once per class: a third of the classes are held up by up to delayMax,
// so that, say, the precommits of a round arrive after the next round
// has begun.
func (net *network) classDelay(from int, m *message) time.Duration {
	k, ok := classOf(from, m)
	if !ok {
		return 0
	}
	if d, ok := net.delays[k]; ok {
		return d
	}
	r := net.keyRand(k, 2)
	var d time.Duration
	if r.IntN(3) == 0 {
		d = time.Duration(r.Int64N(int64(net.delayMax)))
	}
	net.delays[k] = d
	return d
}

// twinSides returns the twins' sides for the height and round m is about
// (nil for other messages).
func (net *network) twinSides(m *message) []int {
	k, ok := classOf(-1, m)
	if !ok || m.kind == msgCatchup {
		return nil
	}
	k.kind = -1 // one split per height and round
	if g, ok := net.sides[k]; ok {
		return g
	}
	r := net.keyRand(k, 3)
	g := make([]int, len(net.s.nodes))
	for i := range g {
		g[i] = r.IntN(2)
	}
	net.sides[k] = g
	return g
}

// heal ends every network fault.
func (net *network) heal() {
	net.faulty = false
	net.group = nil
	net.side = nil
	net.twinRounds = false
	net.roundSplit = false
}

// send schedules delivery of m from node a to node b, unless the network
// loses it (or a scenario holds it back).
func (s *simulation) send(a, b int, m *message) {
	net := s.net
	if a == b {
		return
	}
	if sc := s.scenario; sc != nil {
		if until := sc.holdFor(a, b, m); until > 0 {
			sc.hold(heldMsg{from: a, to: b, until: until, m: m})
			return
		}
	}
	if !net.connected(a, b, m) {
		s.stats.Cut++
		return
	}
	d := net.latency[a][b]
	d += time.Duration(s.rng.Int64N(int64(d)/2 + 1))
	if net.faulty {
		if p := net.loss[a][b][lossKind(m)]; p > 0 && s.rng.Float64() < p {
			s.stats.Dropped++
			return
		}
		if net.slowP > 0 {
			d += net.classDelay(a, m)
		}
		if max := net.slow[a][b]; max > 0 {
			d += time.Duration(s.rng.Int64N(int64(max)))
			s.stats.Delayed++
		} else if net.spikeP > 0 && s.rng.Float64() < net.spikeP {
			d += time.Duration(s.rng.Int64N(int64(net.delayMax)))
			s.stats.Delayed++
		}
	}
	s.schedule(s.now+d, &simEvent{kind: evDeliver, node: b, msg: m})
}

// deliver schedules delivery of m from node a to node b over the link's
// latency, past every fault.
func (s *simulation) deliver(a, b int, m *message) {
	d := s.net.latency[a][b]
	d += time.Duration(s.rng.Int64N(int64(d)/2 + 1))
	s.schedule(s.now+d, &simEvent{kind: evDeliver, node: b, msg: m})
}

// broadcast sends m from node a to every other node.
func (s *simulation) broadcast(a int, m *message) {
	for b := range s.nodes {
		s.send(a, b, m)
	}
}
