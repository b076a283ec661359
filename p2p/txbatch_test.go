package p2p

import (
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// TestTxBatchVerdicts checks the transaction-batch message: a batch is
// accepted only if every transaction in it is, and its size is bounded.
func TestTxBatchVerdicts(t *testing.T) {
	c := ledgertest.NewChain(1, 3, 100)
	to := c.Accounts[2].PubKey().Address()
	good := func(n int) []*ledger.Tx {
		out := make([]*ledger.Tx, n)
		for i := range out {
			out[i] = ledgertest.Transfer(c.Accounts[i%2], to, uint64(1+i), 1, uint64(i/2))
		}
		return out
	}
	oneBad := good(40)
	forged := *oneBad[17]
	forged.Sig[5] ^= 1
	oneBad[17] = &forged
	wrongChain := good(3)
	wc := &ledger.Tx{ChainID: "elsewhere", To: to, Amount: 1, Nonce: 9}
	wc.Sign(c.Accounts[0])
	wrongChain[1] = wc

	chk := newChecker(ledgertest.ChainID, staticSets{c.Genesis.Validators}, func() (uint64, uint32) { return 1, 0 })
	cases := []struct {
		name  string
		data  []byte
		local bool
		want  verdict
	}{
		{"one", encodeTxs(good(1)), false, accept},
		{"full batch", encodeTxs(good(MaxTxsPerMessage)), false, accept},
		{"one bad signature among forty", encodeTxs(oneBad), false, reject},
		{"a wrong-chain tx in the batch", encodeTxs(wrongChain), false, reject},
		{"empty batch", encodeTxs(nil), false, reject},
		{"too many", encodeTxs(good(MaxTxsPerMessage + 1)), false, reject},
		{"trailing byte", append(encodeTxs(good(2)), 0), false, reject},
		{"truncated", encodeTxs(good(2))[:100], false, reject},
		// Own batches come from the mempool, which verified the signatures.
		{"own batch is not re-verified", encodeTxs(oneBad), true, accept},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, m, err := chk.check(kinds(kindTx), tc.data, tc.local)
			if v != tc.want {
				t.Fatalf("verdict %s (%v), want %s", v, err, tc.want)
			}
			if v == accept {
				if got := encodeTxs(m.txs); string(got) != string(tc.data) {
					t.Fatal("accepted batch does not re-encode to its input")
				}
			}
		})
	}
}
