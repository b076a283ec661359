package catchup

import (
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

func key(i int) crypto.PrivKey {
	seed := crypto.Sum([]byte{byte(i)})
	k, err := crypto.PrivKeyFromSeed(seed[:])
	if err != nil {
		panic(err)
	}
	return k
}

func vals(t *testing.T) *ledger.ValidatorSet {
	var vs []ledger.Validator
	for i := 0; i < 4; i++ {
		vs = append(vs, ledger.Validator{PubKey: key(i).PubKey(), Power: 1})
	}
	s, err := ledger.NewValidatorSet(vs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func vote(i int, t ledger.VoteType, h uint64, r uint32, id byte) *ledger.Vote {
	v := &ledger.Vote{Type: t, Height: h, Round: r, BlockID: crypto.Hash{id}}
	v.Sign("test-chain", key(i))
	return v
}

// TestCacheKeepsTheNextHeight: a vote of the next height accepted before
// the height starts is answered once it has started. Before, the cache
// dropped it, and a peer that missed it (its signer gone silent) could
// never leave a round whose threshold it completed.
func TestCacheKeepsTheNextHeight(t *testing.T) {
	vs := vals(t)
	c := New[int](0)
	c.Reset(5)
	c.AddVote(vote(0, ledger.Precommit, 5, 0, 1))
	early := vote(1, ledger.Precommit, 6, 0, 0)
	c.AddVote(early)
	c.AddProposal(&ledger.Proposal{Height: 6, Round: 0, POLRound: -1, BlockID: crypto.Hash{2}}, 7)
	c.AddVote(vote(2, ledger.Prevote, 7, 0, 3)) // two heights ahead: dropped
	if got := c.Get(6, 0); len(got.Votes) != 0 || got.Proposal != nil {
		t.Fatalf("height 6 answered before it started: %+v", got)
	}

	commit := &ledger.Commit{Height: 5, Round: 0, BlockID: crypto.Hash{1}}
	c.Decided(crypto.Hash{1}, commit, vs)
	got := c.Get(6, 0)
	if len(got.Votes) != 1 || got.Votes[0] != early {
		t.Fatalf("after deciding 5, Get(6, 0) votes = %v, want the early precommit", got.Votes)
	}
	if got.Proposal == nil || got.Proposal.BlockID != (crypto.Hash{2}) || got.Block != 7 {
		t.Fatalf("after deciding 5, Get(6, 0) proposal = %+v, want the early one", got.Proposal)
	}
	c.AddVote(vote(3, ledger.Prevote, 7, 0, 3))
	if got := c.Get(6, 0); len(got.Votes) != 1 {
		t.Fatalf("a vote of height 7 joined height 6: %v", got.Votes)
	}

	// A decision of another height than the cache's (a node that jumped
	// ahead) drops what was kept of the next.
	c.Decided(crypto.Hash{9}, &ledger.Commit{Height: 8, Round: 0, BlockID: crypto.Hash{9}}, vs)
	if got := c.Get(9, 0); len(got.Votes) != 0 {
		t.Fatalf("height 9 holds %v after a jump", got.Votes)
	}
	// Reset drops the next height too.
	c.AddVote(vote(0, ledger.Prevote, 10, 0, 1))
	c.Reset(9)
	c.Decided(crypto.Hash{4}, &ledger.Commit{Height: 9, Round: 0, BlockID: crypto.Hash{4}}, vs)
	if got := c.Get(10, 0); len(got.Votes) != 0 {
		t.Fatalf("Reset kept %v of the next height", got.Votes)
	}
}

func TestCacheBoundsTheNextHeight(t *testing.T) {
	c := New[int](3)
	c.Reset(1)
	for i := 0; i < 10; i++ {
		c.AddVote(vote(i%4, ledger.Prevote, 2, uint32(i), 1))
		c.AddProposal(&ledger.Proposal{Height: 2, Round: uint32(i), POLRound: -1, BlockID: crypto.Hash{byte(i + 1)}}, i)
	}
	for i := 0; i < MaxProposals+5; i++ {
		c.AddProposal(&ledger.Proposal{Height: 2, Round: uint32(i), POLRound: -1, BlockID: crypto.Hash{byte(i + 1)}}, i)
	}
	c.Decided(crypto.Hash{1}, &ledger.Commit{Height: 1, BlockID: crypto.Hash{1}}, vals(t))
	if got := c.Get(2, 0); len(got.Votes) != 3 {
		t.Fatalf("kept %d votes of the next height, want the bound 3", len(got.Votes))
	}
	if len(c.proposals) != MaxProposals {
		t.Fatalf("kept %d proposals of the next height, want %d", len(c.proposals), MaxProposals)
	}
}
