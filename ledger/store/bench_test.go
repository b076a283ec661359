package store

import (
	"flag"
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

var warmupFlag = flag.Int("warmup", 20, "blocks applied before BenchmarkApplyBlock starts timing")

// BenchmarkApplyBlock measures validating, executing and committing (one
// synced LevelDB batch) a block of 1,000 transfers from distinct senders on
// a store holding 100,000 funded accounts. Transfers are signed before the
// timer starts; signature verification of the block is measured. The first
// 20 blocks run before the timer, so the state tree's node cache is as warm
// as on a node that has been running (set -warmup=0 for a cold store).
func BenchmarkApplyBlock(b *testing.B) {
	const accounts, perBlock = 100_000, 1000
	c := ledgertest.NewChain(4, accounts, 1_000_000)
	db, err := kv.OpenLevel(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s, st := newStore(b, db, c)
	nonces := make([]uint64, accounts)
	rng := ledgertest.Seed(1)
	warm := *warmupFlag
	blocks := make([][]*ledger.Tx, warm+b.N)
	for i := range blocks {
		txs := make([]*ledger.Tx, perBlock)
		base := rng.IntN(accounts)
		for j := range txs {
			from := (base + j) % accounts
			to := c.Accounts[(from+1+rng.IntN(accounts-1))%accounts].PubKey().Address()
			txs[j] = ledgertest.Transfer(c.Accounts[from], to, 1, 1, nonces[from])
			nonces[from]++
		}
		blocks[i] = txs
	}
	var last *ledger.Commit
	apply := func(i int) {
		blk := c.NextBlock(st, blocks[i], last, i)
		cm := c.Commit(blk)
		if st, _, err = s.Apply(blk, cm); err != nil {
			b.Fatal(err)
		}
		last = cm
	}
	for i := 0; i < warm; i++ {
		apply(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := warm; i < warm+b.N; i++ {
		apply(i)
	}
	b.ReportMetric(float64(perBlock*b.N)/b.Elapsed().Seconds(), "tx/s")
}
