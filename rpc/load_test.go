package rpc

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/rpc/api"
)

// BenchmarkRPCLoad runs many concurrent HTTP clients against a server
// whose store and mempool are real (in memory), each calling a mix of 45%
// ledger_getAccount, 45% ledger_status and 10% ledger_sendTransaction
// from its own account, while blocks commit every 20ms. Any error fails
// the benchmark. It reports latency percentiles and calls per second:
//
//	go test ./rpc -run '^$' -bench RPCLoad -benchtime 20000x
func BenchmarkRPCLoad(b *testing.B) {
	for _, clients := range []int{8, 64, 256} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchLoad(b, clients) })
	}
}

func benchLoad(b *testing.B, clients int) {
	be := newTestBackendWithAccounts(b, 1, clients)
	ts := startServer(b, be, Config{MaxConnections: clients + 16})
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}

	// Commit what the pool holds, like a proposer, until the run ends.
	ctx, stop := context.WithCancel(context.Background())
	var committer sync.WaitGroup
	committer.Add(1)
	go func() {
		defer committer.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				be.commit(b, be.pool.Reap(4<<20, 20_000)...)
			}
		}
	}()

	var next atomic.Int64
	var failed atomic.Value
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := be.addr(c)
			nonce := uint64(0)
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				var body []byte
				switch i % 20 {
				case 0, 10:
					tx := be.transfer(c, be.addr((c+1)%clients), 1, 0, nonce)
					nonce++
					body, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": i, "method": api.MethodSendTransaction,
						"params": []any{hex.EncodeToString(tx.Encode())}})
				case 1, 3, 5, 7, 9, 11, 13, 15, 17:
					body, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": i, "method": api.MethodGetAccount, "params": []any{addr}})
				default:
					body, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": i, "method": api.MethodStatus})
				}
				t0 := time.Now()
				resp, err := hc.Post(ts.url, "application/json", bytes.NewReader(body))
				if err != nil {
					failed.Store(err)
					return
				}
				raw, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat[c] = append(lat[c], time.Since(t0))
				var r rawResponse
				if err != nil || json.Unmarshal(raw, &r) != nil || r.Error != nil {
					failed.Store(fmt.Errorf("call %d: %v %s", i, err, raw))
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	committer.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.90), "p90-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
}
