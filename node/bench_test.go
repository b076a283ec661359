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

// BenchmarkNetworkThroughput runs four validators in this process (real
// libp2p on loopback, real LevelDB, the WAL and the signer) and measures
// committed transfers per second: b.N pre-signed transfers from 1,000
// accounts are submitted round-robin to the four nodes as fast as the
// mempools take them, and the clock stops when the last one is committed
// on node 0.
func BenchmarkNetworkThroughput(b *testing.B) {
	const accounts = 1000
	dir := b.TempDir()
	params := ledger.DefaultConsensusParams()
	params.TimeoutCommit = ledger.Duration(20 * time.Millisecond)
	tn, err := WriteTestnet(dir, TestnetOptions{ChainID: "bench", Validators: 4, FundedAccounts: accounts,
		Balance: 1 << 40, BasePort: freePorts(b, 4), Params: &params})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]crypto.PrivKey, accounts)
	for i := range keys {
		if keys[i], err = privval.LoadKeyFile(filepath.Join(dir, "accounts", fmt.Sprintf("account%d.json", i))); err != nil {
			b.Fatal(err)
		}
	}
	txs := make([]*ledger.Tx, b.N)
	to := ledgerAddr("sink")
	for i := range txs {
		tx := &ledger.Tx{ChainID: "bench", To: to, Amount: 1, Fee: 1, Nonce: uint64(i / accounts)}
		tx.Sign(keys[i%accounts])
		txs[i] = tx
	}
	var nodes []*Node
	for i := range tn.Nodes {
		cfg, err := LoadConfig(tn.Nodes[i].Home)
		if err != nil {
			b.Fatal(err)
		}
		cfg.P2P.ListenAddrs = cfg.P2P.ListenAddrs[:1]
		nd, err := New(cfg, Options{Logger: testLogger(i)})
		if err != nil {
			b.Fatal(err)
		}
		if err := nd.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, nd)
	}
	defer func() {
		for _, nd := range nodes {
			nd.Stop()
		}
	}()
	blocks := nodes[0].Subscribe(1 << 16)
	defer blocks.Close()
	for nodes[0].Store().Height() < 2 {
		<-blocks.C() // the network has formed once it commits
	}
	b.ResetTimer()
	start := time.Now()
	for i, tx := range txs {
		for {
			err := nodes[i%4].SubmitTx(context.Background(), tx)
			if err == nil {
				break
			}
			time.Sleep(time.Millisecond) // the mempool is full: back off like a client would
		}
	}
	last := txs[len(txs)-1].Hash()
	for {
		if _, _, err := nodes[0].Store().Tx(last); err == nil {
			break
		}
		if _, ok := <-blocks.C(); !ok {
			b.Fatal("block subscription dropped")
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx/s")
}
