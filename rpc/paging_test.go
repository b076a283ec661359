package rpc

import (
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/internal/testkit/testseed"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// historyEntry is one expected row of an account's history.
type historyEntry struct {
	height uint64
	index  uint32
	hash   crypto.Hash
}

// buildHistory commits blocks in which account 1 receives (from account
// 0) and sends (to account 2) many transfers, interleaved with transfers
// it is not part of, with block sizes around the maximum page (1000) so
// pages end inside, at and just after block boundaries. It returns the
// account's history, computed by brute force from the blocks.
func buildHistory(t *testing.T, b *testBackend, sizes []int) []historyEntry {
	t.Helper()
	target, other := b.addr(1), b.addr(2)
	nonce := map[int]uint64{}
	var want []historyEntry
	for _, n := range sizes {
		var txs []*ledger.Tx
		for i := 0; i < n; i++ {
			switch i % 3 {
			case 0, 1: // received from 0, sent to 2
				txs = append(txs, b.transfer(0, target, 1, 0, nonce[0]))
				nonce[0]++
			}
			if i%3 == 1 {
				txs = append(txs, b.transfer(1, other, 1, 0, nonce[1]))
				nonce[1]++
			}
			if i%3 == 2 { // not the target's
				txs = append(txs, b.transfer(2, b.addr(0), 1, 0, nonce[2]))
				nonce[2]++
			}
		}
		blk := b.commit(t, txs...)
		for i, tx := range blk.Txs {
			if tx.Sender() == target || tx.To == target {
				want = append(want, historyEntry{blk.Height(), uint32(i), tx.Hash()})
			}
		}
	}
	return want
}

// pageThrough follows ledger_getAccountTransactions' cursor from the
// start with one limit and returns every entry, failing on a repeat, a
// non-advancing cursor or more pages than the history can need.
func pageThrough(t *testing.T, ts *testServer, addr crypto.Address, limit, total int) []historyEntry {
	t.Helper()
	var got []historyEntry
	var fromH uint64
	var fromI uint32
	for pages := 0; ; pages++ {
		if pages > total/limit+2 {
			t.Fatalf("limit %d: %d pages for %d transactions: paging does not end", limit, pages, total)
		}
		params := map[string]any{"address": addr, "from_height": fromH, "limit": limit}
		if fromI != 0 {
			params["from_index"] = fromI
		}
		var page api.AccountTxs
		ts.call(t, api.MethodGetAccountTransactions, &page, params)
		if len(page.Txs) > limit {
			t.Fatalf("limit %d: a page of %d transactions", limit, len(page.Txs))
		}
		for _, tx := range page.Txs {
			got = append(got, historyEntry{uint64(tx.Height), tx.Index, tx.Hash})
		}
		if page.NextFromHeight == nil {
			return got
		}
		if len(page.Txs) == 0 {
			t.Fatalf("limit %d: an empty page with a next cursor", limit)
		}
		fromH, fromI = uint64(*page.NextFromHeight), 0
		if page.NextFromIndex != nil {
			fromI = *page.NextFromIndex
		}
	}
}

// TestAccountTransactionsPagingIsExactAtEveryLimit pages through an
// account's history of some 3,600 transactions, in blocks holding up to
// 1,000 and more of them, and checks that the pages concatenate to the
// brute-force history exactly — none repeated, none skipped, no page
// stopping early — at the maximum limit, around block sizes and at
// seeded random limits. (The store test covers every limit 1..1000.)
func TestAccountTransactionsPagingIsExactAtEveryLimit(t *testing.T) {
	rng, seed := testseed.Rand(t)
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{})
	// Blocks of 1000, 999 and 1001 rounds hold 1000, 999 and 1002 of
	// the target's transactions.
	want := buildHistory(t, b, []int{2, 1000, 3, 999, 1, 1001, 600, 4})
	// Small limits inside blocks are TestAccountTransactionsPagesInsideBlocks';
	// here every page decodes a block of 1,300 transactions.
	limits := []int{999, 1000}
	for i := 0; i < 3; i++ {
		limits = append(limits, 50+rng.IntN(951))
	}
	for _, limit := range limits {
		got := pageThrough(t, ts, b.addr(1), limit, len(want))
		if len(got) != len(want) {
			t.Fatalf("seed %d limit %d: pages gave %d transactions, the history has %d", seed, limit, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("seed %d limit %d: entry %d is %+v, want %+v", seed, limit, i, got[i], want[i])
			}
		}
	}
	r := ts.callRaw(t, api.MethodGetAccountTransactions, b.addr(1), 0, 1001)
	if r.errCode() != api.CodeInvalidParams {
		t.Fatalf("limit 1001: answer %+v, want invalid_params", r)
	}
}

// TestClientAccountHistoryFollowsTheCursor checks the Go client's (and so
// ledger-wallet history's) paging: asking for more than one page's worth
// returns them all in order, and resuming at the returned position picks
// up exactly where it stopped, inside a block.
func TestClientAccountHistoryFollowsTheCursor(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{})
	want := buildHistory(t, b, []int{2, 1000, 3, 999, 1, 1001, 600, 4})
	c, err := client.New(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	var got []historyEntry
	var fromH uint64
	var fromI uint32
	for _, n := range []int{2500, 1, 1000, 5000} {
		h, err := c.AccountHistory(ctx, b.addr(1), fromH, fromI, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range h.Txs {
			got = append(got, historyEntry{uint64(tx.Height), tx.Index, tx.Hash})
		}
		if h.NextFromHeight == nil {
			break
		}
		fromH, fromI = uint64(*h.NextFromHeight), *h.NextFromIndex
	}
	if len(got) != len(want) {
		t.Fatalf("history gave %d transactions, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entry %d is %+v, want %+v", i, got[i], want[i])
		}
	}
}
