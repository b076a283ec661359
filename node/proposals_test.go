package node

import (
	"fmt"
	"testing"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/privval"
)

// proposalSetup is a four-validator node, opened but not started, with a
// driver whose machine waits at height 1; proposer leads (1, 0), byz is
// another validator (the one the attacker holds), neither is the node.
type proposalSetup struct {
	n             *Node
	d             *driver
	keys          map[crypto.Address]crypto.PrivKey
	proposer, byz crypto.Address
}

func newProposalSetup(t *testing.T) *proposalSetup {
	t.Helper()
	tn, err := WriteTestnet(t.TempDir(), TestnetOptions{ChainID: "node-test", Validators: 4, FundedAccounts: 1,
		Balance: 1_000_000, BasePort: freeBasePort(t, 4)})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[crypto.Address]crypto.PrivKey{}
	homes := map[crypto.Address]string{}
	for _, nd := range tn.Nodes {
		cfg, err := LoadConfig(nd.Home)
		if err != nil {
			t.Fatal(err)
		}
		k, err := privval.LoadKeyFile(cfg.ValidatorKeyFile())
		if err != nil {
			t.Fatal(err)
		}
		keys[k.PubKey().Address()], homes[k.PubKey().Address()] = k, nd.Home
	}
	// The roles: the proposer of (1, 0), the attacker's validator, and
	// the node under test, three different validators.
	doc, err := genesis.Load(DefaultConfig(tn.Nodes[0].Home).GenesisFile())
	if err != nil {
		t.Fatal(err)
	}
	gst, _, err := doc.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	proposer := consensus.NewProposerSelector(gst.Priorities).Proposer(0)
	var byz, self crypto.Address
	for a := range keys {
		switch {
		case a == proposer:
		case byz.IsZero():
			byz = a
		case self.IsZero():
			self = a
		}
	}
	cfg, err := LoadConfig(homes[self])
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.closeStores)
	d := newDriver(n)
	if err := d.core.Start(); err != nil {
		t.Fatal(err)
	}

	return &proposalSetup{n: n, d: d, keys: keys, proposer: proposer, byz: byz}
}

// TestProposalFloodFromOneValidatorLeavesRoomForTheProposer: a validator
// whose key an attacker holds signs hundreds of proposals with made-up
// blocks for the height being decided and the next, at rounds near and far
// (ledger.MaxRound), led by it or not: what the far-future and equivocation
// attacks gossip. The driver assembles blocks of at most maxPartsEntries
// proposals at once; the flood must neither exceed that nor crowd out the
// block of the round's actual proposer, which the node must then prevote.
// (Before, the first 64 signed proposals of any validator took every slot
// until the height was committed, and no honest proposal could be
// assembled again: the height never ended.)
func TestProposalFloodFromOneValidatorLeavesRoomForTheProposer(t *testing.T) {
	ps := newProposalSetup(t)
	n, d, keys, proposer, byz := ps.n, ps.d, ps.keys, ps.proposer, ps.byz
	// The flood: proposals signed with the attacker's key, two made-up
	// blocks per (height, round), near rounds and far ones.
	sent := 0
	for _, h := range []uint64{1, 2} {
		for i := range uint32(150) {
			round := i
			if i%2 == 1 {
				round = ledger.MaxRound - i
			}
			for j := range 2 {
				p := &ledger.Proposal{Height: h, Round: round, POLRound: -1,
					BlockID: crypto.Sum(fmt.Appendf(nil, "junk %d/%d/%d", h, round, j)),
					Parts:   ledger.PartSetHeader{Total: 1, Root: crypto.Sum([]byte("junk"))}}
				p.Sign(n.chainID, keys[byz])
				d.asm.addProposal(p)
				sent++
			}
		}
	}
	if len(d.asm.parts) > maxPartsEntries {
		t.Fatalf("%d proposals being assembled after a flood of %d, the bound is %d", len(d.asm.parts), sent, maxPartsEntries)
	}

	// The proposer's block of (1, 0), with its parts.
	b, err := d.build.BuildBlock(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.Header.Proposer = proposer
	hdr, parts := ledger.SplitBlock(b.Encode())
	p := &ledger.Proposal{Height: 1, Round: 0, POLRound: -1, BlockID: b.Hash(), Parts: hdr}
	p.Sign(n.chainID, keys[proposer])
	d.asm.addProposal(p)
	for _, part := range parts {
		d.asm.addPart(1, 0, part, "")
	}
	if err := n.Err(); err != nil {
		t.Fatal(err)
	}

	effects, err := d.core.Machine().Step(consensus.EventNewHeight{Height: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range effects {
		if v, ok := e.(consensus.EffectBroadcastVote); ok && v.Vote.Type == ledger.Prevote && v.Vote.BlockID == b.Hash() {
			return
		}
	}
	t.Fatalf("after a flood of %d proposals the node did not prevote the proposer's block %s of round 0 (%d proposals being assembled); effects: %v",
		sent, consensus.ShortID(b.Hash()), len(d.asm.parts), effects)
}

// TestProposalSlotsFollowTheMachinesRules: a slot goes only to the round's
// proposer, and a round holds at most consensus.MaxProposalsPerRound
// proposals unless a vote of that round names the block.
func TestProposalSlotsFollowTheMachinesRules(t *testing.T) {
	ps := newProposalSetup(t)
	d := ps.d
	propose := func(key crypto.PrivKey, round uint32, name string) crypto.Hash {
		p := &ledger.Proposal{Height: 1, Round: round, POLRound: -1, BlockID: crypto.Sum([]byte(name)),
			Parts: ledger.PartSetHeader{Total: 1, Root: crypto.Sum([]byte(name))}}
		p.Sign(ps.n.chainID, key)
		d.asm.addProposal(p)
		return p.BlockID
	}
	has := func(round uint32, id crypto.Hash) bool {
		_, ok := d.asm.parts[partsKey{1, round, id}]
		return ok
	}
	if id := propose(ps.keys[ps.byz], 0, "not the proposer"); has(0, id) {
		t.Fatal("a validator that does not lead round 0 got a slot for it")
	}
	a, b := propose(ps.keys[ps.proposer], 0, "a"), propose(ps.keys[ps.proposer], 0, "b")
	if !has(0, a) || !has(0, b) {
		t.Fatal("the proposer's first two proposals of the round got no slot")
	}
	c := crypto.Sum([]byte("c"))
	if propose(ps.keys[ps.proposer], 0, "c"); has(0, c) {
		t.Fatalf("round 0 got a third proposal; the bound is %d", consensus.MaxProposalsPerRound)
	}
	v := &ledger.Vote{Type: ledger.Prevote, Height: 1, Round: 0, BlockID: c}
	v.Sign(ps.n.chainID, ps.keys[ps.byz])
	if _, err := d.core.Machine().Step(consensus.EventVote{Vote: v}); err != nil {
		t.Fatal(err)
	}
	if propose(ps.keys[ps.proposer], 0, "c"); !has(0, c) {
		t.Fatal("a third proposal of the round that a vote names got no slot")
	}
}
