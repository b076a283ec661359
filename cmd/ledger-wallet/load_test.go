package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/rpc/client"
	"github.com/ledgerd/ledgerd/wallet"
)

// BenchmarkRPCLoadDevNode is the RPC load test against a whole node (a
// dev chain: consensus, store, mempool, gossip all running): concurrent
// clients, each through the Go client with its own funded key, calling
// 45% ledger_getAccount, 45% ledger_status and 10% ledger_sendTransaction.
// Any error fails it. It reports latency percentiles and calls per second:
//
//	go test ./cmd/ledger-wallet -run '^$' -bench RPCLoadDevNode -benchtime 20000x
func BenchmarkRPCLoadDevNode(b *testing.B) {
	for _, clients := range []int{8, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchDevNode(b, clients) })
	}
}

func benchDevNode(b *testing.B, clients int) {
	dn := startDevNode(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := client.New(dn.url)
	if err != nil {
		b.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	dev := wallet.NewSender(c, dn.devKey, st.ChainID)
	keys := make([]crypto.PrivKey, clients)
	for i := range keys {
		keys[i], _ = crypto.GenerateKey(nil)
		tx, err := dev.Send(ctx, keys[i].PubKey().Address(), 1_000_000_000, 0)
		if err != nil {
			b.Fatal(err)
		}
		if i == len(keys)-1 {
			if _, err := wallet.Wait(ctx, c, tx, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	}

	var next atomic.Int64
	var failed atomic.Value
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := wallet.NewSender(c, keys[i], st.ChainID)
			addr := keys[i].PubKey().Address()
			to := keys[(i+1)%clients].PubKey().Address()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				t0 := time.Now()
				var err error
				switch n % 20 {
				case 0, 10:
					_, err = s.Send(ctx, to, 1, 0)
				case 1, 3, 5, 7, 9, 11, 13, 15, 17:
					_, err = c.Account(ctx, addr)
				default:
					_, err = c.Status(ctx)
				}
				lat[i] = append(lat[i], time.Since(t0))
				if err != nil {
					failed.Store(fmt.Errorf("call %d: %w", n, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.90), "p90-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
}
