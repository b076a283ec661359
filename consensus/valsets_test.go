package consensus

import (
	"errors"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// heightSets is a ValidatorSets with one set for height 1 and another
// from height 2 on.
func heightSets(first, later *ledger.ValidatorSet) ValidatorSets {
	return Schedule(func(h uint64) (*ledger.ValidatorSet, error) {
		if h <= 1 {
			return first, nil
		}
		return later, nil
	})
}

// TestMachineFollowsTheSetOfEachHeight runs a machine whose key joins the
// set at height 2 while another validator leaves it: at height 1 it
// follows without voting and refuses the newcomer's votes; at height 2 it
// votes, counts the newcomer and refuses the leaver.
func TestMachineFollowsTheSetOfEachHeight(t *testing.T) {
	keys := make(map[string]crypto.PrivKey)
	var all []ledger.Validator
	for _, name := range []string{"a", "b", "c", "d", "new"} {
		seed := crypto.Sum([]byte("valsets-test/" + name))
		k, err := crypto.PrivKeyFromSeed(seed[:])
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k
		all = append(all, ledger.Validator{PubKey: k.PubKey(), Power: 1, Name: name})
	}
	first, err := ledger.NewValidatorSet(all[:4]) // a, b, c, d
	if err != nil {
		t.Fatal(err)
	}
	later, err := ledger.NewValidatorSet(all[1:]) // b, c, d, new: a left
	if err != nil {
		t.Fatal(err)
	}
	self := keys["new"]
	sets := heightSets(first, later)
	m, err := New(Config{ChainID: testChain, Validators: sets, Self: self.PubKey().Address(),
		ValidValue: func(*ledger.Block) error { return nil }}, 1)
	if err != nil {
		t.Fatal(err)
	}
	step := func(e Event) []Effect {
		t.Helper()
		out, err := m.Step(e)
		if err != nil {
			t.Fatalf("%T: %v", e, err)
		}
		return out
	}
	keyOf := func(vals *ledger.ValidatorSet, i int) crypto.PrivKey { return keys[vals.Get(i).Name] }
	propose := func(h uint64, vals *ledger.ValidatorSet) *ledger.Block {
		prio, err := sets.PrioritiesAt(h)
		if err != nil {
			t.Fatal(err)
		}
		proposer := NewProposerSelector(prio).Index(0)
		b := &ledger.Block{Header: ledger.Header{ChainID: testChain, Height: h, Time: ledger.Timestamp(h),
			ValidatorsHash: vals.Hash(), Proposer: vals.Get(proposer).Address()}}
		b.FillHeader()
		parts, _ := ledger.SplitBlock(b.Encode())
		p := &ledger.Proposal{Height: h, Round: 0, POLRound: -1, BlockID: b.Hash(), Parts: parts}
		p.Sign(testChain, keyOf(vals, proposer))
		step(EventProposal{Proposal: p, Block: b})
		return b
	}
	vote := func(k crypto.PrivKey, typ ledger.VoteType, h uint64, id crypto.Hash) ([]Effect, error) {
		v := &ledger.Vote{Type: typ, Height: h, BlockID: id}
		v.Sign(testChain, k)
		return m.Step(EventVote{Vote: v})
	}
	ownVotes := func(out []Effect) (n int) {
		for _, e := range out {
			if _, ok := e.(EffectBroadcastVote); ok {
				n++
			}
		}
		return n
	}

	// Height 1: not ours to vote on.
	var own int
	own += ownVotes(step(EventNewHeight{Height: 1}))
	b1 := propose(1, first)
	if _, err := vote(self, ledger.Prevote, 1, b1.Hash()); !errors.Is(err, ErrNotValidator) {
		t.Fatalf("a vote of height 1 by a validator of height 2 only: %v, want ErrNotValidator", err)
	}
	decided := false
	for _, typ := range []ledger.VoteType{ledger.Prevote, ledger.Precommit} {
		for _, name := range []string{"a", "b", "c"} {
			out, err := vote(keys[name], typ, 1, b1.Hash())
			if err != nil {
				t.Fatalf("%s %s: %v", name, typ, err)
			}
			own += ownVotes(out)
			for _, e := range out {
				if d, ok := e.(EffectDecide); ok && d.Height == 1 {
					decided = true
				}
			}
		}
	}
	if !decided || own != 0 {
		t.Fatalf("height 1: decided %v, own votes %d; want a decision and no vote of ours", decided, own)
	}

	// Height 2: ours; a's votes no longer count.
	step(EventNewHeight{Height: 2})
	b2 := propose(2, later)
	if h := m.State().Height; h != 2 {
		t.Fatalf("machine at %d", h)
	}
	if _, err := vote(keys["a"], ledger.Prevote, 2, b2.Hash()); !errors.Is(err, ErrNotValidator) {
		t.Fatalf("a vote of height 2 by a validator that left: %v, want ErrNotValidator", err)
	}
	own = 0
	for _, name := range []string{"b", "c", "d"} {
		out, err := vote(keys[name], ledger.Prevote, 2, b2.Hash())
		if err != nil {
			t.Fatal(err)
		}
		own += ownVotes(out)
	}
	if own == 0 {
		t.Fatal("height 2: the machine never voted, though it is a validator of height 2")
	}
}

// TestProposalsOfTheNextHeightFollowItsPriorities: a machine at height 1
// checks proposals for height 2, whose set differs, against height 2's
// carried-over priorities. The proposer those name is accepted; the one a
// selector restarting from the new set alone would name is refused.
func TestProposalsOfTheNextHeightFollowItsPriorities(t *testing.T) {
	keys := map[string]crypto.PrivKey{}
	var all []ledger.Validator
	for i, name := range []string{"a", "b", "c", "d", "e"} {
		seed := crypto.Sum([]byte("next-priorities-test/" + name))
		k, err := crypto.PrivKeyFromSeed(seed[:])
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k
		all = append(all, ledger.Validator{PubKey: k.PubKey(), Power: uint64(1 + i), Name: name})
	}
	first, err := ledger.NewValidatorSet(all[:4])
	if err != nil {
		t.Fatal(err)
	}
	later, err := ledger.NewValidatorSet(all[1:])
	if err != nil {
		t.Fatal(err)
	}
	sets := heightSets(first, later)
	m, err := New(Config{ChainID: testChain, Validators: sets, ValidValue: func(*ledger.Block) error { return nil }}, 1)
	if err != nil {
		t.Fatal(err)
	}
	prio, err := sets.PrioritiesAt(2)
	if err != nil {
		t.Fatal(err)
	}
	carried := later.Get(NewProposerSelector(prio).Index(0))
	restarted := later.Get(ledger.GenesisPriorities(later).Proposer(0))
	if carried.Name == restarted.Name {
		t.Fatalf("the carried-over and the restarted order agree on %s; the test needs keys where they differ", carried.Name)
	}
	if got, ok := m.Proposer(2, 0); !ok || got != carried.Address() {
		t.Fatalf("machine's proposer of (2, 0): %s, want %s", ShortAddr(got), carried.Name)
	}
	propose := func(v *ledger.Validator) error {
		b := &ledger.Block{Header: ledger.Header{ChainID: testChain, Height: 2, Time: 2,
			ValidatorsHash: later.Hash(), Proposer: v.Address()}}
		b.FillHeader()
		parts, _ := ledger.SplitBlock(b.Encode())
		p := &ledger.Proposal{Height: 2, Round: 0, POLRound: -1, BlockID: b.Hash(), Parts: parts}
		p.Sign(testChain, keys[v.Name])
		_, err := m.Step(EventProposal{Proposal: p, Block: b})
		return err
	}
	if err := propose(restarted); !errors.Is(err, ErrWrongProposer) {
		t.Fatalf("proposal of (2, 0) by %s, the restarted order's proposer: %v, want ErrWrongProposer", restarted.Name, err)
	}
	if err := propose(carried); err != nil {
		t.Fatalf("proposal of (2, 0) by %s, the carried-over proposer: %v", carried.Name, err)
	}
}
