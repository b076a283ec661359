package node

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/privval"
)

// TestAValidatorJoinsAndLeaves runs three validators and a full node. The
// full node's key becomes a validator through a create-validator
// transaction; with one of the first three stopped, the chain then
// commits only because the newcomer signs. Its operator unbonds, the
// newcomer leaves the set, the stopped validator returns, and the chain
// goes on without the newcomer.
func TestAValidatorJoinsAndLeaves(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	dir := t.TempDir()
	params := ledger.DefaultConsensusParams()
	params.TimeoutCommit = ledger.Duration(50 * time.Millisecond)
	tn, err := WriteTestnet(dir, TestnetOptions{ChainID: "node-test", Validators: 3, FullNodes: 1, FundedAccounts: 2,
		Balance: 1_000_000, BasePort: freeBasePort(t, 4), Params: &params})
	if err != nil {
		t.Fatal(err)
	}
	w := &testNet{t: t, tn: tn}
	t.Cleanup(func() {
		for _, nd := range w.nodes {
			if nd != nil {
				nd.Stop()
			}
		}
	})
	for i := range tn.Accounts {
		k, err := privval.LoadKeyFile(filepath.Join(dir, "accounts", fmt.Sprintf("account%d.json", i)))
		if err != nil {
			t.Fatal(err)
		}
		w.accounts = append(w.accounts, k)
	}
	for i := range tn.Nodes {
		w.start(i, nil)
	}
	w.waitHeight(2, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	n0, joiner := w.nodes[0], w.nodes[3]
	cfg, err := LoadConfig(tn.Nodes[3].Home)
	if err != nil {
		t.Fatal(err)
	}
	consKey, err := privval.LoadKeyFile(cfg.ValidatorKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	cons := consKey.PubKey().Address()
	if _, in := n0.Validators().ByAddress(cons); in || joiner.Status().IsValidator {
		t.Fatal("the full node is a validator at genesis")
	}
	operator := w.accounts[0]
	unit := n0.Store().State().Staking.PowerUnit
	send := func(tx *ledger.Tx) {
		t.Helper()
		tx.ChainID, tx.Fee = "node-test", 1
		acc, err := n0.Store().Reader().Account(operator.PubKey().Address())
		if err != nil {
			t.Fatal(err)
		}
		tx.Nonce = acc.Nonce
		tx.Sign(operator)
		if err := n0.SubmitTx(ctx, tx); err != nil {
			t.Fatalf("submit %s: %v", tx.Kind, err)
		}
	}
	// waitSet waits until the set of the next height does (or does not)
	// hold cons, on every node, and returns that height.
	waitSet := func(in bool) uint64 {
		t.Helper()
		for {
			h := n0.Store().Height()
			ok := true
			for _, nd := range w.nodes {
				if nd == nil {
					continue
				}
				_, has := nd.Store().State().Validators.ByAddress(cons)
				ok = ok && has == in
			}
			if ok {
				return h + 1
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the newcomer's membership never became %v (height %d)", in, h)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	send(&ledger.Tx{Kind: ledger.TxCreateValidator, ConsKey: consKey.PubKey(), Moniker: "joiner", Amount: 10 * unit})
	joined := waitSet(true)
	t.Logf("the newcomer validates from height %d", joined)
	if !joiner.Status().IsValidator {
		t.Error("the joiner's status does not say it validates")
	}
	vals, err := n0.Store().ValidatorsAt(joined)
	if err != nil {
		t.Fatal(err)
	}
	if i, _ := vals.ByAddress(cons); vals.Get(i).Operator != operator.PubKey().Address() || vals.Get(i).Name != "joiner" {
		t.Fatalf("the newcomer in the set: %+v", vals.Get(i))
	}
	// Three of four equal powers are a quorum only with the newcomer.
	w.nodes[2].Stop()
	w.nodes[2] = nil
	from := n0.Store().Height()
	w.waitHeight(from+3, 90*time.Second, 0, 1, 3)
	if !signedBy(t, n0, from+1, from+3, cons) {
		t.Fatal("the chain committed without the newcomer's signatures")
	}

	// The operator takes its self-bond back: the newcomer leaves. The
	// stopped validator returns first, or nothing could be decided.
	w.start(2, nil)
	send(&ledger.Tx{Kind: ledger.TxUndelegate, To: operator.PubKey().Address(), Amount: 10 * unit})
	left := waitSet(false)
	t.Logf("the newcomer left at height %d", left)
	w.waitHeight(left+3, 90*time.Second)
	if signedBy(t, n0, left+1, left+3, cons) {
		t.Fatal("a commit carries the signature of a validator that left")
	}
	w.checkSameChain()
}

// signedBy reports whether a commit of a height in [from, to] carries the
// signature of the validator with consensus address cons.
func signedBy(t *testing.T, n *Node, from, to uint64, cons crypto.Address) bool {
	t.Helper()
	for h := from; h <= to; h++ {
		c, err := n.Store().Commit(h)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := n.Store().ValidatorsAt(h)
		if err != nil {
			t.Fatal(err)
		}
		i, ok := vals.ByAddress(cons)
		if !ok {
			continue
		}
		for _, s := range c.Sigs {
			if s.ValidatorIndex == uint32(i) {
				return true
			}
		}
	}
	return false
}
