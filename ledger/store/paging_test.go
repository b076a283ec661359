package store

import (
	"errors"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// TestAccountTxsPagesExactlyAtEveryLimit commits blocks in which one
// account has 1, 999, 1000, 1001 and more transactions among others'
// (on LevelDB), then pages through its history with every limit from 1
// to MaxAccountTxs, resuming each page at Location.Next of the last
// entry, and checks the concatenation against the brute-force history
// from the blocks: nothing repeated, nothing skipped, never a page longer
// than the limit, and more reported exactly when entries remain.
func TestAccountTxsPagesExactlyAtEveryLimit(t *testing.T) {
	c := ledgertest.NewChain(1, 3, 1_000_000_000)
	db, err := kv.OpenLevel(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, st := newStore(t, db, c)
	target := c.Accounts[1].PubKey().Address()
	nonce := make([]uint64, 3)
	send := func(from int, to crypto.Address) *ledger.Tx {
		tx := ledgertest.Transfer(c.Accounts[from], to, 1, 0, nonce[from])
		nonce[from]++
		return tx
	}
	var want []AccountTx
	var last *ledger.Commit
	// Per block: how many of the target's transactions, and how many of others' between them.
	for _, n := range []int{1, 999, 3, 1000, 1001, 2, 1, 500} {
		var txs []*ledger.Tx
		for i := 0; i < n; i++ {
			if i%2 == 0 {
				txs = append(txs, send(0, target))
			} else {
				txs = append(txs, send(1, c.Accounts[2].PubKey().Address()))
			}
			if i%5 == 0 {
				txs = append(txs, send(2, c.Accounts[0].PubKey().Address())) // not the target's
			}
		}
		b := c.NextBlock(st, txs, last, 0)
		last = c.Commit(b)
		if st, _, err = s.Apply(b, last); err != nil {
			t.Fatalf("apply block %d: %v", b.Height(), err)
		}
		for i, tx := range b.Txs {
			if tx.Sender() == target || tx.To == target {
				want = append(want, AccountTx{Hash: tx.Hash(), Location: TxLocation{Height: b.Height(), Index: uint32(i)}})
			}
		}
	}
	for limit := 1; limit <= MaxAccountTxs; limit++ {
		var got []AccountTx
		from := TxLocation{}
		for pages := 0; ; pages++ {
			if pages > len(want)/limit+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page, more, err := s.AccountTxs(target, from, limit)
			if err != nil {
				t.Fatalf("limit %d from %+v: %v", limit, from, err)
			}
			if len(page) > limit || (more && len(page) != limit) {
				t.Fatalf("limit %d: page of %d, more=%v", limit, len(page), more)
			}
			got = append(got, page...)
			if more != (len(got) < len(want)) {
				t.Fatalf("limit %d: more=%v after %d of %d entries", limit, more, len(got), len(want))
			}
			if !more {
				break
			}
			from = page[len(page)-1].Location.Next()
		}
		if len(got) != len(want) {
			t.Fatalf("limit %d: %d entries, want %d", limit, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("limit %d: entry %d = %+v, want %+v", limit, i, got[i], want[i])
			}
		}
	}
	for _, limit := range []int{0, -1, MaxAccountTxs + 1} {
		if _, _, err := s.AccountTxs(target, TxLocation{}, limit); !errors.Is(err, ErrPageLimit) {
			t.Fatalf("limit %d: err %v, want ErrPageLimit", limit, err)
		}
	}
	// Resuming inside a block starts exactly there.
	mid := want[len(want)/2]
	page, _, err := s.AccountTxs(target, mid.Location, 1)
	if err != nil || len(page) != 1 || page[0] != mid {
		t.Fatalf("from %+v: %+v, %v", mid.Location, page, err)
	}
}
