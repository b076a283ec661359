package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// blockServer answers ledger_getBlockByHeight with the given transaction
// hashes per height, and a last commit decided in round 1.
func blockServer(t *testing.T, blocks map[uint64][]crypto.Hash) *client.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     uint64            `json:"id"`
			Params []json.RawMessage `json:"params"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Params) != 1 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var h string
		json.Unmarshal(req.Params[0], &h)
		var height uint64
		fmt.Sscan(h, &height)
		res := map[string]any{
			"tx_hashes": blocks[height],
			"block": map[string]any{
				"header":      map[string]any{"time": time.Unix(1_700_000_000, int64(height)).UTC().Format(time.RFC3339Nano)},
				"last_commit": map[string]any{"round": 1},
			},
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": res})
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestObserverMarksOwnTransfersAndCountsReplays(t *testing.T) {
	p := &plan{txs: make([]transfer, 3), perAcct: 1, byHash: map[crypto.Hash]int32{}}
	for i := range p.txs {
		p.txs[i].hash = crypto.Sum([]byte{byte(i)})
		p.byHash[p.txs[i].hash] = int32(i)
	}
	foreign := crypto.Sum([]byte("someone else's transfer"))
	c := blockServer(t, map[uint64][]crypto.Hash{
		5: {p.txs[0].hash, foreign, p.txs[1].hash},
		6: {p.txs[1].hash}, // a replay
	})
	slots := make(chan struct{}, 3)
	for i := 0; i < 2; i++ {
		slots <- struct{}{}
		p.txs[i].slot.Store(true)
	}
	o := &observer{c: c, plan: p, slots: slots, changed: make(chan struct{}, 1)}
	ctx := context.Background()
	o.fetch(ctx, arrival{height: 5, at: 2 * time.Second})
	o.fetch(ctx, arrival{height: 6, at: 3 * time.Second})

	if got := p.txs[0].committed.Load(); got != int64(2*time.Second) {
		t.Errorf("transfer 0 committed at %v, want 2s (the arrival of block 5)", time.Duration(got))
	}
	if got := p.txs[1].committed.Load(); got != int64(2*time.Second) {
		t.Errorf("transfer 1 committed at %v, want its first block's 2s", time.Duration(got))
	}
	if p.txs[2].committed.Load() != 0 {
		t.Error("a transfer in no block was marked committed")
	}
	if o.committed.Load() != 2 || o.twice.Load() != 1 {
		t.Errorf("committed %d, twice %d; want 2 and 1", o.committed.Load(), o.twice.Load())
	}
	if len(slots) != 0 {
		t.Errorf("%d in-flight slots still held after both transfers committed", len(slots))
	}
	blocks, err := o.seen()
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 || blocks[0].Txs != 3 || blocks[0].Ours != 2 || blocks[1].Ours != 0 || blocks[0].PrevRound != 1 {
		t.Errorf("blocks seen %+v", blocks)
	}
	if blocks[1].Time-blocks[0].Time != 1 {
		t.Errorf("header times %d and %d, want 1 ns apart", blocks[0].Time, blocks[1].Time)
	}
}
