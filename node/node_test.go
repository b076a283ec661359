package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/internal/testkit/netports"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/privval"
)

func freeBasePort(t *testing.T, n int) int { return freePorts(t, n) }

// freePorts returns a base port for n nodes (two ports each).
func freePorts(t testing.TB, n int) int {
	t.Helper()
	base, err := netports.Range(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

type testNet struct {
	t        *testing.T
	tn       *Testnet
	nodes    []*Node
	accounts []crypto.PrivKey
	prestart func(i int, nd *Node) // see startTestnetHooked
}

// startTestnet writes and starts an n-validator network in this process.
func startTestnet(t *testing.T, n int, mutate func(*Config)) *testNet {
	t.Helper()
	return startTestnetHooked(t, n, mutate, nil)
}

// startTestnetHooked is startTestnet with prestart, if not nil, called on
// each node between New and Start (to set test hooks).
func startTestnetHooked(t *testing.T, n int, mutate func(*Config), prestart func(i int, nd *Node)) *testNet {
	t.Helper()
	dir := t.TempDir()
	params := ledger.DefaultConsensusParams()
	params.TimeoutCommit = ledger.Duration(50 * time.Millisecond)
	tn, err := WriteTestnet(dir, TestnetOptions{ChainID: "node-test", Validators: n, FundedAccounts: 4,
		Balance: 1_000_000, BasePort: freeBasePort(t, n), Params: &params})
	if err != nil {
		t.Fatal(err)
	}
	w := &testNet{t: t, tn: tn, prestart: prestart}
	for i := range tn.Accounts {
		k, err := privval.LoadKeyFile(filepath.Join(dir, "accounts", fmt.Sprintf("account%d.json", i)))
		if err != nil {
			t.Fatal(err)
		}
		w.accounts = append(w.accounts, k)
	}
	for i := range tn.Nodes {
		w.start(i, mutate)
	}
	t.Cleanup(func() {
		for _, nd := range w.nodes {
			if nd != nil {
				nd.Stop()
			}
		}
	})
	return w
}

func (w *testNet) start(i int, mutate func(*Config)) {
	w.t.Helper()
	cfg, err := LoadConfig(w.tn.Nodes[i].Home)
	if err != nil {
		w.t.Fatal(err)
	}
	cfg.P2P.ListenAddrs = cfg.P2P.ListenAddrs[:1] // TCP only: faster to start in tests
	if mutate != nil {
		mutate(cfg)
	}
	nd, err := New(cfg, Options{Logger: testLogger(i)})
	if err != nil {
		w.t.Fatal(err)
	}
	if w.prestart != nil {
		w.prestart(i, nd)
	}
	if err := nd.Start(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	for len(w.nodes) <= i {
		w.nodes = append(w.nodes, nil)
	}
	w.nodes[i] = nd
}

// waitHeight waits until every listed node has committed height h.
func (w *testNet) waitHeight(h uint64, timeout time.Duration, which ...int) {
	w.t.Helper()
	if len(which) == 0 {
		for i := range w.nodes {
			which = append(which, i)
		}
	}
	deadline := time.After(timeout)
	for _, i := range which {
		sub := w.nodes[i].Subscribe(64)
		for w.nodes[i].Store().Height() < h {
			select {
			case _, ok := <-sub.C():
				if !ok {
					sub = w.nodes[i].Subscribe(64)
				}
			case <-w.nodes[i].Done():
				w.t.Fatalf("node %d stopped: %v", i, w.nodes[i].Err())
			case <-deadline:
				w.t.Fatalf("node %d at height %d, want %d after %s", i, w.nodes[i].Store().Height(), h, timeout)
			}
		}
		sub.Close()
	}
}

// checkSameChain compares every node's blocks and app hashes up to the
// lowest common height.
func (w *testNet) checkSameChain(which ...int) uint64 {
	w.t.Helper()
	if len(which) == 0 {
		for i := range w.nodes {
			which = append(which, i)
		}
	}
	top := w.nodes[which[0]].Store().Height()
	for _, i := range which {
		top = min(top, w.nodes[i].Store().Height())
	}
	for h := uint64(1); h <= top; h++ {
		ref, err := w.nodes[which[0]].Store().Block(h)
		if err != nil {
			w.t.Fatal(err)
		}
		refApp, _ := w.nodes[which[0]].Store().AppHash(h)
		for _, i := range which[1:] {
			b, err := w.nodes[i].Store().Block(h)
			if err != nil {
				w.t.Fatalf("node %d block %d: %v", i, h, err)
			}
			if b.Hash() != ref.Hash() {
				w.t.Fatalf("fork at height %d: node %d has %s, node %d has %s", h, which[0], ref.Hash(), i, b.Hash())
			}
			if app, _ := w.nodes[i].Store().AppHash(h); app != refApp {
				w.t.Fatalf("height %d: node %d app hash %s, node %d %s", h, which[0], refApp, i, app)
			}
		}
	}
	return top
}

func TestFourValidatorsCommitTheSameChain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	w := startTestnet(t, 4, nil)
	w.waitHeight(2, 60*time.Second)

	// Transfers from each account, submitted to different nodes.
	to := ledgerAddr("recipient")
	var txs []*ledger.Tx
	for i, k := range w.accounts {
		for nonce := uint64(0); nonce < 5; nonce++ {
			tx := &ledger.Tx{ChainID: "node-test", To: to, Amount: 10 + uint64(i), Fee: 1, Nonce: nonce}
			tx.Sign(k)
			if err := w.nodes[(i+int(nonce))%4].SubmitTx(context.Background(), tx); err != nil {
				t.Fatalf("submit: %v", err)
			}
			txs = append(txs, tx)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, tx := range txs {
		for {
			if _, _, err := w.nodes[0].Store().Tx(tx.Hash()); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("tx %s not committed", tx.Hash())
			}
			w.waitHeight(w.nodes[0].Store().Height()+1, 30*time.Second, 0)
		}
	}
	h := w.nodes[0].Store().Height()
	w.waitHeight(h, 30*time.Second)
	w.checkSameChain()
	for i, nd := range w.nodes {
		acc, err := nd.Store().Account(h, to)
		if err != nil || acc.Balance != 5*(10+11+12+13) {
			t.Fatalf("node %d: recipient balance %d (%v), want %d", i, acc.Balance, err, 5*(10+11+12+13))
		}
	}
}

// testLogger logs node i's debug output to stderr when LEDGERD_TEST_LOG is
// set, and discards it otherwise.
func testLogger(i int) *slog.Logger {
	if os.Getenv("LEDGERD_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", i)
}

func ledgerAddr(s string) crypto.Address {
	h := crypto.Sum([]byte(s))
	var a crypto.Address
	copy(a[:], h[:])
	return a
}

// TestLateNodeCatchesUpByBlockSync starts a full node after its validator
// has committed over a thousand heights: it must catch up by block sync
// and hold the same chain.
func TestLateNodeCatchesUpByBlockSync(t *testing.T) {
	if testing.Short() {
		t.Skip("commits a thousand heights")
	}
	dir := t.TempDir()
	params := ledger.DefaultConsensusParams()
	params.TimeoutCommit = 0
	tn, err := WriteTestnet(dir, TestnetOptions{ChainID: "sync-test", Validators: 1, FullNodes: 1, FundedAccounts: 4,
		BasePort: freeBasePort(t, 2), Params: &params})
	if err != nil {
		t.Fatal(err)
	}
	w := &testNet{t: t, tn: tn}
	t.Cleanup(func() {
		for _, nd := range w.nodes {
			if nd != nil {
				nd.Stop()
			}
		}
	})
	for i := 0; i < 4; i++ {
		k, err := privval.LoadKeyFile(filepath.Join(dir, "accounts", fmt.Sprintf("account%d.json", i)))
		if err != nil {
			t.Fatal(err)
		}
		w.accounts = append(w.accounts, k)
	}
	w.start(0, nil)
	// Keep transfers flowing while the chain grows, so blocks carry them.
	ctx, stopLoad := context.WithCancel(context.Background())
	loadDone := make(chan int)
	go func() {
		sent := 0
		defer func() { loadDone <- sent }()
		to := ledgerAddr("sink")
		for nonce := uint64(0); ctx.Err() == nil && sent < 50_000; nonce++ {
			for _, k := range w.accounts {
				tx := &ledger.Tx{ChainID: "sync-test", To: to, Amount: 1, Fee: 1, Nonce: nonce}
				tx.Sign(k)
				for w.nodes[0].SubmitTx(ctx, tx) != nil && ctx.Err() == nil {
					w.waitHeight(w.nodes[0].Store().Height()+1, 30*time.Second, 0) // pool full for this sender: let a block drain it
				}
				sent++
			}
		}
	}()
	const target = 1050
	w.waitHeight(target, 120*time.Second, 0)
	stopLoad()
	t.Logf("%d transfers submitted while the validator built %d heights", <-loadDone, target)

	synced := make(chan struct{})
	w.start(1, nil)
	go func() {
		defer close(synced)
		sub := w.nodes[1].Subscribe(4096)
		defer sub.Close()
		for range sub.C() {
			if w.nodes[1].Store().Height() >= target {
				return
			}
		}
	}()
	start := time.Now()
	for done := false; !done; {
		select {
		case <-synced:
			done = true
		case <-time.After(120 * time.Second):
			t.Fatalf("late node at height %d after 120s", w.nodes[1].Store().Height())
		case <-w.nodes[1].Done():
			t.Fatalf("late node stopped: %v", w.nodes[1].Err())
		}
	}
	el := time.Since(start)
	t.Logf("late node reached height %d in %s (%.0f blocks/s)", target, el, float64(target)/el.Seconds())
	w.checkSameChain()
	if synced := blocksSynced(w.nodes[1]); synced < target/2 {
		t.Fatalf("only %d blocks arrived by block sync; the rest came through consensus", synced)
	}
}

// TestStartFailureLeavesNodeStoppable: a node whose RPC port is taken
// fails to start with an error, and Stop then returns at once.
func TestStartFailureLeavesNodeStoppable(t *testing.T) {
	home := t.TempDir()
	cfg, _, err := InitDevHome(home)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg.RPC.ListenAddr = l.Addr().String()
	cfg.P2P.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err == nil {
		t.Fatal("Start succeeded on a taken RPC port")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- n.Stop() }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop hangs after a failed Start")
	}
}
