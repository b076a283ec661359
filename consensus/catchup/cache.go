// Package catchup keeps what a validator has seen of the height it is
// deciding, for answering the catch-up requests of peers that missed
// messages: the one source the node and the simulator answer from.
package catchup

import (
	"sync"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// Bounds of what a cache keeps for one height.
const (
	MaxVotes     = 1024
	MaxProposals = 64
)

// Proposal is an accepted proposal with the block payload a peer needs to
// assemble it: the node keeps the block's parts, the simulator the block.
type Proposal[B any] struct {
	Proposal *ledger.Proposal
	Block    B
}

// Messages answers one request: the latest proposal at or above the round
// asked for (nil if none), and the accepted votes at or above it.
type Messages[B any] struct {
	Proposal *ledger.Proposal
	Block    B
	Votes    []*ledger.Vote
}

// Cache holds accepted proposals and every accepted vote of the height
// being decided and of the one after it (the machine accepts messages of
// the next height ahead of it; a vote accepted then must be passed on
// once the height starts, or a peer that missed it may never see the
// threshold it completed, for example the precommits that let this node
// leave a round), and, for the height decided last, the proposal that
// carried its block and its commit's precommits: enough for a peer stuck
// on it to decide (L49). It is safe for concurrent use: the driver writes
// it, the network reads it.
type Cache[B any] struct {
	mu        sync.Mutex
	maxVotes  int
	height    uint64
	proposals []Proposal[B]
	votes     []*ledger.Vote
	// next holds what was accepted of height+1.
	next struct {
		proposals []Proposal[B]
		votes     []*ledger.Vote
	}
	prev struct {
		height   uint64
		proposal Proposal[B]
		votes    []*ledger.Vote
	}
}

// New returns a cache that keeps up to maxVotes votes of a height (0:
// MaxVotes).
func New[B any](maxVotes int) *Cache[B] {
	if maxVotes <= 0 {
		maxVotes = MaxVotes
	}
	return &Cache[B]{maxVotes: maxVotes}
}

// Reset drops everything and starts keeping height.
func (c *Cache[B]) Reset(height uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.height, c.proposals, c.votes = height, nil, nil
	c.next.proposals, c.next.votes = nil, nil
}

// Height is the height whose messages the cache keeps.
func (c *Cache[B]) Height() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.height
}

// Decided moves on from the decided height to the next one, keeping the
// proposal that carried block id and the commit's precommits, and what
// was accepted of the next height already.
func (c *Cache[B]) Decided(id crypto.Hash, commit *ledger.Commit, vals *ledger.ValidatorSet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prev.height, c.prev.proposal, c.prev.votes = commit.Height, Proposal[B]{}, nil
	if c.height == commit.Height {
		for _, p := range c.proposals {
			if p.Proposal.BlockID == id {
				c.prev.proposal = p
			}
		}
	}
	for _, v := range commit.Votes(vals) {
		c.prev.votes = append(c.prev.votes, &v)
	}
	if c.height == commit.Height {
		c.proposals, c.votes = c.next.proposals, c.next.votes
	} else {
		c.proposals, c.votes = nil, nil
	}
	c.height = commit.Height + 1
	c.next.proposals, c.next.votes = nil, nil
}

// AddProposal keeps an accepted proposal of the cache's height or the
// next.
func (c *Cache[B]) AddProposal(p *ledger.Proposal, block B) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case p.Height == c.height && len(c.proposals) < MaxProposals:
		c.proposals = append(c.proposals, Proposal[B]{p, block})
	case p.Height == c.height+1 && len(c.next.proposals) < MaxProposals:
		c.next.proposals = append(c.next.proposals, Proposal[B]{p, block})
	}
}

// AddVote keeps an accepted vote of the cache's height or the next.
func (c *Cache[B]) AddVote(v *ledger.Vote) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case v.Height == c.height && len(c.votes) < c.maxVotes:
		c.votes = append(c.votes, v)
	case v.Height == c.height+1 && len(c.next.votes) < c.maxVotes:
		c.next.votes = append(c.next.votes, v)
	}
}

// Get returns the latest proposal of height at round or above with its
// block payload, and the votes of height at rounds >= round, and, when
// that proposal claims a proof-of-lock round below round, the prevotes of
// that round for its block (a peer that missed them could never prevote
// it, L28); for the height decided last, its decided proposal and commit
// precommits.
func (c *Cache[B]) Get(height uint64, round uint32) Messages[B] {
	c.mu.Lock()
	defer c.mu.Unlock()
	var m Messages[B]
	if height == c.prev.height && height != 0 {
		m.Proposal, m.Block, m.Votes = c.prev.proposal.Proposal, c.prev.proposal.Block, c.prev.votes
		return m
	}
	if height != c.height {
		return m
	}
	for i := len(c.proposals) - 1; i >= 0; i-- {
		if p := c.proposals[i]; p.Proposal.Round >= round {
			m.Proposal, m.Block = p.Proposal, p.Block
			break
		}
	}
	pol := int64(-1)
	if m.Proposal != nil && m.Proposal.POLRound >= 0 && uint32(m.Proposal.POLRound) < round {
		pol = int64(m.Proposal.POLRound)
	}
	for _, v := range c.votes {
		if v.Round >= round || (int64(v.Round) == pol && v.Type == ledger.Prevote && v.BlockID == m.Proposal.BlockID) {
			m.Votes = append(m.Votes, v)
		}
	}
	return m
}
