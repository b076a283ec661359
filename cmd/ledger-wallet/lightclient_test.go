package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	if s, err := client.DecodeTrustedState(raw); err != nil || s.Header.Height != 1500 || s.Header.Hash() != c.Blocks[1500].Hash() {
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
