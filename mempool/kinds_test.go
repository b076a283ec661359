package mempool

import (
	"math"
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// stakingTx is a valid staking transaction of kind k from account i,
// naming account 7 as the validator.
func (f *fixture) stakingTx(k ledger.TxKind, i int, nonce, amount, fee uint64) *ledger.Tx {
	switch k {
	case ledger.TxCreateValidator:
		return ledgertest.CreateValidator(f.key(i), ledgertest.Key("validator", 50+i).PubKey(), "v", amount, fee, nonce)
	case ledger.TxDelegate:
		return ledgertest.Delegate(f.key(i), f.addr(7), amount, fee, nonce)
	case ledger.TxUndelegate:
		return ledgertest.Undelegate(f.key(i), f.addr(7), amount, fee, nonce)
	case ledger.TxUnjail:
		return ledgertest.Unjail(f.key(i), fee, nonce)
	}
	panic("not a staking kind")
}

var stakingKinds = []ledger.TxKind{ledger.TxCreateValidator, ledger.TxDelegate, ledger.TxUndelegate, ledger.TxUnjail}

// A staking transaction that breaks a stateless rule is Invalid, as is an
// unknown kind; neither is pooled.
func TestStakingKindsCheckedLikeTransfers(t *testing.T) {
	f := newFixture(t, nil)
	if c, _ := CodeOf(f.mp.Add(f.stakingTx(ledger.TxDelegate, 0, 0, 0, 1))); c != Invalid {
		t.Errorf("a delegation of zero: %s, want invalid", c)
	}
	tx := f.tx(0, 0, 1, 1)
	tx.Kind = 9
	if c, _ := CodeOf(f.mp.Add(tx)); c != Invalid {
		t.Errorf("kind 9: %s, want invalid", c)
	}
	if n, _ := f.size(); n != 0 {
		t.Fatalf("%d transactions pooled", n)
	}
	f.checkInvariants()
}

// A sender's staking transactions and transfers
// form one nonce chain, reaped in nonce order, and the balance must cover
// each one's cost: amount + fee for a validator's creation and a
// delegation, the fee alone for an undelegation and an unjail.
func TestStakingKindsShareTheSendersNonceChainAndBalance(t *testing.T) {
	const balance = 1000
	setup := func(s *ledgertest.MapState) {
		s.Accounts[ledgertest.Key("account", 0).PubKey().Address()] = ledger.Account{Balance: balance}
	}
	f := newFixtureWith(t, testAccounts, nil, setup)
	// Arrival order is not nonce order.
	txs := []*ledger.Tx{
		f.stakingTx(ledger.TxUnjail, 0, 4, 0, 100),
		f.stakingTx(ledger.TxCreateValidator, 0, 0, 300, 10),
		f.tx(0, 2, 100, 10),
		f.stakingTx(ledger.TxUndelegate, 0, 3, math.MaxUint64, 10), // tokens, not balance
		f.stakingTx(ledger.TxDelegate, 0, 1, 200, 10),
	}
	for _, tx := range txs {
		if err := f.mp.Add(tx); err != nil {
			t.Fatalf("Add %s nonce %d: %v", tx.Kind, tx.Nonce, err)
		}
		f.checkInvariants()
	}
	// Spent so far: 310 + 210 + 110 + 10 + 100 = 740 of 1000.
	got := f.mp.Reap(math.MaxUint64, 100)
	if len(got) != len(txs) {
		t.Fatalf("reaped %d of %d", len(got), len(txs))
	}
	for i, tx := range got {
		if tx.Nonce != uint64(i) {
			t.Fatalf("reaped nonce %d at %d", tx.Nonce, i)
		}
	}
	// 260 left: a delegation of 251 + 10 does not fit, an undelegation of
	// any amount with a fee of 260 does.
	if c, _ := CodeOf(f.mp.Add(f.stakingTx(ledger.TxDelegate, 0, 5, 251, 10))); c != InsufficientFunds {
		t.Fatalf("delegation beyond the balance: %s, want insufficient_funds", c)
	}
	if err := f.mp.Add(f.stakingTx(ledger.TxUndelegate, 0, 5, 1_000_000, 260)); err != nil {
		t.Fatalf("undelegation paying the rest in fee: %v", err)
	}
	// Precheck counts the same cost against the committed balance.
	if c, _ := CodeOf(f.mp.Precheck(f.stakingTx(ledger.TxUnjail, 0, 0, 0, balance+1))); c != InsufficientFunds {
		t.Fatalf("Precheck of an unjail whose fee exceeds the balance: %s", c)
	}
	if err := f.mp.Precheck(f.stakingTx(ledger.TxUndelegate, 0, 0, math.MaxUint64, balance)); err != nil {
		t.Fatalf("Precheck of an undelegation paying the balance in fee: %v", err)
	}
	// A same-nonce replacement of another kind follows the fee-bump rule.
	if c, _ := CodeOf(f.mp.Add(f.tx(0, 4, 1, 105))); c != FeeTooLowToReplace {
		t.Fatalf("replacing the unjail without the bump: %s", c)
	}
	if err := f.mp.Add(f.tx(0, 4, 1, 110)); err != nil {
		t.Fatalf("replacing the unjail by a transfer: %v", err)
	}
	f.checkInvariants()
}

// A committed transfer's nonce drops the pooled staking transaction that
// held the same nonce, as it does a transfer.
func TestCommitDropsAStakingTxWhoseNonceWasUsed(t *testing.T) {
	f := newFixture(t, nil)
	staking := f.stakingTx(ledger.TxDelegate, 0, 0, 10, 1)
	f.mustAdd(staking)
	f.newEvents()
	f.commit([]*ledger.Tx{f.tx(0, 0, 5, 1)}) // sent through another node
	if f.mp.Has(staking.Hash()) {
		t.Fatal("the delegation with a used nonce is still pooled")
	}
	var reason Code
	for _, ev := range f.newEvents() {
		if ev.Hash == staking.Hash() {
			reason = ev.Reason
		}
	}
	if reason != NonceTooLow {
		t.Fatalf("removal reason %s, want nonce_too_low", reason)
	}
	f.checkInvariants()
}
