package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/light"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
	"github.com/ledgerd/ledgerd/rpc/client/clienttest"
)

var lightSeed = flag.Uint64("seed", 0, "seed of the synthetic chain of TestVerifyFollowsSetChanges (0: a new one each run)")

// TestVerifyFollowsSetChanges runs balance --verify and tx --verify from
// a new wallet against a synthetic chain whose validator set changed
// hundreds of times (and was replaced whole twice): the wallet skips ahead
// fetching few headers, saves the newest it trusted (mode 0600), starts
// from it the next time, and a node serving a forged chain is caught.
func TestVerifyFollowsSetChanges(t *testing.T) {
	seed := *lightSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano()) | 1
	}
	t.Logf("seed=%d (replay: go test ./cmd/ledger-wallet -run '^TestVerifyFollowsSetChanges$' -seed=%d)", seed, seed)
	c, err := clienttest.NewChain(clienttest.Options{Seed: seed, Heights: 3000})
	if err != nil {
		t.Fatal(err)
	}
	b := clienttest.NewBackend(c)
	b.SetHeight(1500)
	url := clienttest.Serve(t, b)
	gen := filepath.Join(t.TempDir(), "genesis.json")
	if err := c.Doc.Save(gen); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	addr := c.Accounts[1].PubKey().Address()
	changes := 0
	for _, h := range c.Changes {
		if h <= 1500 {
			changes++
		}
	}
	if changes < 20 {
		t.Fatalf("seed %d: %d set changes up to height 1500; want at least 20", seed, changes)
	}

	type verified struct {
		Balance        api.Uint64 `json:"balance"`
		Height         api.Uint64 `json:"height"`
		Verified       bool       `json:"verified"`
		HeaderHeight   api.Uint64 `json:"header_height"`
		HeadersFetched int        `json:"headers_fetched"`
	}
	balance := func(wantHeight uint64, extra ...string) (verified, string) {
		t.Helper()
		args := append([]string{"balance", addr.String(), "--verify", "--rpc", url, "--home", home, "--max-age", "0", "-v", "--output", "json"}, extra...)
		out, errs, err := runWallet(t, args...)
		if err != nil {
			t.Fatalf("seed %d: ledger-wallet %s: %v\nstderr: %s", seed, strings.Join(args, " "), err, errs)
		}
		var v verified
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("seed %d: output %q: %v", seed, out, err)
		}
		want, _, _ := c.Account(wantHeight-1, addr)
		if !v.Verified || uint64(v.HeaderHeight) != wantHeight || uint64(v.Balance) != want.Balance {
			t.Fatalf("seed %d: balance --verify: %+v; want balance %d proven by header %d", seed, v, want.Balance, wantHeight)
		}
		return v, errs
	}

	// A new wallet, trusting only the genesis file.
	v, errs := balance(1500, "--genesis", gen)
	t.Logf("seed %d: new wallet: header 1500 after %d set changes, %d headers fetched\n%s", seed, changes, v.HeadersFetched, errs)
	if v.HeadersFetched == 0 || v.HeadersFetched*10 > 1500 {
		t.Errorf("seed %d: a new wallet fetched %d headers to verify header 1500", seed, v.HeadersFetched)
	}
	if !strings.Contains(errs, "light client: trusted header 1500 from") || !strings.Contains(errs, "skipping") {
		t.Errorf("seed %d: -v does not show the steps:\n%s", seed, errs)
	}
	saved := filepath.Join(home, lightFile)
	fi, err := os.Stat(saved)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", saved, fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(saved)
	if s, err := light.DecodeTrustedState(raw); err != nil || s.Header.Height != 1500 || s.Header.Hash() != c.Blocks[1500].Hash() {
		t.Fatalf("seed %d: saved trusted state: %v", seed, err)
	}

	// The chain grows; the next run starts from the saved header (and the
	// pinned genesis).
	b.SetHeight(3000)
	v, errs = balance(3000)
	t.Logf("seed %d: second run: header 3000, %d headers fetched\n%s", seed, v.HeadersFetched, errs)
	if !strings.Contains(errs, "starting from trusted header 1500") || !strings.Contains(errs, "from 1500 (") {
		t.Errorf("seed %d: the second run did not start from header 1500:\n%s", seed, errs)
	}
	if v.HeadersFetched*10 > 1500 {
		t.Errorf("seed %d: the second run fetched %d headers", seed, v.HeadersFetched)
	}

	// tx --verify of a transfer in block 2500.
	tx := c.Blocks[2500].Txs[0]
	out, errs, err := runWallet(t, "tx", tx.Hash().String(), "--verify", "--rpc", url, "--home", home, "-v")
	if err != nil || !strings.Contains(out, "verified: yes") {
		t.Fatalf("seed %d: tx --verify: %v\nstdout: %s\nstderr: %s", seed, err, out, errs)
	}

	// A node serving a chain forged from height 2000 by keys that never
	// were validators, to a new wallet: caught.
	forged, err := c.Forge(2000)
	if err != nil {
		t.Fatal(err)
	}
	liar := clienttest.Serve(t, clienttest.NewBackend(forged))
	out, errs, err = runWallet(t, "balance", c.Accounts[2].PubKey().Address().String(), "--verify", "--genesis", gen,
		"--rpc", liar, "--home", t.TempDir(), "--max-age", "0")
	if err == nil || !strings.Contains(err.Error(), client.ErrVerification.Error()) || strings.Contains(out, "777777777") {
		t.Fatalf("seed %d: balance --verify against a forged chain: err %v\nstdout: %s\nstderr: %s", seed, err, out, errs)
	}
	t.Logf("forged chain caught: %v", err)
}

// TestVerifyOnDevChainAcrossSetChanges changes the validator set of a real
// dev chain more than 20 times (delegations to the dev validator, two
// validators created), then verifies its latest header from a new wallet,
// which skips ahead, and with a sequential light client, which checks
// that every header the node serves names the set the header before it
// named as next: the node's headers and ledger_validators agree at every
// height.
func TestVerifyOnDevChainAcrossSetChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a dev chain")
	}
	dn := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := client.New(dn.url)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := genesis.Load(dn.cfg.GenesisFile())
	if err != nil {
		t.Fatal(err)
	}
	unit := doc.Staking.PowerUnit
	dev := dn.devKey
	send := func(from crypto.PrivKey, tx *ledger.Tx) {
		t.Helper()
		acc, err := c.Account(ctx, from.PubKey().Address())
		if err != nil {
			t.Fatal(err)
		}
		tx.ChainID, tx.Fee, tx.Nonce = st.ChainID, 1, uint64(*acc.PendingNonce)
		tx.Sign(from)
		r, err := c.SendTxAndWait(ctx, tx, 0)
		if err != nil || r.Status != api.TxCommitted {
			t.Fatalf("%s: %v %+v", tx.Kind, err, r)
		}
	}
	// Two validators that never sign, of power 1 each: the dev validator
	// keeps more than two thirds.
	for i := 0; i < 2; i++ {
		op, _ := crypto.GenerateKey(nil)
		cons, _ := crypto.GenerateKey(nil)
		send(dev, &ledger.Tx{To: op.PubKey().Address(), Amount: 10 * unit})
		send(op, &ledger.Tx{Kind: ledger.TxCreateValidator, ConsKey: cons.PubKey(), Moniker: fmt.Sprintf("idle%d", i), Amount: unit})
	}
	for i := 0; i < 21; i++ {
		send(dev, &ledger.Tx{Kind: ledger.TxDelegate, To: *st.ValidatorAddress, Amount: unit})
	}
	// The last change takes effect two heights after its block.
	latest, err := c.WaitForHeight(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if latest, err = c.WaitForHeight(ctx, uint64(latest.LatestHeight)+2); err != nil {
		t.Fatal(err)
	}
	top := uint64(latest.LatestHeight)
	changes := 0
	prev, err := c.Validators(ctx, api.At(1))
	if err != nil {
		t.Fatal(err)
	}
	for h := uint64(2); h <= top; h++ {
		vs, err := c.Validators(ctx, api.At(h))
		if err != nil {
			t.Fatal(err)
		}
		if vs.Hash != prev.Hash {
			changes++
		}
		prev = vs
	}
	t.Logf("dev chain: %d set changes up to height %d", changes, top)
	if changes < 20 {
		t.Fatalf("%d set changes up to height %d; want at least 20", changes, top)
	}

	// A new wallet skips ahead.
	home := t.TempDir()
	out, errs, err := runWallet(t, "balance", dev.PubKey().Address().String(), "--verify", "--genesis", dn.cfg.GenesisFile(),
		"--rpc", dn.url, "--home", home, "-v", "--output", "json")
	if err != nil {
		t.Fatalf("balance --verify: %v\nstderr: %s", err, errs)
	}
	var v struct {
		Verified       bool       `json:"verified"`
		HeaderHeight   api.Uint64 `json:"header_height"`
		HeadersFetched int        `json:"headers_fetched"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || !v.Verified || uint64(v.HeaderHeight) < top {
		t.Fatalf("balance --verify: %s (%v)", out, err)
	}
	t.Logf("new wallet: header %d verified fetching %d headers\n%s", v.HeaderHeight, v.HeadersFetched, errs)
	if v.HeadersFetched*4 > int(top) {
		t.Errorf("a new wallet fetched %d headers for header %d", v.HeadersFetched, v.HeaderHeight)
	}

	// A sequential light client walks every header and agrees.
	seq, err := light.NewTrust(doc)
	if err != nil {
		t.Fatal(err)
	}
	seq.Sequential = true
	hdr, n, err := c.VerifiedHeaderCount(ctx, seq, uint64(v.HeaderHeight))
	if err != nil {
		t.Fatalf("sequential verification of the dev chain: %v", err)
	}
	raw, _ := os.ReadFile(filepath.Join(home, lightFile))
	saved, err := light.DecodeTrustedState(raw)
	if err != nil || saved.Header.Hash() != hdr.Hash() || n != int(v.HeaderHeight) {
		t.Fatalf("sequential: header %d %s after %d headers; the wallet saved %+v (%v)", hdr.Height, hdr.Hash(), n, saved, err)
	}
}
