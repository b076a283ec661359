package ledger_test

import (
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// BenchmarkExecuteBlock executes a block of 1,000 signed transfers (each
// account sends to the next) on a MapState: signature batch, state reads,
// balance updates and the sorted result.
func BenchmarkExecuteBlock(b *testing.B) {
	const n = 1000
	c := ledgertest.NewChain(4, n, 1_000_000)
	ms := c.NewMapState()
	txs := make([]*ledger.Tx, n)
	for i := range txs {
		to := c.Accounts[(i+1)%n].PubKey().Address()
		txs[i] = ledgertest.Transfer(c.Accounts[i], to, 100, 1, 0)
	}
	blk := c.NextBlock(c.Genesis, txs, nil, 0)
	if _, err := ledger.Execute(c.Genesis, ms, blk); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ledger.Execute(c.Genesis, ms, blk); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/tx")
}

func benchTx() *ledger.Tx {
	c := ledgertest.NewChain(1, 2, 1000)
	return ledgertest.Transfer(c.Accounts[0], c.Accounts[1].PubKey().Address(), 100, 1, 0)
}

func BenchmarkTxEncode(b *testing.B) {
	tx := benchTx()
	b.ReportAllocs()
	for b.Loop() {
		_ = tx.Encode()
	}
}

func BenchmarkTxDecode(b *testing.B) {
	enc := benchTx().Encode()
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ledger.DecodeTx(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTxHash(b *testing.B) {
	tx := benchTx()
	b.ReportAllocs()
	for b.Loop() {
		_ = tx.Hash()
	}
}
