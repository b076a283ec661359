package main

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/privval"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
	"github.com/ledgerd/ledgerd/wallet"
)

// stakeWallet runs the wallet in-process against a dev node, with its
// home, endpoint and passphrase in the environment.
type stakeWallet struct{ t *testing.T }

func (w stakeWallet) run(args ...string) (string, string, error) {
	w.t.Helper()
	return runWallet(w.t, args...)
}

func (w stakeWallet) ok(args ...string) string {
	w.t.Helper()
	out, errs, err := w.run(args...)
	if err != nil {
		w.t.Fatalf("ledger-wallet %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errs)
	}
	return out
}

func (w stakeWallet) json(v any, args ...string) {
	w.t.Helper()
	out := w.ok(append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		w.t.Fatalf("ledger-wallet %s: output %q: %v", strings.Join(args, " "), out, err)
	}
}

// TestStakingFromTheWallet runs a dev chain and, through the wallet's
// stake commands, makes a funded account a validator (with a consensus key
// from a priv_validator_key.json), delegates to it from another account,
// undelegates part, and checks what stake validator, validators and
// delegations show at each step. Transactions the staking rules refuse
// commit as failed and the wallet shows why and exits with an error.
func TestStakingFromTheWallet(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dn := startDevNode(t)
	t.Setenv(envHome, t.TempDir())
	t.Setenv(envRPC, dn.url)
	t.Setenv(envPassphrase, "correct horse")
	w := stakeWallet{t}
	c, err := client.New(dn.url)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	doc, _, err := c.Genesis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unit := doc.Staking.PowerUnit

	w.ok("keys", "import", "dev", dn.cfg.DevAccountKeyFile())
	var alice wallet.KeyInfo
	w.json(&alice, "keys", "new", "alice")
	w.ok("send", "--from", "dev", "--to", "alice", "--amount", "1000000", "--fee", "1", "--wait")

	// The operator's node key: a priv_validator_key.json, as ledgerd writes it.
	consKey, _ := crypto.GenerateKey(nil)
	keyFile := filepath.Join(t.TempDir(), "priv_validator_key.json")
	if err := privval.WriteKeyFile(keyFile, consKey); err != nil {
		t.Fatal(err)
	}
	// One power unit: the dev validator's 10 keep more than 2/3 of the
	// power, so the chain goes on without the newcomer signing.
	if _, errs, err := w.run("stake", "create-validator", "--from", "alice", "--cons-key", keyFile, "--moniker", "alice-node",
		"--amount", "999", "--fee", "1", "--wait"); err == nil || !strings.Contains(err.Error(), "below one power unit") {
		t.Fatalf("a self-bond below one power unit: err %v (stderr %s), want it refused before sending", err, errs)
	}
	var created stakeOut
	w.json(&created, "stake", "create-validator", "--from", "alice", "--cons-key", keyFile, "--moniker", "alice-node",
		"--amount", "1000", "--fee", "1", "--wait")
	if created.Status != api.TxCommitted || created.Failed || created.Kind != ledger.TxCreateValidator || created.Height == nil {
		t.Fatalf("create-validator: %+v", created)
	}

	// Its status: active at once; validating once the header after its
	// block exists (the set of height H+2).
	if _, err := c.WaitForHeight(ctx, uint64(*created.Height)+1); err != nil {
		t.Fatal(err)
	}
	var v api.ValidatorStatus
	w.json(&v, "stake", "validator", "alice")
	if v.Operator != alice.Address || v.ConsKey != consKey.PubKey() || v.Moniker != "alice-node" || v.Power != 1 ||
		uint64(v.Tokens) != unit || !v.Active || !v.Validating || v.Jailed {
		t.Fatalf("stake validator alice: %+v", v)
	}
	text := w.ok("stake", "validator", alice.Address.String())
	t.Logf("stake validator alice:\n%s", text)
	for _, want := range []string{"status:     active", "validating: yes", "power:      1", `moniker:    "alice-node"`} {
		if !strings.Contains(text, want) {
			t.Errorf("stake validator text lacks %q:\n%s", want, text)
		}
	}
	// Before its block, there was no such validator.
	prev := strconv.FormatUint(uint64(*created.Height)-1, 10)
	if _, _, err := w.run("stake", "validator", "alice", "--height", prev); err == nil || !strings.Contains(err.Error(), "no validator is operated by") {
		t.Errorf("stake validator alice --height %s: err %v, want not found", prev, err)
	}

	// dev delegates 2 units to alice's validator, then takes half a unit back.
	var del stakeOut
	w.json(&del, "stake", "delegate", "--from", "dev", "--validator", "alice", "--amount", "2000", "--fee", "1", "--wait")
	if del.Status != api.TxCommitted || del.Failed {
		t.Fatalf("delegate: %+v", del)
	}
	var undel stakeOut
	w.json(&undel, "stake", "undelegate", "--from", "dev", "--validator", alice.Address.String(), "--amount", "500", "--fee", "1", "--wait")
	if undel.Status != api.TxCommitted || undel.Failed {
		t.Fatalf("undelegate: %+v", undel)
	}
	var ds delegationsOut
	w.json(&ds, "stake", "delegations", "dev")
	if len(ds.Delegations) != 1 || ds.Delegations[0].Operator != alice.Address || uint64(ds.Delegations[0].Tokens) != 1500 {
		t.Fatalf("dev's delegations: %+v", ds.Delegations)
	}
	if len(ds.Unbondings) != 1 || len(ds.Unbondings[0].Entries) != 1 || ds.Unbondings[0].Entries[0].Balance != 500 ||
		uint64(ds.Unbondings[0].Entries[0].CompletionHeight) != uint64(*undel.Height)+doc.Staking.UnbondingHeights {
		t.Fatalf("dev's unbondings: %+v", ds.Unbondings)
	}
	text = w.ok("stake", "delegations", "dev")
	t.Logf("stake delegations dev:\n%s", text)
	if !strings.Contains(text, "unbonding:") || !strings.Contains(text, alice.Address.String()) {
		t.Errorf("stake delegations text:\n%s", text)
	}
	w.json(&v, "stake", "validator", "alice")
	if uint64(v.Tokens) != unit+1500 || v.Power != 2 {
		t.Fatalf("alice's validator after the delegations: %+v", v)
	}

	// Validators by power: dev's (10), then alice's (2).
	var vals []api.StakingValidator
	w.json(&vals, "stake", "validators")
	if len(vals) != 2 || vals[0].Power != 10 || vals[1].Operator != alice.Address || !vals[1].Active {
		t.Fatalf("stake validators: %+v", vals)
	}
	text = w.ok("stake", "validators")
	t.Logf("stake validators:\n%s", text)
	if !strings.Contains(text, "alice-node") || !strings.Contains(text, "active") {
		t.Errorf("stake validators text:\n%s", text)
	}

	// Refused by the staking rules: committed as failed, with the reason.
	nobody, _ := crypto.GenerateKey(nil)
	for _, tc := range []struct {
		args []string
		why  string
	}{
		{[]string{"stake", "delegate", "--from", "dev", "--validator", nobody.PubKey().Address().String(), "--amount", "5"}, "no validator is operated by"},
		{[]string{"stake", "unjail", "--from", "alice"}, "not jailed"},
	} {
		out, _, err := w.run(append(tc.args, "--fee", "1", "--wait")...)
		t.Logf("%s:\n%s(error: %v)", strings.Join(tc.args, " "), out, err)
		if !errors.Is(err, errTxFailed) || !strings.Contains(err.Error(), tc.why) || !strings.Contains(out, "FAILED: ") || !strings.Contains(out, tc.why) {
			t.Errorf("%s: err %v, stdout %q; want a failure saying %q", strings.Join(tc.args, " "), err, out, tc.why)
		}
	}
	// tx shows a failed transaction's reason.
	var failed stakeOut
	out, _, _ := w.run("stake", "delegate", "--from", "dev", "--validator", "dev", "--amount", "5", "--fee", "1", "--wait", "--output", "json")
	if err := json.Unmarshal([]byte(out), &failed); err != nil || !failed.Failed {
		t.Fatalf("a delegation to the dev account (no validator): %q, %v", out, err)
	}
	if text := w.ok("tx", failed.Hash.String()); !strings.Contains(text, "FAILED:  transaction failed: staking: rejected: delegate: no validator") {
		t.Errorf("tx of a failed delegation:\n%s", text)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The chain went on: the dev validator alone holds more than 2/3.
	if st.LatestHeight < *created.Height+4 {
		t.Fatalf("height %d after create-validator at %d", st.LatestHeight, *created.Height)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
