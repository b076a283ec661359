package sim

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// byzantine is what the validator of FaultByzantine does besides running
// correct code. Its machine, its signer and its driver are the honest
// ones; what it sends is not: every message its machine asks for passes
// through sendVote or sendProposal, which may change, split or drop it,
// and stepped adds messages of its own. Those are signed with the key
// directly, past the signer's guard, as an attacker holding the key would.
// Every choice comes from the node's own generator, so the run replays.
type byzantine struct {
	n    *node
	plan Behaviour
	rng  *rand.Rand

	// Silent in [silentFrom, silentUntil); silentUntil 0: for good.
	silentFrom, silentUntil time.Duration
	// Chance per occasion of each behaviour that is not always on.
	pFalsePOL, pOutOfTurn, pDouble, pFuture, pSplit float64

	// The machine's last position, to act once per new round.
	height uint64
	round  uint32
	// Block IDs of the proposals its machine accepted, by height and
	// round: the other value a split vote names.
	seen map[hr][]crypto.Hash
	// signed lists the values it signed votes for, by height, round and
	// type, for the whole run (its decided commits carry them): at most
	// two unless the plan has ByzThirdVote.
	signed map[voteKey][]crypto.Hash
	// script, if set, decides instead of the plan (targeted scenarios).
	script *scenario
}

type voteKey struct {
	height uint64
	round  uint32
	typ    ledger.VoteType
}

type hr struct {
	height uint64
	round  uint32
}

// newByzantine draws the plan's parameters for node n from its generator.
func newByzantine(n *node, plan Behaviour) *byzantine {
	b := &byzantine{n: n, plan: plan, rng: rand.New(rand.NewPCG(n.s.opts.Seed, 0xb12a+uint64(n.idx))), seen: map[hr][]crypto.Hash{}, signed: map[voteKey][]crypto.Hash{}}
	s := n.s
	if plan&ByzSilent != 0 {
		// Any moment of the fault phase or of the first seconds after
		// the heal; for good, or for 0.3 to 5 s.
		b.silentFrom = time.Duration(b.rng.Int64N(int64(s.opts.FaultPhase + 5*time.Second)))
		if b.rng.IntN(2) == 0 {
			b.silentUntil = b.silentFrom + time.Duration(300+b.rng.IntN(4700))*time.Millisecond
		}
	}
	p := func() float64 { return 0.2 + 0.8*b.rng.Float64() }
	b.pFalsePOL, b.pOutOfTurn, b.pDouble, b.pFuture, b.pSplit = p(), p(), p(), p(), p()
	return b
}

// silent reports whether the validator sends nothing now.
func (b *byzantine) silent() bool {
	if b.script != nil {
		return b.script.silent(b)
	}
	if b.plan&ByzSilent == 0 {
		return false
	}
	now := b.n.s.now
	return now >= b.silentFrom && (b.silentUntil == 0 || now < b.silentUntil)
}

// out sends m to node to, unless the validator is silent.
func (b *byzantine) out(to int, m *message) {
	if b.silent() {
		return
	}
	b.n.s.stats.ByzMessages++
	b.n.s.send(b.n.idx, to, m)
}

func (b *byzantine) broadcast(m *message) {
	for to := range b.n.s.nodes {
		if to != b.n.idx {
			b.out(to, m)
		}
	}
}

// allow reports whether the validator may send a vote for id of type t
// at (h, r): it names at most two values per height, round and type
// (unless ByzThirdVote), and records id.
func (b *byzantine) allow(t ledger.VoteType, h uint64, r uint32, id crypto.Hash) bool {
	k := voteKey{h, r, t}
	ids := b.signed[k]
	if slices.Contains(ids, id) {
		return true
	}
	if len(ids) >= 2 && b.plan&ByzThirdVote == 0 {
		return false
	}
	b.signed[k] = append(ids, id)
	return true
}

// mayRelay reports whether the validator may pass on its machine's vote v
// in a catch-up answer: a value allow permits, outside a scenario's
// script (which sends each of its votes to whom it chooses).
func (b *byzantine) mayRelay(v *ledger.Vote) bool {
	if b.script != nil && b.script.scripted(v.Height, v.Round) {
		return false
	}
	return b.allow(v.Type, v.Height, v.Round, v.BlockID)
}

// allowCommit reports whether the validator may send commit c: whether
// the precommit of its own that c carries, if any, is one allow permits.
func (b *byzantine) allowCommit(c *ledger.Commit) bool {
	vals, err := nodeSets{b.n}.ValidatorsAt(c.Height)
	if err != nil {
		return false
	}
	for _, v := range c.Votes(vals) {
		if v.Validator == b.n.addr {
			return b.allow(ledger.Precommit, c.Height, c.Round, c.BlockID)
		}
	}
	return true
}

// signVote signs a vote with the key, past the guard; nil if allow says
// no.
func (b *byzantine) signVote(t ledger.VoteType, h uint64, r uint32, id crypto.Hash) *ledger.Vote {
	if !b.allow(t, h, r, id) {
		return nil
	}
	v := &ledger.Vote{Type: t, Height: h, Round: r, BlockID: id}
	v.Sign(b.n.s.chainID, b.n.key)
	return v
}

// sendVotes broadcasts a vote of each type for id at (h, r).
func (b *byzantine) sendVotes(h uint64, r uint32, id crypto.Hash) {
	for _, t := range []ledger.VoteType{ledger.Prevote, ledger.Precommit} {
		if v := b.signVote(t, h, r, id); v != nil {
			b.broadcast(&message{kind: msgVote, from: b.n.idx, vote: v})
		}
	}
}

// signProposal signs a proposal of blk for (h, r) with the key.
func (b *byzantine) signProposal(h uint64, r uint32, pol int32, blk *ledger.Block) *ledger.Proposal {
	parts, _ := ledger.SplitBlock(blk.Encode())
	p := &ledger.Proposal{Height: h, Round: r, POLRound: pol, BlockID: blk.Hash(), Parts: parts}
	p.Sign(b.n.s.chainID, b.n.key)
	return p
}

// block builds a block for height h unlike any other it built: the time
// moves on by a random amount.
func (b *byzantine) block(h uint64, r uint32) *ledger.Block {
	blk, err := b.n.BuildBlock(h, r)
	if err != nil {
		return nil
	}
	blk.Header.Time += ledger.Timestamp(time.Duration(1+b.rng.IntN(1000)) * time.Millisecond)
	return blk
}

// randomID returns the ID of a block that does not exist.
func (b *byzantine) randomID() crypto.Hash {
	var id crypto.Hash
	binary.BigEndian.PutUint64(id[:], b.rng.Uint64())
	binary.BigEndian.PutUint64(id[8:], b.rng.Uint64())
	return id
}

// otherValue returns a value other than id for a vote of (h, r): another
// proposal the machine accepted there, nil, or a block that does not
// exist.
func (b *byzantine) otherValue(h uint64, r uint32, id crypto.Hash) crypto.Hash {
	for _, o := range b.seen[hr{h, r}] {
		if o != id {
			return o
		}
	}
	if !id.IsZero() && b.rng.IntN(2) == 0 {
		return crypto.Hash{}
	}
	return b.randomID()
}

// split sends a to a random half of the peers and c to the others.
func (b *byzantine) split(a, c *message) {
	for to := range b.n.s.nodes {
		if to == b.n.idx {
			continue
		}
		if b.rng.IntN(2) == 0 {
			b.out(to, a)
		} else {
			b.out(to, c)
		}
	}
}

// sendVote sends the vote the machine signed: as it is, or, split, for
// another value to some of the peers.
func (b *byzantine) sendVote(v *ledger.Vote) {
	if b.script != nil {
		b.script.vote(b, v)
		return
	}
	if !b.allow(v.Type, v.Height, v.Round, v.BlockID) {
		return
	}
	m := &message{kind: msgVote, from: b.n.idx, vote: v}
	if b.plan&ByzSplitVote != 0 && b.rng.Float64() < b.pSplit {
		if alt := b.signVote(v.Type, v.Height, v.Round, b.otherValue(v.Height, v.Round, v.BlockID)); alt != nil {
			b.split(m, &message{kind: msgVote, from: b.n.idx, vote: alt})
			b.n.s.tracef(b.n, "byzantine: split %s, %s to some peers", consensus.EventVote{Vote: v}, consensus.ShortID(alt.BlockID))
			return
		}
	}
	b.broadcast(m)
}

// sendProposal sends the proposal the machine signed: as it is, with a
// false proof-of-lock round, or beside a second block.
func (b *byzantine) sendProposal(p *ledger.Proposal, blk *ledger.Block) {
	if b.script != nil {
		b.script.proposal(b, p, blk)
		return
	}
	s := b.n.s
	if b.plan&ByzFalsePOL != 0 && p.Round > 0 && b.rng.Float64() < b.pFalsePOL {
		pol := int32(b.rng.IntN(int(p.Round)+1)) - 1 // -1 to round-1
		if pol == p.POLRound {
			pol = (pol+2)%(int32(p.Round)+1) - 1
		}
		fp := b.signProposal(p.Height, p.Round, pol, blk)
		s.tracef(b.n, "byzantine: proposes %s with POL round %d instead of %d", consensus.ShortID(p.BlockID), pol, p.POLRound)
		p = fp
	}
	m := &message{kind: msgProposal, from: b.n.idx, proposal: p, block: blk}
	if b.plan&ByzDoublePropose != 0 && b.rng.Float64() < b.pDouble {
		if other := b.block(p.Height, p.Round); other != nil {
			op := b.signProposal(p.Height, p.Round, -1, other)
			s.tracef(b.n, "byzantine: proposes %s and %s at h=%d r=%d", consensus.ShortID(p.BlockID), consensus.ShortID(op.BlockID), p.Height, p.Round)
			b.split(m, &message{kind: msgProposal, from: b.n.idx, proposal: op, block: other})
			return
		}
	}
	b.broadcast(m)
}

// stepped acts on what the machine accepted: it remembers proposals,
// votes for each of them (vote-all), and once per new round proposes out
// of turn and sends messages for rounds ahead.
func (b *byzantine) stepped(ev consensus.Event) {
	if b.script != nil {
		b.script.stepped(b, ev)
		return
	}
	if e, ok := ev.(consensus.EventProposal); ok {
		p := e.Proposal
		k := hr{p.Height, p.Round}
		b.seen[k] = append(b.seen[k], p.BlockID)
		if b.plan&ByzVoteAll != 0 {
			b.sendVotes(p.Height, p.Round, p.BlockID)
		}
	}
	st := b.n.core.State()
	if st.Step < consensus.StepPropose || st.Step > consensus.StepPrecommit || (st.Height == b.height && st.Round == b.round) {
		return
	}
	if st.Height != b.height {
		for k := range b.seen {
			if k.height < st.Height {
				delete(b.seen, k)
			}
		}
	}
	b.height, b.round = st.Height, st.Round
	b.newRound(st.Height, st.Round)
}

// newRound is the machine's entry into round r of height h.
func (b *byzantine) newRound(h uint64, r uint32) {
	n, s := b.n, b.n.s
	proposer, _ := n.core.Machine().Proposer(h, r)
	if b.plan&ByzOutOfTurn != 0 && proposer != n.addr && b.rng.Float64() < b.pOutOfTurn {
		if blk := b.block(h, r); blk != nil {
			s.tracef(n, "byzantine: proposes out of turn at h=%d r=%d", h, r)
			b.broadcast(&message{kind: msgProposal, from: n.idx, proposal: b.signProposal(h, r, -1, blk), block: blk})
		}
	}
	if b.plan&ByzFutureRounds != 0 && b.rng.Float64() < b.pFuture {
		for k := 1 + b.rng.IntN(3); k > 0; k-- {
			fh := h + uint64(b.rng.IntN(2))
			fr := r + uint32(1+b.rng.IntN(6))
			if fh > h {
				fr = uint32(b.rng.IntN(4))
			}
			if fr > ledger.MaxRound {
				continue
			}
			var id crypto.Hash
			if b.rng.IntN(2) == 0 {
				id = b.randomID()
			}
			b.sendVotes(fh, fr, id)
			if p, _ := n.core.Machine().Proposer(fh, fr); fh == h && p == n.addr {
				if blk := b.block(fh, fr); blk != nil {
					b.broadcast(&message{kind: msgProposal, from: n.idx, proposal: b.signProposal(fh, fr, -1, blk), block: blk})
				}
			}
			s.tracef(n, "byzantine: sends votes for h=%d r=%d ahead of its round %d", fh, fr, r)
		}
	}
}
