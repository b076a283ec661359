package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/node"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
	"github.com/ledgerd/ledgerd/wallet"
)

// devNode is an in-process single-validator dev chain with RPC on a
// loopback port.
type devNode struct {
	n      *node.Node
	cfg    *node.Config
	devKey crypto.PrivKey
	url    string
}

func startDevNode(t testing.TB) *devNode {
	t.Helper()
	cfg, devKey, err := node.InitDevHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg.P2P.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.RPC.ListenAddr = "127.0.0.1:0"
	n, err := node.New(cfg, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := n.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := n.Stop(); err != nil {
			t.Errorf("node stopped with %v", err)
		}
	})
	return &devNode{n: n, cfg: cfg, devKey: devKey, url: "http://" + n.RPCAddr()}
}

// rewritingProxy forwards to target and lets rewrite change the result
// object of every JSON-RPC answer (it returns whether it changed it), as a
// dishonest RPC provider would.
func rewritingProxy(t *testing.T, target string, rewrite func(res map[string]any) bool) *httptest.Server {
	u, _ := url.Parse(target)
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			if res, ok := m["result"].(map[string]any); ok && rewrite(res) {
				body, _ = json.Marshal(m)
			}
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", fmt.Sprint(len(body)))
		return nil
	}
	s := httptest.NewServer(p)
	t.Cleanup(s.Close)
	return s
}

// lyingProxy inflates every balance in ledger_getAccount answers.
func lyingProxy(t *testing.T, target string) *httptest.Server {
	return rewritingProxy(t, target, func(res map[string]any) bool {
		if _, ok := res["balance"]; ok && res["address"] != nil {
			res["balance"] = "777777777"
			return true
		}
		return false
	})
}

// staleProxy reports height as the latest in ledger_status answers: a node
// hiding the blocks after it.
func staleProxy(t *testing.T, target string, height uint64) *httptest.Server {
	return rewritingProxy(t, target, func(res map[string]any) bool {
		if _, ok := res["latest_height"]; ok {
			res["latest_height"] = strconv.FormatUint(height, 10)
			return true
		}
		return false
	})
}

// verifiedBalance is what balance --verify --output json prints.
type verifiedBalance struct {
	Balance      api.Uint64 `json:"balance"`
	Nonce        api.Uint64 `json:"nonce"`
	Height       api.Uint64 `json:"height"`
	Verified     bool       `json:"verified"`
	HeaderHeight api.Uint64 `json:"header_height"`
	HeaderTime   time.Time  `json:"header_time"`
	Endpoint     string     `json:"endpoint"`
}

// sentAndProven is what send --wait --output json prints.
type sentAndProven struct {
	Hash        crypto.Hash  `json:"hash"`
	Status      api.TxStatus `json:"status"`
	Height      *api.Uint64  `json:"height"`
	ProofHeight *api.Uint64  `json:"proof_height"`
}

// TestEndToEndOnDevChain funds a new key from the dev account, sends 100
// transfers from it in a row, checks that all commit with exact balances
// and that a subscriber saw every block; then drives the real
// ledger-wallet binary, including --verify catching a proxy that alters
// balances.
func TestEndToEndOnDevChain(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dn := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := client.New(dn.url)
	if err != nil {
		t.Fatal(err)
	}

	// A subscriber from before the first block.
	ws, err := c.DialWS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	heads, err := ws.SubscribeNewHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chainID := st.ChainID
	val := *st.ValidatorAddress

	// Fund a new key from the dev account.
	payer, _ := crypto.GenerateKey(nil)
	payee, _ := crypto.GenerateKey(nil)
	const fund, amount, fee, n = 1_000_000, 10, 1, 100
	dev := wallet.NewSender(c, dn.devKey, chainID)
	r, err := dev.SendAndWait(ctx, payer.PubKey().Address(), fund, fee, 0)
	if err != nil || r.Status != api.TxCommitted {
		t.Fatalf("funding: %v %+v", err, r)
	}

	// 100 transfers in a row, none waiting for the previous.
	s := wallet.NewSender(c, payer, chainID)
	var txs []*ledger.Tx
	for i := 0; i < n; i++ {
		tx, err := s.Send(ctx, payee.PubKey().Address(), amount, fee)
		if err != nil {
			t.Fatalf("transfer %d: %v", i, err)
		}
		if tx.Nonce != uint64(i) {
			t.Fatalf("transfer %d got nonce %d", i, tx.Nonce)
		}
		txs = append(txs, tx)
	}
	for i, tx := range txs {
		r, err := wallet.Wait(ctx, c, tx, 0)
		if err != nil || r.Status != api.TxCommitted {
			t.Fatalf("transfer %d did not commit: %v", i, err)
		}
	}
	balance := func(a crypto.Address) uint64 {
		acc, err := c.Account(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		return uint64(acc.Balance)
	}
	wantPayer := uint64(fund - n*(amount+fee))
	if got := balance(payer.PubKey().Address()); got != wantPayer {
		t.Errorf("payer balance %d, want %d", got, wantPayer)
	}
	if got := balance(payee.PubKey().Address()); got != n*amount {
		t.Errorf("payee balance %d, want %d", got, n*amount)
	}
	if got := balance(dn.devKey.PubKey().Address()); got != node.DevBalance-fund-fee {
		t.Errorf("dev balance %d, want %d", got, node.DevBalance-fund-fee)
	}
	if got := balance(val); got != (n+1)*fee {
		t.Errorf("validator (fees) balance %d, want %d", got, (n+1)*fee)
	}

	// The subscriber saw every block, in order.
	st, err = c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// (It buffers up to 256 heads client-side and the node 256 more;
	// this chain has far fewer blocks, so reading them now loses none.)
	latest := uint64(st.LatestHeight)
	for want := uint64(1); want <= latest; want++ {
		h, err := heads.NextHead(ctx)
		if err != nil {
			t.Fatalf("subscriber, waiting for head %d: %v", want, err)
		}
		if uint64(h.Height) != want {
			t.Fatalf("subscriber got head %d, want %d", h.Height, want)
		}
	}

	t.Run("wallet binary", func(t *testing.T) { testWalletBinary(t, dn) })
}

// wallet runs the ledger-wallet binary.
type walletCLI struct {
	bin, home, rpc string
	env            []string
}

func (w *walletCLI) run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(w.bin, args...)
	cmd.Env = append(os.Environ(), "LEDGER_WALLET_HOME="+w.home, "LEDGER_WALLET_RPC="+w.rpc, "LEDGER_WALLET_PASSPHRASE=correct horse")
	cmd.Env = append(cmd.Env, w.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (w *walletCLI) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, err := w.run(t, args...)
	if err != nil {
		t.Fatalf("ledger-wallet %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errs)
	}
	return out
}

func (w *walletCLI) json(t *testing.T, v any, args ...string) {
	t.Helper()
	out := w.ok(t, append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("ledger-wallet %s: output %q: %v", strings.Join(args, " "), out, err)
	}
}

func buildWallet(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ledger-wallet")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build ledger-wallet: %v\n%s", err, out)
	}
	return bin
}

func testWalletBinary(t *testing.T, dn *devNode) {
	w := &walletCLI{bin: buildWallet(t), home: t.TempDir(), rpc: dn.url}
	w.ok(t, "keys", "import", "dev", dn.cfg.DevAccountKeyFile())
	var alice wallet.KeyInfo
	w.json(t, &alice, "keys", "new", "alice")
	if alice.Address.IsZero() {
		t.Fatal("keys new printed no address")
	}
	fi, err := os.Stat(filepath.Join(w.home, "keys", "alice.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v mode %v, want 0600", err, fi.Mode().Perm())
	}

	var funded sentAndProven
	w.json(t, &funded, "send", "--from", "dev", "--to", alice.Address.String(), "--amount", "500", "--fee", "1", "--wait")
	if funded.Status != api.TxCommitted {
		t.Fatalf("send --wait: %+v", funded)
	}
	// send --wait returns once the header that commits to the state after
	// the transfer exists (the dev chain makes it although no transaction
	// waits), so --verify shows the transfer at once.
	if funded.ProofHeight == nil || *funded.ProofHeight != *funded.Height+1 {
		t.Errorf("send --wait committed at height %d, proof height %v, want %d", *funded.Height, funded.ProofHeight, *funded.Height+1)
	}
	var fresh verifiedBalance
	w.json(t, &fresh, "balance", "alice", "--verify", "--genesis", dn.cfg.GenesisFile())
	if !fresh.Verified || fresh.Balance != 500 || fresh.Height < *funded.Height {
		t.Errorf("balance --verify right after send --wait (committed at height %d): balance %d after height %d, want 500",
			*funded.Height, fresh.Balance, fresh.Height)
	}
	// Three in a row in one run, then two runs back to back without
	// waiting, then one that waits: nonces 0..5, all commit.
	var three []sentOut
	w.json(t, &three, "send", "--from", "alice", "--to", "dev", "--amount", "5", "--count", "3", "--wait")
	var more []sentOut
	for i := 0; i < 3; i++ {
		var one sentOut
		args := []string{"send", "--from", "alice", "--to", "dev", "--amount", "1"}
		if i == 2 {
			args = append(args, "--wait")
		}
		w.json(t, &one, args...)
		more = append(more, one)
	}
	all := append(three, more...)
	for i, o := range all {
		if uint64(o.Nonce) != uint64(i) {
			t.Fatalf("transfer %d has nonce %d", i, o.Nonce)
		}
	}
	c, _ := client.New(dn.url)
	ctx := context.Background()
	for _, o := range all {
		r, err := c.Tx(ctx, o.Hash, false)
		if err != nil || r.Status == api.TxUnknown {
			t.Fatalf("transfer %s: %v %+v", o.Hash, err, r)
		}
	}
	if r, err := c.SendTxAndWait(ctx, mustTx(t, c, all[4].Hash), 0); err != nil || r.Status != api.TxCommitted {
		t.Fatalf("transfer 4 did not commit: %v", err)
	}

	// --verify against the trusted genesis file.
	var vb verifiedBalance
	w.json(t, &vb, "balance", "alice", "--verify", "--genesis", dn.cfg.GenesisFile())
	want, err := dn.n.Store().Account(uint64(vb.Height), alice.Address)
	if err != nil || !vb.Verified || uint64(vb.Balance) != want.Balance || uint64(vb.Nonce) != want.Nonce {
		t.Fatalf("verified balance %+v, node holds %+v at height %d (%v)", vb, want, vb.Height, err)
	}

	// The text output names the header and its time.
	text := w.ok(t, "balance", "alice", "--verify")
	t.Logf("balance alice --verify:\n%s", text)
	if !strings.Contains(text, fmt.Sprintf("is in header %d,", vb.HeaderHeight)) || !strings.Contains(text, "header:   ") {
		t.Errorf("balance --verify text does not name the header %d and its time:\n%s", vb.HeaderHeight, text)
	}

	// A node that hides its newest blocks can only show an older header,
	// and the wallet shows which: the state after the funding, alice
	// holding 500 with nonce 0.
	staleH := uint64(*funded.Height) + 1
	staleHdr, err := dn.n.Store().Block(staleH)
	if err != nil {
		t.Fatal(err)
	}
	stale := staleProxy(t, dn.url, staleH)
	var sb verifiedBalance
	w.json(t, &sb, "balance", "alice", "--verify", "--rpc", stale.URL)
	if sb.Balance != 500 || sb.Nonce != 0 {
		t.Fatalf("through the stale proxy: balance %d nonce %d, want the stale 500 and 0: the test proves nothing", sb.Balance, sb.Nonce)
	}
	if uint64(sb.HeaderHeight) != staleH || !sb.HeaderTime.Equal(staleHdr.Header.Time.Time()) {
		t.Errorf("through the stale proxy: header %d at %s, want the stale header %d at %s",
			sb.HeaderHeight, sb.HeaderTime, staleH, staleHdr.Header.Time.Time())
	}
	// A header older than --max-age is refused. (Its age only grows, so
	// half of it now is below it when the wallet looks.)
	maxAge := time.Since(staleHdr.Header.Time.Time()) / 2
	if out, errs, err := w.run(t, "balance", "alice", "--verify", "--rpc", stale.URL, "--max-age", maxAge.String()); err == nil || !strings.Contains(errs, "older than") {
		t.Errorf("--max-age %s with header %d from %s: err %v\nstdout %s\nstderr %s", maxAge, staleH, staleHdr.Header.Time.Time(), err, out, errs)
	}
	// With an honest endpoint among several, the highest verified header
	// wins, whichever comes first.
	for _, rpcs := range []string{stale.URL + "," + dn.url, dn.url + "," + stale.URL} {
		var mb verifiedBalance
		w.json(t, &mb, "balance", "alice", "--verify", "--rpc", rpcs)
		want, err := dn.n.Store().Account(uint64(mb.Height), alice.Address)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(mb.HeaderHeight) <= staleH || mb.Balance != vb.Balance || uint64(mb.Balance) != want.Balance || mb.Endpoint != dn.url {
			t.Errorf("--rpc %s: balance %d after height %d (header %d from %q), want %d from the honest %s's newest header",
				rpcs, mb.Balance, mb.Height, mb.HeaderHeight, mb.Endpoint, vb.Balance, dn.url)
		}
	}

	// A proxy that alters balances fools the unverified query and is
	// caught by --verify (the genesis is now pinned).
	liar := lyingProxy(t, dn.url)
	var lied balanceOut
	w.json(t, &lied, "balance", "alice", "--rpc", liar.URL)
	if lied.Balance != 777777777 {
		t.Fatalf("the proxy did not alter the balance (%d): the test proves nothing", lied.Balance)
	}
	out, errs, err := w.run(t, "balance", "alice", "--verify", "--rpc", liar.URL)
	if err == nil || !strings.Contains(errs, "verification failed") {
		t.Fatalf("--verify through a lying proxy: err %v\nstdout %s\nstderr %s", err, out, errs)
	}

	// Beside an honest endpoint, a node that alters balances is reported
	// loudly and its answer replaced by the honest one's proof, and one that
	// claims blocks it cannot prove is passed over.
	ahead := staleProxy(t, dn.url, 1_000_000)
	for _, tc := range []struct{ rpcs, stderr string }{
		{liar.URL + "," + dn.url, "WARNING: " + liar.URL + " failed verification"},
		{ahead.URL + "," + dn.url, ahead.URL + " was not used"},
	} {
		out, errs, err := w.run(t, "balance", "alice", "--verify", "--output", "json", "--rpc", tc.rpcs)
		var mb verifiedBalance
		if err != nil || json.Unmarshal([]byte(out), &mb) != nil || mb.Balance != vb.Balance || !strings.Contains(errs, tc.stderr) {
			t.Errorf("--rpc %s: err %v, balance %d (want %d)\nstdout %s\nstderr %s\nwant stderr to say %q", tc.rpcs, err, mb.Balance, vb.Balance, out, errs, tc.stderr)
		}
	}

	var tv struct {
		api.Transaction
		Verified bool `json:"verified"`
	}
	w.json(t, &tv, "tx", funded.Hash.String(), "--verify")
	if !tv.Verified || tv.Status != api.TxCommitted {
		t.Fatalf("tx --verify: %+v", tv)
	}
	var hist api.AccountTxs
	w.json(t, &hist, "history", "alice")
	if len(hist.Txs) != 1+len(all) {
		t.Fatalf("history has %d transactions, want %d", len(hist.Txs), 1+len(all))
	}
	// Failover: the first endpoint is down.
	var st api.Status
	w.json(t, &st, "status", "--rpc", "http://127.0.0.1:1,"+dn.url)
	if st.ChainID != node.DevChainID {
		t.Fatalf("status through failover: %+v", st)
	}
	// A wrong passphrase is refused.
	bad := &walletCLI{bin: w.bin, home: w.home, rpc: w.rpc, env: []string{"LEDGER_WALLET_PASSPHRASE=wrong"}}
	if _, errs, err := bad.run(t, "send", "--from", "alice", "--to", "dev", "--amount", "1"); err == nil || !strings.Contains(errs, "wrong passphrase") {
		t.Fatalf("wrong passphrase: %v %s", err, errs)
	}
}

func mustTx(t *testing.T, c *client.Client, h crypto.Hash) *ledger.Tx {
	r, err := c.Tx(context.Background(), h, false)
	if err != nil || r.Tx == nil {
		t.Fatalf("tx %s: %v", h, err)
	}
	return r.Tx
}
