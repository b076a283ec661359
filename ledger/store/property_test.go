package store

import (
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// TestRandomTransfersConserveSupplyAndReplay drives a store through random
// sequences of valid and invalid transfers. At every height it checks that
// supply is conserved and every balance matches a simple model; a block
// carrying an invalid transfer must be refused and change nothing; and at
// the end, replaying the same blocks into a fresh store must reproduce the
// same app hash at every height.
func TestRandomTransfersConserveSupplyAndReplay(t *testing.T) {
	seed := testSeed(t)
	rng := ledgertest.Seed(seed)
	const nAccts, heights = 8, 60
	c := ledgertest.NewChain(4, nAccts, 0)
	// Random genesis balances.
	var supply uint64
	for i := range c.Balances {
		c.Balances[i].Account.Balance = 1 + rng.Uint64N(5000)
		supply += c.Balances[i].Account.Balance
	}
	c.Genesis.TotalSupply = supply

	s, st := newStore(t, kv.NewMem(), c)
	model := map[crypto.Address]ledger.Account{}
	for _, u := range c.Balances {
		model[u.Address] = u.Account
	}
	var watch []crypto.Address // every address whose balance can change
	for _, k := range c.Accounts {
		watch = append(watch, k.PubKey().Address())
	}
	for i := 0; i < c.Genesis.Validators.Size(); i++ {
		watch = append(watch, c.Genesis.Validators.Get(i).Address())
	}
	check := func(h uint64, what string) {
		t.Helper()
		var sum uint64
		for _, a := range watch {
			acc, err := s.Account(h, a)
			if err != nil {
				t.Fatalf("seed %d height %d %s: read %s: %v", seed, h, what, a, err)
			}
			if acc != model[a] {
				t.Fatalf("seed %d height %d %s: account %s = %+v, model says %+v", seed, h, what, a, acc, model[a])
			}
			sum += acc.Balance
		}
		if sum != supply {
			t.Fatalf("seed %d height %d %s: balances sum to %d, genesis supply is %d", seed, h, what, sum, supply)
		}
	}
	check(0, "genesis")

	var blocks []*ledger.Block
	var commits []*ledger.Commit
	appHashes := []crypto.Hash{st.AppHash}
	var lastCommit *ledger.Commit
	refused := 0
	for h := uint64(1); h <= heights; h++ {
		work := make(map[crypto.Address]ledger.Account, len(model))
		for a, acc := range model {
			work[a] = acc
		}
		proposer := rng.IntN(c.Genesis.Validators.Size())
		propAddr := c.Genesis.Validators.Get(proposer).Address()
		var txs []*ledger.Tx
		var bad *ledger.Tx
		var badKind string
		badPos := 0
		for n := rng.IntN(12); n > 0; n-- {
			fi, ti := rng.IntN(nAccts), rng.IntN(nAccts-1)
			if ti >= fi {
				ti++
			}
			from, to := c.Accounts[fi], c.Accounts[ti].PubKey().Address()
			fa := work[from.PubKey().Address()]
			if fa.Balance < 2 {
				continue
			}
			amount := 1 + rng.Uint64N(fa.Balance/2)
			fee := rng.Uint64N(min(fa.Balance-amount, 10) + 1)
			if bad == nil && rng.IntN(5) == 0 {
				// Invalid against the state at this point of the block.
				bad, badKind = invalidTransfer(rng.IntN(7), from, to, fa, amount, fee)
				badPos = len(txs)
				continue
			}
			txs = append(txs, ledgertest.Transfer(from, to, amount, fee, fa.Nonce))
			fa.Balance -= amount + fee
			fa.Nonce++
			work[from.PubKey().Address()] = fa
			ta := work[to]
			ta.Balance += amount
			work[to] = ta
			pa := work[propAddr]
			pa.Balance += fee
			work[propAddr] = pa
		}
		if bad != nil {
			pos := badPos
			withBad := append(append(append([]*ledger.Tx{}, txs[:pos]...), bad), txs[pos:]...)
			b := c.NextBlock(st, withBad, lastCommit, proposer)
			if _, _, err := s.Apply(b, c.Commit(b)); err == nil {
				t.Fatalf("seed %d height %d: block with an invalid transfer (%s) was accepted", seed, h, badKind)
			}
			refused++
			if s.Height() != h-1 || s.State().AppHash != st.AppHash {
				t.Fatalf("seed %d height %d: refused block changed the state", seed, h)
			}
			check(h-1, "after refused block ("+badKind+")")
		}
		b := c.NextBlock(st, txs, lastCommit, proposer)
		cm := c.Commit(b)
		next, _, err := s.Apply(b, cm)
		if err != nil {
			t.Fatalf("seed %d height %d: valid block refused: %v", seed, h, err)
		}
		model, st, lastCommit = work, next, cm
		blocks, commits = append(blocks, b), append(commits, cm)
		appHashes = append(appHashes, st.AppHash)
		check(h, "after block")
	}
	if refused == 0 {
		t.Fatalf("seed %d: no invalid transfer was exercised", seed)
	}

	// Replay into a fresh store: the same app hash at every height.
	r, rst := newStore(t, kv.NewMem(), c)
	if rst.AppHash != appHashes[0] {
		t.Fatalf("seed %d: replayed genesis app hash differs", seed)
	}
	for i, b := range blocks {
		got, _, err := r.Apply(b, commits[i])
		if err != nil {
			t.Fatalf("seed %d: replay height %d: %v", seed, i+1, err)
		}
		if got.AppHash != appHashes[i+1] {
			t.Fatalf("seed %d: replay height %d: app hash %s, original %s", seed, i+1, got.AppHash, appHashes[i+1])
		}
	}
}

// invalidTransfer returns a transfer from `from` that must not execute,
// and what is wrong with it.
func invalidTransfer(kind int, from crypto.PrivKey, to crypto.Address, fa ledger.Account, amount, fee uint64) (*ledger.Tx, string) {
	switch kind {
	case 0:
		return ledgertest.Transfer(from, to, fa.Balance+1, 0, fa.Nonce), "overspend"
	case 1:
		return ledgertest.Transfer(from, to, amount, fa.Balance-amount+1, fa.Nonce), "fee overspend"
	case 2:
		return ledgertest.Transfer(from, to, amount, fee, fa.Nonce+1+uint64(kind)), "nonce gap"
	case 3:
		if fa.Nonce > 0 {
			return ledgertest.Transfer(from, to, amount, fee, fa.Nonce-1), "nonce too low"
		}
		return ledgertest.Transfer(from, to, 0, fee, fa.Nonce), "zero amount"
	case 4:
		tx := ledgertest.Transfer(from, to, amount, fee, fa.Nonce)
		tx.Sig[7] ^= 0x20
		return tx, "bad signature"
	case 5:
		tx := &ledger.Tx{ChainID: "other-chain", To: to, Amount: amount, Fee: fee, Nonce: fa.Nonce}
		tx.Sign(from)
		return tx, "wrong chain"
	default:
		tx := ledgertest.Transfer(from, to, amount, fee, fa.Nonce)
		tx.Amount++ // signed for a different amount
		return tx, "tampered amount"
	}
}
