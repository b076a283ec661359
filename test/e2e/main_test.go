// Package e2e tests real networks of ledgerd processes on loopback: built
// from this checkout, started, killed and restarted, and checked through
// their JSON-RPC APIs.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/internal/harness/localnet"
	"github.com/ledgerd/ledgerd/internal/testkit/netports"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/node"
	"github.com/ledgerd/ledgerd/privval"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// ledgerdBinary builds cmd/ledgerd once per test run.
func ledgerdBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs ledgerd processes")
	}
	binOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "ledgerd-e2e-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath, binErr = localnet.BuildBinary(root, dir)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// network is a running process network with clients for each node.
type network struct {
	t        *testing.T
	net      *localnet.Net
	clients  []*client.Client
	accounts []crypto.PrivKey
	chainID  string
}

// startNetwork generates and starts n validators with funded accounts.
func startNetwork(t *testing.T, n, accounts int) *network {
	t.Helper()
	bin := ledgerdBinary(t)
	base, err := netports.Range(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	params := ledger.DefaultConsensusParams()
	params.TimeoutCommit = ledger.Duration(100 * time.Millisecond)
	dir := t.TempDir()
	ln, err := localnet.Generate(dir, bin, node.TestnetOptions{ChainID: "e2e", Validators: n,
		FundedAccounts: accounts, Balance: 1_000_000_000, BasePort: base, Params: &params})
	if err != nil {
		t.Fatal(err)
	}
	w := &network{t: t, net: ln, chainID: "e2e"}
	for i := 0; i < accounts; i++ {
		k, err := privval.LoadKeyFile(filepath.Join(dir, "accounts", fmt.Sprintf("account%d.json", i)))
		if err != nil {
			t.Fatal(err)
		}
		w.accounts = append(w.accounts, k)
	}
	for i := 0; i < n; i++ {
		c, err := client.New(ln.RPCURL(i))
		if err != nil {
			t.Fatal(err)
		}
		w.clients = append(w.clients, c)
		w.start(i)
	}
	t.Cleanup(func() {
		ln.StopAll()
		if t.Failed() {
			for i := 0; i < n; i++ {
				t.Logf("--- node%d log tail ---\n%s", i, ln.Logs(i, 3000))
			}
		}
	})
	return w
}

func (w *network) start(i int) {
	w.t.Helper()
	if err := w.net.Start(i, "--p2p.laddr", w.tcpOnly(i)); err != nil {
		w.t.Fatal(err)
	}
}

// tcpOnly keeps node i on its TCP listen address (QUIC adds nothing on loopback).
func (w *network) tcpOnly(i int) string {
	cfg, err := node.LoadConfig(w.net.Info.Nodes[i].Home)
	if err != nil {
		w.t.Fatal(err)
	}
	return cfg.P2P.ListenAddrs[0]
}

// height returns node i's latest committed height, or an error if it is down.
func (w *network) height(ctx context.Context, i int) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := w.clients[i].Status(ctx)
	if err != nil {
		return 0, err
	}
	return uint64(st.LatestHeight), nil
}

// waitHeight waits until node i has committed height h, following its new
// block headers over WebSocket (re-dialling while the node starts).
func (w *network) waitHeight(i int, h uint64, timeout time.Duration) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		if got, err := w.height(ctx, i); err == nil && got >= h {
			return
		}
		ws, err := w.clients[i].DialWS(ctx)
		if err == nil {
			sub, err := ws.SubscribeNewHeads(ctx)
			if err == nil {
				if got, err := w.height(ctx, i); err == nil && got >= h {
					ws.Close()
					return
				}
				for {
					head, err := sub.NextHead(ctx)
					if err != nil {
						break
					}
					if uint64(head.Height) >= h {
						ws.Close()
						return
					}
				}
			}
			ws.Close()
		}
		select {
		case <-ctx.Done():
			got, err := w.height(context.Background(), i)
			w.t.Fatalf("node%d at height %d (%v), want %d within %s", i, got, err, h, timeout)
		case <-time.After(200 * time.Millisecond): // the node is starting; dial again
		}
	}
}

// sameChain checks that the listed nodes hold the same blocks and app
// hashes up to their common height, and returns that height.
func (w *network) sameChain(nodes ...int) uint64 {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	top := ^uint64(0)
	for _, i := range nodes {
		h, err := w.height(ctx, i)
		if err != nil {
			w.t.Fatalf("node%d: %v", i, err)
		}
		top = min(top, h)
	}
	for h := uint64(1); h <= top; h++ {
		var ref *api.Block
		for _, i := range nodes {
			b, err := w.clients[i].Block(ctx, api.At(h))
			if err != nil {
				w.t.Fatalf("node%d block %d: %v", i, h, err)
			}
			if ref == nil {
				ref = b
				continue
			}
			if b.Hash != ref.Hash || b.Block.Header.AppHash != ref.Block.Header.AppHash {
				w.t.Fatalf("fork at height %d: node%d has %s (app %s), node%d has %s (app %s)",
					h, nodes[0], ref.Hash, ref.Block.Header.AppHash, i, b.Hash, b.Block.Header.AppHash)
			}
		}
	}
	return top
}
