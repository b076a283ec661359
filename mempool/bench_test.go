package mempool

import (
	"maps"
	"math"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// benchPool is a pool over nSenders funded accounts, with caps large
// enough that the benchmark never hits them.
type benchPool struct {
	mp    *Mempool
	keys  []crypto.PrivKey
	state *ledgertest.MapState
	next  []uint64 // next nonce to generate, per sender
}

func newBenchPool(b *testing.B, nSenders, maxTxs int) *benchPool {
	b.Helper()
	chain := ledgertest.NewChain(1, nSenders, math.MaxUint64/uint64(nSenders+1))
	cfg := DefaultConfig(ledgertest.ChainID)
	cfg.MaxTxs = maxTxs
	cfg.MaxBytes = maxTxs * ledger.MaxTxBytes
	mp, err := New(cfg, chain.NewMapState(), 0)
	if err != nil {
		b.Fatal(err)
	}
	return &benchPool{mp: mp, keys: chain.Accounts, state: mp.state.(*ledgertest.MapState), next: make([]uint64, nSenders)}
}

// txs returns n transfers cycling over the senders with rising nonces;
// signed ones when sign is set.
func (p *benchPool) txs(n int, sign bool, rng func() uint64) []*ledger.Tx {
	sink := crypto.AddressFromPubKey(crypto.PubKey{1})
	out := make([]*ledger.Tx, n)
	for i := range out {
		s := i % len(p.keys)
		tx := &ledger.Tx{ChainID: ledgertest.ChainID, From: p.keys[s].PubKey(), To: sink, Amount: 1, Fee: rng() % 1000, Nonce: p.next[s]}
		if sign {
			tx.Sign(p.keys[s])
		}
		p.next[s]++
		out[i] = tx
	}
	return out
}

// insert admits txs without checking signatures, to set up a pool fast.
func (p *benchPool) insert(b *testing.B, txs []*ledger.Tx) {
	m := p.mp
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, tx := range txs {
		c, rerr := m.prepare(tx)
		if rerr != nil {
			b.Fatal(rerr)
		}
		acct := p.state.Accounts[c.from]
		if s := m.senders[c.from]; s != nil {
			acct = s.acct
		}
		if rerr := m.admitLocked(c, acct); rerr != nil {
			b.Fatal(rerr)
		}
	}
}

// BenchmarkAdd measures one Add from the RPC: stateless checks, one
// signature verification, admission.
func BenchmarkAdd(b *testing.B) {
	p := newBenchPool(b, 1000, b.N+1)
	rng := ledgertest.Seed(1)
	txs := p.txs(b.N, true, rng.Uint64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.mp.Add(txs[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddBatch measures a gossip batch of 1,000 transactions from
// 100 senders, 10 nonces each interleaved, into an empty pool with one batch
// signature verification.
func BenchmarkAddBatch(b *testing.B) {
	const batch = 1000
	p := newBenchPool(b, 100, batch)
	rng := ledgertest.Seed(2)
	txs := p.txs(batch, true, rng.Uint64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		mp, err := New(p.mp.cfg, p.state, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for j, err := range mp.AddBatch(txs) {
			if err != nil {
				b.Fatalf("tx %d: %v", j, err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/tx")
}

// BenchmarkReap measures a proposer taking a 5,000-transaction block from
// 10,000 pending (1,000 senders with 10 nonces each, random fees).
func BenchmarkReap(b *testing.B) {
	p := newBenchPool(b, 1000, 20_000)
	rng := ledgertest.Seed(3)
	p.insert(b, p.txs(10_000, false, rng.Uint64))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got := p.mp.Reap(math.MaxUint64, 5000); len(got) != 5000 {
			b.Fatalf("reaped %d", len(got))
		}
	}
}

// BenchmarkUpdate measures the commit of a 5,000-transaction block taken
// from 10,000 pending: removing the block, re-reading its 1,000 senders'
// accounts and re-checking their remaining transactions. The pool is
// refilled to 10,000 between iterations, untimed.
func BenchmarkUpdate(b *testing.B) {
	p := newBenchPool(b, 1000, 20_000)
	rng := ledgertest.Seed(4)
	p.insert(b, p.txs(10_000, false, rng.Uint64))
	sink := crypto.AddressFromPubKey(crypto.PubKey{1})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		block := p.mp.Reap(math.MaxUint64, 5000)
		next := &ledgertest.MapState{Accounts: maps.Clone(p.state.Accounts), Evidence: p.state.Evidence}
		for _, tx := range block {
			a := next.Accounts[tx.Sender()]
			a.Nonce++
			a.Balance -= tx.Amount + tx.Fee
			next.Accounts[tx.Sender()] = a
			s := next.Accounts[sink]
			s.Balance += tx.Amount
			next.Accounts[sink] = s
		}
		p.state = next
		b.StartTimer()
		if err := p.mp.Update(uint64(i+1), block, next); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if n, _ := p.mp.Size(); n != 10_000-len(block) {
			b.Fatalf("%d pooled after the update, want %d", n, 10_000-len(block))
		}
		p.insert(b, p.txs(len(block), false, rng.Uint64))
		b.StartTimer()
	}
}
