package sim

import (
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// Scenarios lists the targeted scenarios (Options.Scenario). Each one
// plays a script over the first rounds of one height (the target) with
// four validators: a byzantine one, Z, with just under a third of the
// power, and three honest ones in the roles L, C and U. The seed draws
// the powers (within the inequalities the script needs), which validator
// plays which role, the target height (one where the roles fall on the
// proposers the script needs), the latencies and the block contents.
// Honest nodes run correct code; the script only holds their messages
// back (until the receiver reaches a given round) and decides what Z
// sends. In both, round 0 makes L lock on a value A that C and U prevoted
// without seeing its polka, and round 1 brings a polka for a fresh value
// B (Z's prevote makes it) that C locks on:
//
//   - relock: L sees the polka for B too and relocks on it, C decides B
//     in round 1, and in round 2 Z re-proposes A with its real proof of
//     lock, round 0. A correct L, locked on B since round 1, prevotes nil,
//     and nothing more is decided at the height but B. An L that kept the
//     round of its first lock when it relocked prevotes A; with U and Z
//     that is a polka, and U decides A.
//   - unlock: L does not see the polka for B, C does not decide, and Z
//     falls silent for good from round 2. The honest validators hold
//     exactly a quorum together; C's proposals of B with its proof of
//     lock, round 1, carry L (locked on A since round 0) over. An L that
//     never lets go of its lock prevotes nil to them, and the chain stops.
//   - three: rounds 0 and 1 as in unlock, then a polka for a third value
//     D in round 2, which L and C relock on and everyone decides: polkas
//     for three values in three rounds, each locked on by someone.
var Scenarios = []string{"relock", "unlock", "three"}

// scenarioPlays lists, by scenario, what a run must show for the script
// to have played out (scenario.Played keys).
var scenarioPlays = map[string][]string{
	"relock": {"L locks A r=0", "L locks B r=1", "C decides B r=1", "Z proposes A r=2"},
	"unlock": {"L locks A r=0", "C locks B r=1"},
	"three":  {"L locks A r=0", "C locks B r=1", "U locks D r=2"},
}

// ScenarioOptions returns the options of scenario name for seed.
func ScenarioOptions(name string, seed uint64) Options {
	return Options{Seed: seed, Validators: 4, Faults: FaultByzantine, FaultPhase: 20 * time.Second, Scenario: name}
}

// role is a validator's part in a scenario.
type role uint8

const (
	roleZ role = iota // byzantine
	roleL             // locks on A in round 0
	roleC             // locks on B in round 1
	roleU             // never sees a polka in its round
)

func (r role) String() string { return [...]string{"Z", "L", "C", "U"}[r] }

// hold says how long the script holds an honest message back: until the
// receiver is in round until of the target height (or past the height);
// 0: not at all.
type hold struct {
	round uint32
	kind  ledger.VoteType
	from  role
	to    role
}

// scenario is a running targeted scenario; it is the byzantine
// validator's script too.
type scenario struct {
	s       *simulation
	name    string
	height  uint64 // the target height
	rounds  uint32 // the rounds the script covers
	byzKey  int    // Z's validator key
	keyRole [4]role
	pow     [4]uint64    // by role
	role    map[int]role // by node
	// holds: honest votes of the target height held back, by round,
	// type, sender and receiver role, until the receiver reaches the
	// round given.
	holds map[hold]uint32
	// zVote: what Z votes, by round, type and receiver role: "A", "B",
	// "nil", or nothing.
	zVote map[hold]string
	// zPropose: what Z proposes when it is the proposer of a round:
	// "fresh" (a block of its own) or "A0" (A with POL round 0).
	zPropose map[uint32]string
	// zSilent: Z sends nothing from this round of the target height on
	// (0: never).
	zSilent uint32

	held   []heldMsg
	values map[string]*proposed // "A", "B" (, "D"): the proposals of rounds 0, 1 (, 2)
	labels map[uint32]string    // the value each round's proposal is named by
	voted  map[uint32]bool      // Z voted in the round
	// What the run showed of the script, for the test's check that it
	// played out: locks and relocks at the target height, decisions.
	Played map[string]bool
}

type proposed struct {
	proposal *ledger.Proposal
	block    *ledger.Block
}

type heldMsg struct {
	from, to int
	until    uint32
	m        *message
}

// newScenario draws the scenario's powers and roles from the seed.
func newScenario(s *simulation, name string) *scenario {
	sc := &scenario{s: s, name: name, holds: map[hold]uint32{}, zVote: map[hold]string{}, zPropose: map[uint32]string{},
		values: map[string]*proposed{}, voted: map[uint32]bool{}, role: map[int]role{}, Played: map[string]bool{},
		labels: map[uint32]string{0: "A", 1: "B"}}
	sc.draw(name)
	sc.zPropose[0], sc.zPropose[1] = "fresh", "fresh"
	// Round 0: everyone prevotes A; only L sees the polka: C and U get
	// L's prevote when they are in round 1, and Z's prevote for nil, so
	// that they see prevotes for anything.
	sc.holds[hold{0, ledger.Prevote, roleL, roleC}] = 1
	sc.holds[hold{0, ledger.Prevote, roleL, roleU}] = 1
	sc.zVotes(0, ledger.Prevote, map[role]string{roleL: "A", roleC: "nil", roleU: "nil"})
	sc.zVotes(0, ledger.Precommit, map[role]string{roleL: "nil", roleC: "nil", roleU: "nil"})
	switch name {
	case "relock":
		// Round 1: L (locked on A) prevotes nil, C and U prevote B; Z's
		// prevote for B makes the polka L and C see; U gets C's prevote
		// only in round 2. L and C precommit B; C decides it, L gets
		// C's precommit only in round 2.
		sc.rounds = 3
		sc.holds[hold{1, ledger.Prevote, roleC, roleU}] = 2
		sc.holds[hold{1, ledger.Precommit, roleC, roleL}] = 3
		sc.holds[hold{1, ledger.Precommit, roleC, roleU}] = 3
		// Z's machine must not decide B either: it must reach round 2,
		// which Z proposes.
		sc.holds[hold{1, ledger.Precommit, roleC, roleZ}] = 3
		sc.zVotes(1, ledger.Prevote, map[role]string{roleL: "B", roleC: "B", roleU: "nil"})
		sc.zVotes(1, ledger.Precommit, map[role]string{roleL: "B", roleC: "B", roleU: "B"})
		// Round 2: Z proposes A with its polka of round 0, and votes
		// for it.
		sc.zPropose[2] = "A0"
		sc.zVotes(2, ledger.Prevote, map[role]string{roleL: "A", roleC: "A", roleU: "A"})
		sc.zVotes(2, ledger.Precommit, map[role]string{roleL: "A", roleC: "A", roleU: "A"})
	case "three":
		// Round 1 as in unlock; round 2: Z or U proposes a fresh value
		// D, and Z's prevote makes U's a polka that everyone sees: L
		// (locked on A) and C (on B) relock on D, and D is decided.
		sc.rounds = 3
		sc.zVotes(1, ledger.Prevote, map[role]string{roleL: "nil", roleC: "B", roleU: "nil"})
		sc.zVotes(1, ledger.Precommit, map[role]string{roleL: "nil", roleC: "nil", roleU: "nil"})
		sc.zPropose[2] = "fresh"
		sc.labels[2] = "D"
		sc.zVotes(2, ledger.Prevote, map[role]string{roleL: "D", roleC: "D", roleU: "D"})
		sc.zVotes(2, ledger.Precommit, map[role]string{roleL: "D", roleC: "D", roleU: "D"})
	case "unlock":
		// Round 1: C and U prevote B, L nil; Z's prevote for B goes to
		// C alone, so C sees the polka and locks on B; nobody decides.
		// From round 2 on, Z is silent.
		sc.rounds = 2
		sc.zVotes(1, ledger.Prevote, map[role]string{roleL: "nil", roleC: "B", roleU: "nil"})
		sc.zVotes(1, ledger.Precommit, map[role]string{roleL: "nil", roleC: "nil", roleU: "nil"})
		sc.zSilent = 2
	default:
		panic(fmt.Sprintf("sim: unknown scenario %q", name))
	}
	return sc
}

// draw draws the powers, the roles and the target height: Z holds as
// much power as stays below a third, and the honest powers make each step
// of the script a quorum or not, as it needs; the target is the first
// height from 2 on whose proposers suit the script (L does not propose
// round 1, where it would propose A again; in relock, Z proposes round
// 2; in three, Z or U, who hold no valid value). Roles and powers are
// drawn again until some height suits them.
func (sc *scenario) draw(name string) {
	r := sc.s.frng
	for {
		l, c, u := 1+r.Uint64N(12), 1+r.Uint64N(12), 1+r.Uint64N(12)
		f := (l + c + u - 1) / 2
		t := f + l + c + u
		q := func(p uint64) bool { return 3*p > 2*t } // a quorum
		// Round 0: C and U see prevotes for anything but no polka for A;
		// round 1: Z's prevote makes the polka for B.
		if q(c+u) || !q(f+c+u) {
			continue
		}
		switch name {
		case "relock":
			// C, L and Z decide B; Z, L and U make a polka for A in
			// round 2 if L prevotes it; L and Z alone are no quorum.
			if !q(f+l+c) || !q(f+l+u) || q(f+l) {
				continue
			}
		case "unlock":
			// No decision in round 1; without Z, L and U are no quorum,
			// nor are C and U.
			if q(f+c) || q(l+u) {
				continue
			}
		case "three":
			// Z and U make the polka of round 2.
			if !q(f + u) {
				continue
			}
		}
		sc.pow = [4]uint64{f, l, c, u}
		for k, p := range r.Perm(4) {
			sc.keyRole[k] = role(p)
			if role(p) == roleZ {
				sc.byzKey = k
			}
		}
		var vals []ledger.Validator
		for k, rl := range sc.keyRole {
			vals = append(vals, ledger.Validator{PubKey: simKey("validator", k).PubKey(), Power: sc.pow[rl]})
		}
		vs, err := ledger.NewValidatorSet(vals)
		if err != nil {
			panic(fmt.Sprintf("sim: scenario validator set: %v", err))
		}
		sets := consensus.Static(vs)
		roleOf := func(h uint64, r uint32) role {
			prio, err := sets.PrioritiesAt(h)
			if err != nil {
				panic(fmt.Sprintf("sim: scenario priorities: %v", err))
			}
			return sc.keyRole[keyIndex(consensus.NewProposerSelector(prio).Proposer(r))]
		}
		for h := uint64(2); h < 20; h++ {
			p1, p2 := roleOf(h, 1), roleOf(h, 2)
			if p1 != roleL && (name != "relock" || p2 == roleZ) && (name != "three" || p2 == roleZ || p2 == roleU) {
				sc.height = h
				return
			}
		}
	}
}

func (sc *scenario) zVotes(r uint32, t ledger.VoteType, to map[role]string) {
	for rl, v := range to {
		sc.zVote[hold{r, t, roleZ, rl}] = v
	}
}

// powers returns the validators' powers, by key.
func (sc *scenario) powers() []uint64 {
	out := make([]uint64, 4)
	for k, rl := range sc.keyRole {
		out[k] = sc.pow[rl]
	}
	return out
}

// init maps the nodes to their roles, now that they exist.
func (sc *scenario) init() {
	s := sc.s
	for _, n := range s.nodes {
		sc.role[n.idx] = sc.keyRole[keyIndex(n.addr)]
	}
	s.tracef(nil, "scenario %s at height %d: powers Z=%d L=%d C=%d U=%d; %s", sc.name, sc.height,
		sc.pow[roleZ], sc.pow[roleL], sc.pow[roleC], sc.pow[roleU], sc.roleList())
}

func (sc *scenario) roleList() string {
	out := ""
	for _, n := range sc.s.nodes {
		out += fmt.Sprintf(" %s=%s", n.name, sc.role[n.idx])
	}
	return out[1:]
}

// keyIndex returns the index of the simulator's validator key with
// address a (one of the first four).
func keyIndex(a crypto.Address) int {
	for i := 0; ; i++ {
		if simKey("validator", i).PubKey().Address() == a {
			return i
		}
	}
}

// scripted reports whether a message of height h and round r is within
// the script.
func (sc *scenario) scripted(h uint64, r uint32) bool {
	return h == sc.height && r < sc.rounds && !sc.s.healed
}

// untilHeal holds a message until the heal.
const untilHeal = ^uint32(0)

// holdFor returns the round the receiver must reach before a message from
// node a to node b is delivered (0: now; untilHeal: at the heal). The
// script routes the votes of its rounds; a vote of them that a node
// passes on (a catch-up answer) and a decided block of the target height
// wait for the heal, or they would bring the messages the script holds
// back.
func (sc *scenario) holdFor(a, b int, m *message) uint32 {
	if sc.s.healed {
		return 0
	}
	switch m.kind {
	case msgCatchup:
		if m.commit.Height == sc.height {
			return untilHeal
		}
	case msgVote:
		if !sc.scripted(m.vote.Height, m.vote.Round) {
			return 0
		}
		if m.vote.Validator != sc.s.nodes[a].addr {
			return untilHeal
		}
		if sc.role[a] != roleZ {
			return sc.holds[hold{m.vote.Round, m.vote.Type, sc.role[a], sc.role[b]}]
		}
	}
	return 0
}

// hold keeps hm back, unless the same vote is already held for its
// receiver (catch-up answers repeat what they relay).
func (sc *scenario) hold(hm heldMsg) {
	if v := hm.m.vote; v != nil {
		for _, o := range sc.held {
			if o.to == hm.to && o.m.vote != nil && o.m.vote.Sig == v.Sig {
				return
			}
		}
	}
	sc.held = append(sc.held, hm)
}

// release delivers the messages held for node n that its position lets
// through; with n nil (the heal), all of them.
func (sc *scenario) release(n *node) {
	s := sc.s
	kept := sc.held[:0]
	for _, hm := range sc.held {
		if n == nil || hm.to == n.idx {
			st := s.nodes[hm.to].core.State()
			if n == nil || (hm.until != untilHeal && (st.Height > sc.height || (st.Height == sc.height && st.Round >= hm.until))) {
				s.tracef(s.nodes[hm.to], "scenario releases %s (sent by %s)", msgString(hm.m), s.nodes[hm.from].name)
				s.deliver(hm.from, hm.to, hm.m)
				continue
			}
		}
		kept = append(kept, hm)
	}
	sc.held = kept
}

// observe records what the scenario played: called after every step of
// an honest node.
func (sc *scenario) observe(n *node, effects []consensus.Effect) {
	rl := sc.role[n.idx]
	for _, e := range effects {
		switch e := e.(type) {
		case consensus.EffectBroadcastVote:
			if v := e.Vote; v.Height == sc.height && v.Type == ledger.Precommit && !v.BlockID.IsZero() {
				sc.Played[fmt.Sprintf("%s locks %s r=%d", rl, sc.labelOf(v.BlockID, v.Round), v.Round)] = true
			}
		case consensus.EffectDecide:
			if e.Height == sc.height {
				sc.Played[fmt.Sprintf("%s decides %s r=%d", rl, sc.labelOf(e.Block.Hash(), e.Round), e.Round)] = true
			}
		}
	}
	if len(sc.held) > 0 {
		sc.release(n)
	}
	// The script is over once every honest node is past its rounds.
	if s := sc.s; !s.healed {
		for _, m := range s.nodes {
			if !m.honest {
				continue
			}
			if m.core == nil || !m.up {
				return
			}
			if st := m.core.State(); st.Height < sc.height || (st.Height == sc.height && st.Round < sc.rounds) {
				return
			}
		}
		s.after(0, s.heal)
	}
}

// labelOf names the value id that an honest node precommitted (or
// decided) in round r: A, B or D as the script has it, by the value or,
// before Z recorded it, by the round, whose proposal it must be.
func (sc *scenario) labelOf(id crypto.Hash, r uint32) string {
	for label, p := range sc.values {
		if p.proposal.BlockID == id {
			return label
		}
	}
	if label := sc.labels[r]; label != "" && sc.values[label] == nil {
		return label
	}
	return consensus.ShortID(id)
}

// vote sends a vote Z's machine signed: only outside the script's rounds,
// and not at all once Z is silent.
func (sc *scenario) vote(b *byzantine, v *ledger.Vote) {
	if sc.scripted(v.Height, v.Round) || b.silent() || !b.allow(v.Type, v.Height, v.Round, v.BlockID) {
		return
	}
	b.broadcast(&message{kind: msgVote, from: b.n.idx, vote: v})
}

// proposal sends a proposal Z's machine signed, or, in the script's
// rounds, the one the script wants: a fresh block, or A with its proof of
// lock, round 0.
func (sc *scenario) proposal(b *byzantine, p *ledger.Proposal, blk *ledger.Block) {
	if !sc.scripted(p.Height, p.Round) {
		b.broadcast(&message{kind: msgProposal, from: b.n.idx, proposal: p, block: blk})
		return
	}
	switch sc.zPropose[p.Round] {
	case "fresh":
		if p.POLRound >= 0 {
			blk = b.block(p.Height, p.Round)
			p = b.signProposal(p.Height, p.Round, -1, blk)
		}
		// The value the votes name is this one, not the one Z's machine
		// believes it proposed.
		if label := sc.labels[p.Round]; label != "" {
			sc.values[label] = &proposed{p, blk}
		}
	case "A0":
		a := sc.values["A"]
		if a == nil {
			return
		}
		blk = a.block
		p = b.signProposal(p.Height, p.Round, 0, blk)
		sc.Played[fmt.Sprintf("Z proposes A r=%d", p.Round)] = true
	}
	sc.s.tracef(b.n, "scenario: Z proposes %s at r=%d (POL %d)", consensus.ShortID(p.BlockID), p.Round, p.POLRound)
	b.broadcast(&message{kind: msgProposal, from: b.n.idx, proposal: p, block: blk})
}

// stepped acts after a step of Z's machine: when the machine has the
// proposal of a scripted round, Z sends that round's votes.
func (sc *scenario) stepped(b *byzantine, ev consensus.Event) {
	e, ok := ev.(consensus.EventProposal)
	if !ok || !sc.scripted(e.Proposal.Height, e.Proposal.Round) {
		return
	}
	r := e.Proposal.Round
	label := sc.labels[r]
	if label != "" && sc.values[label] == nil {
		sc.values[label] = &proposed{e.Proposal, e.Block}
	}
	if sc.voted[r] {
		return
	}
	sc.voted[r] = true
	for _, n := range sc.s.nodes {
		if n.idx == b.n.idx {
			continue
		}
		for _, t := range []ledger.VoteType{ledger.Prevote, ledger.Precommit} {
			var id crypto.Hash
			switch v := sc.zVote[hold{r, t, roleZ, sc.role[n.idx]}]; v {
			case "":
				continue
			case "nil":
			default:
				p := sc.values[v]
				if p == nil {
					continue
				}
				id = p.proposal.BlockID
			}
			if vote := b.signVote(t, sc.height, r, id); vote != nil {
				b.out(n.idx, &message{kind: msgVote, from: b.n.idx, vote: vote})
			}
		}
	}
}

// silent implements the script's silence: Z sends nothing once its
// machine reached round zSilent of the target height.
func (sc *scenario) silent(b *byzantine) bool {
	if sc.zSilent == 0 || b.n.core == nil {
		return false
	}
	st := b.n.core.State()
	return st.Height > sc.height || (st.Height == sc.height && st.Round >= sc.zSilent)
}
