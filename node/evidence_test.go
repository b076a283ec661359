package node

import (
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/privval"
)

// newUnstartedValidator returns a one-validator node that is opened (store,
// mempool, evidence pool) but not started, and its validator key.
func newUnstartedValidator(t *testing.T) (*Node, crypto.PrivKey) {
	t.Helper()
	tn, err := WriteTestnet(t.TempDir(), TestnetOptions{ChainID: "node-test", Validators: 1, FundedAccounts: 1,
		Balance: 1_000_000, BasePort: freeBasePort(t, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(tn.Nodes[0].Home)
	if err != nil {
		t.Fatal(err)
	}
	key, err := privval.LoadKeyFile(cfg.ValidatorKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.closeStores)
	return n, key
}

// equivocation returns verified evidence of key signing two prevotes for
// different blocks at height and round.
func equivocation(t *testing.T, chainID string, vals *ledger.ValidatorSet, key crypto.PrivKey, height uint64, round uint32) *ledger.Evidence {
	t.Helper()
	a := &ledger.Vote{Type: ledger.Prevote, Height: height, Round: round, BlockID: crypto.Sum([]byte("a"))}
	b := &ledger.Vote{Type: ledger.Prevote, Height: height, Round: round, BlockID: crypto.Sum([]byte("b"))}
	a.Sign(chainID, key)
	b.Sign(chainID, key)
	ev := ledger.NewEvidence(a, b)
	if err := ev.Verify(chainID, vals); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestBuiltBlockCarriesOnlyEvidenceOfEarlierHeights: an equivocation is
// usually detected while its own height is still being decided (or, for
// votes of peers already ahead, one height early). A block may only carry
// evidence of earlier heights, so the proposer must keep such evidence back
// until the chain has passed its height; a block carrying it is refused by
// every node, the proposer included, and a proposer that keeps offering it
// stalls the height for good.
func TestBuiltBlockCarriesOnlyEvidenceOfEarlierHeights(t *testing.T) {
	n, key := newUnstartedValidator(t)
	d := newDriver(n)
	cur := equivocation(t, n.chainID, n.Validators(), key, 1, 0)                // the height being built
	next := equivocation(t, n.chainID, n.Validators(), key, 2, ledger.MaxRound) // a height ahead
	n.evpool.Add(cur)
	n.evpool.Add(next)

	b1, err := d.build.BuildBlock(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b1.Evidence) != 0 {
		t.Errorf("block 1 carries %d pieces of evidence of heights 1 and 2", len(b1.Evidence))
	}
	if err := n.store.Validate(b1); err != nil {
		t.Fatalf("block 1 the node built for itself is invalid: %v", err)
	}
	precommit := &ledger.Vote{Type: ledger.Precommit, Height: 1, Round: 0, BlockID: b1.Hash()}
	precommit.Sign(n.chainID, key)
	c1 := &ledger.Commit{Height: 1, Round: 0, BlockID: b1.Hash(), Sigs: []ledger.CommitSig{{ValidatorIndex: 0, Sig: precommit.Sig}}}
	if err := d.apply.apply(b1, c1); err != nil {
		t.Fatal(err)
	}

	b2, err := d.build.BuildBlock(2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b2.Evidence) != 1 || b2.Evidence[0].Key() != cur.Key() {
		t.Fatalf("block 2 carries %d pieces of evidence, want exactly the one of height 1", len(b2.Evidence))
	}
	if err := n.store.Validate(b2); err != nil {
		t.Fatalf("block 2 the node built for itself is invalid: %v", err)
	}
	if got := n.evpool.Size(); got != 2 {
		t.Fatalf("pool holds %d pieces of evidence before block 2 commits, want 2", got)
	}
}

// TestEquivocationAheadOfTheChainDoesNotHaltIt runs four validators on
// loopback libp2p with LevelDB stores and hands every node two conflicting
// prevotes signed with validator 3's key for the height after its stored
// one (at round 0: the height it is deciding) and for the height after that
// (at ledger.MaxRound, the far-future attack's round): what gossip delivers
// when an attacker holding the key is at or ahead of the node. The nodes
// detect the equivocations they can place (the current or the next height)
// and gossip the evidence; the chain must keep committing, punish each
// offence at most once and in a block above its height, and leave no
// evidence behind in any pool.
func TestEquivocationAheadOfTheChainDoesNotHaltIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	w := startTestnet(t, 4, nil)
	w.waitHeight(2, 60*time.Second)
	cfg, err := LoadConfig(w.tn.Nodes[3].Home)
	if err != nil {
		t.Fatal(err)
	}
	key, err := privval.LoadKeyFile(cfg.ValidatorKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	byz := key.PubKey().Address()
	var top uint64
	for _, nd := range w.nodes {
		s := nd.Store().Height()
		top = max(top, s+2)
		for _, ev := range []*ledger.Evidence{
			equivocation(t, "node-test", nd.Validators(), key, s+1, 0),
			equivocation(t, "node-test", nd.Validators(), key, s+2, ledger.MaxRound),
		} {
			(*handler)(nd).HandleVote("", &ev.VoteA)
			(*handler)(nd).HandleVote("", &ev.VoteB)
		}
	}
	w.waitHeight(top+3, 90*time.Second)

	// Every piece of evidence a node detected or received ends up in a
	// committed block, which empties the pools.
	deadline := time.Now().Add(60 * time.Second)
	for i, nd := range w.nodes {
		for nd.evpool.Size() > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("node %d still holds %d pieces of evidence at height %d", i, nd.evpool.Size(), nd.Store().Height())
			}
			w.waitHeight(nd.Store().Height()+1, 30*time.Second, i)
		}
	}
	w.checkSameChain()

	st := w.nodes[0].Store()
	punished := map[crypto.Hash]uint64{}
	for h := uint64(1); h <= st.Height(); h++ {
		b, err := st.Block(h)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range b.Evidence {
			switch prev, dup := punished[ev.Key()]; {
			case ev.VoteA.Validator != byz:
				t.Fatalf("block %d punishes %s, not the equivocating validator", h, ev.VoteA.Validator)
			case dup:
				t.Fatalf("offence of height %d punished twice, in blocks %d and %d", ev.VoteA.Height, prev, h)
			case ev.VoteA.Height >= h:
				t.Fatalf("offence of height %d punished in block %d", ev.VoteA.Height, h)
			}
			punished[ev.Key()] = h
		}
	}
	if len(punished) == 0 {
		t.Fatalf("no offence punished by height %d", st.Height())
	}
	t.Logf("%d offences punished by height %d", len(punished), st.Height())
}
