package node

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestPeersRPCShowsPenalty: ledger_peers must show, next to a peer's gossip
// score, the application penalty the node charged it (p2p.Node.Penalize),
// so an operator (and the adversarial harness) can see who is being
// punished before the ban.
func TestPeersRPCShowsPenalty(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two nodes")
	}
	w := startTestnet(t, 2, nil)
	w.waitHeight(1, 60*time.Second)
	n0, n1 := w.nodes[0], w.nodes[1]
	n0.net.Penalize(n1.net.ID(), 40, "test: refused message")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+n0.RPCAddr(),
		bytes.NewReader([]byte(`{"jsonrpc":"2.0","id":1,"method":"ledger_peers"}`)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Result struct {
			Peers []map[string]any `json:"peers"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	for _, p := range out.Result.Peers {
		if p["id"] != n1.net.ID().String() {
			continue
		}
		pen, ok := p["penalty"].(float64)
		if !ok {
			t.Fatalf("ledger_peers entry of the penalised peer has no numeric \"penalty\" field: %v", p)
		}
		// The penalty decays with a one-minute half-life.
		if pen < 20 || pen > 40 {
			t.Fatalf("ledger_peers penalty %v, want about 40", pen)
		}
		return
	}
	t.Fatalf("penalised peer %s not in ledger_peers: %v", n1.net.ID(), out.Result.Peers)
}
