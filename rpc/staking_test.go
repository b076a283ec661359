package rpc

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// TestStakingQueriesFollowTheChain drives the staking methods and the
// validatorSet subscription over a real store while an account creates a
// validator, another delegates to it and later undelegates, and a third
// delegates to nobody (committed as failed). Every answer is checked
// against the numbers the transactions imply, and the proofs against the
// app hash of the next header.
func TestStakingQueriesFollowTheChain(t *testing.T) {
	b := newTestBackendWithAccounts(t, 2, 4)
	ts := startServer(t, b, Config{})
	ctx := testCtx(t)
	c, err := client.New(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	w := dialWS(t, ts)
	sets, err := w.SubscribeValidatorSet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unit := b.doc.Staking.PowerUnit
	genesisStake := uint64(2 * 10 * unit)
	k0, k1, k2 := b.chain.Accounts[0], b.chain.Accounts[1], b.chain.Accounts[2]
	op, del := b.addr(0), b.addr(1)
	consKey := ledgertest.Key("validator", 7)
	b.addValKey(consKey)

	create := ledgertest.CreateValidator(k0, consKey.PubKey(), "joiner", 5*unit, 1, 0)
	delegate := ledgertest.Delegate(k1, op, 2*unit, 1, 0)
	nowhere := ledgertest.Delegate(k2, ledgertest.Key("nobody", 0).PubKey().Address(), 100, 1, 0)
	failedSub, err := w.SubscribeTx(ctx, nowhere.Hash())
	if err != nil {
		t.Fatal(err)
	}
	blk1 := b.commit(t, create, delegate, nowhere)

	// The failed delegation is committed, says so, and says why; the
	// others succeeded.
	for _, tc := range []struct {
		tx     *ledger.Tx
		failed bool
	}{{create, false}, {delegate, false}, {nowhere, true}} {
		got, err := c.Tx(ctx, tc.tx.Hash(), true)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != api.TxCommitted || got.Failed != tc.failed || (got.Receipt.Error != "") != tc.failed {
			t.Errorf("%s: status %s, failed %v, receipt error %q; want committed, failed %v", tc.tx.Kind, got.Status, got.Failed, got.Receipt.Error, tc.failed)
		}
	}
	raw, err := failedSub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"failed":true`) || !strings.Contains(string(raw), "no validator is operated by") {
		t.Errorf("tx notification of the failed delegation: %s", raw)
	}

	// The set change: block 1 made it, it takes effect at height 3.
	change, err := sets.NextValidatorSet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if change.BlockHeight != 1 || change.Height != 3 || len(change.Validators.Validators) != 3 {
		t.Fatalf("set change %+v, want block 1 changing the set of height 3 to 3 members", change)
	}
	joined := false
	for _, v := range change.Validators.Validators {
		joined = joined || (v.PubKey == consKey.PubKey() && v.Power == 7 && v.Name == "joiner" && v.Operator == op)
	}
	if !joined {
		t.Fatalf("the set change does not hold the joiner with power 7: %+v", change.Validators.Validators)
	}

	blk2 := b.commit(t) // header 2 carries the app hash of the state after 1

	// The pool, now and at genesis, with its proof.
	pool, err := c.StakingPool(ctx, api.Latest, true)
	if err != nil {
		t.Fatal(err)
	}
	if pool.Height != 2 || uint64(pool.Bonded) != genesisStake+7*unit || pool.Unbonding != 0 || pool.Burned != 0 || pool.Candidates != 3 {
		t.Fatalf("pool %+v, want %d bonded among 3 candidates", pool, genesisStake+7*unit)
	}
	if err := pool.VerifyProof(); err != nil {
		t.Fatalf("pool proof: %v", err)
	}
	at1, err := c.StakingPool(ctx, api.At(1), true)
	if err != nil {
		t.Fatal(err)
	}
	if at1.Proof.AppHash != blk2.Header.AppHash || at1.Proof.HeaderHeight != 2 || at1.VerifyProof() != nil {
		t.Fatalf("pool after 1: proof against %s (header %d), header 2 carries %s", at1.Proof.AppHash, at1.Proof.HeaderHeight, blk2.Header.AppHash)
	}
	at1.Bonded++
	if err := at1.VerifyProof(); !errors.Is(err, api.ErrProof) {
		t.Fatalf("an altered pool passed its proof: %v", err)
	}
	g, err := c.StakingPool(ctx, api.At(0), false)
	if err != nil || uint64(g.Bonded) != genesisStake || g.Proof != nil {
		t.Fatalf("pool at genesis %+v, %v; want %d bonded and no proof", g, err, genesisStake)
	}

	// The joiner: active from block 1's set on, validating from height 3.
	v, err := c.StakingValidator(ctx, op, api.At(1), true)
	if err != nil {
		t.Fatal(err)
	}
	if v.ConsKey != consKey.PubKey() || v.ConsAddress != consKey.PubKey().Address() || v.Moniker != "joiner" ||
		uint64(v.Tokens) != 7*unit || v.Power != 7 || v.Jailed || v.Tombstoned || v.CreatedHeight != 1 || !v.Active || v.Validating {
		t.Fatalf("validator after 1: %+v; want 7 power, active, not yet validating", v)
	}
	if v.Signing == nil || v.Signing.WindowStart != 1 || v.Signing.MissedInWindow != 0 || uint64(v.Signing.Window) != b.doc.Staking.SignedBlocksWindow {
		t.Fatalf("signing record %+v", v.Signing)
	}
	if err := v.VerifyProof(unit); err != nil {
		t.Fatalf("validator proof: %v", err)
	}
	for _, alter := range []func(*api.ValidatorStatus){
		func(v *api.ValidatorStatus) { v.Jailed = true },
		func(v *api.ValidatorStatus) { v.Power++ },
		func(v *api.ValidatorStatus) { v.Active = false },
		func(v *api.ValidatorStatus) { v.Signing.MissedInWindow = 3 },
		func(v *api.ValidatorStatus) { v.Signing = nil },
	} {
		lie := *v
		sig := *v.Signing
		lie.Signing = &sig
		alter(&lie)
		if err := lie.VerifyProof(unit); !errors.Is(err, api.ErrProof) {
			t.Errorf("an altered validator %+v passed its proof: %v", lie, err)
		}
	}
	b.commit(t)
	if v, err = c.StakingValidator(ctx, op, api.Latest, false); err != nil || !v.Validating || v.Height != 3 || v.Proof != nil {
		t.Fatalf("validator after 3: %+v, %v; want validating", v, err)
	}

	// Validators by power: the genesis pair (10 each) then the joiner (7).
	all, err := c.AllValidatorsByPower(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].Power != 10 || all[1].Power != 10 || all[2].Operator != op || !all[2].Active {
		t.Fatalf("validators by power: %+v", all)
	}
	if c0, c1 := all[0].ConsAddress, all[1].ConsAddress; bytes.Compare(c0[:], c1[:]) > 0 {
		t.Fatalf("ties are not in consensus-address order: %s before %s", c0, c1)
	}
	var paged []crypto.Address
	var from []byte
	for range 4 {
		page, err := c.ValidatorsByPower(ctx, from, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Validators {
			paged = append(paged, v.Operator)
		}
		if from = page.Next; from == nil {
			break
		}
	}
	if len(paged) != 3 || paged[0] != all[0].Operator || paged[1] != all[1].Operator || paged[2] != op {
		t.Fatalf("pages of one: %v, want the order of %+v", paged, all)
	}

	// Delegations, with their token value, both ways, and paged.
	byDel, err := c.DelegationsByDelegator(ctx, del, crypto.Address{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(byDel.Delegations) != 1 || byDel.Delegations[0].Operator != op || uint64(byDel.Delegations[0].Tokens) != 2*unit || byDel.NextAfter != nil {
		t.Fatalf("delegations of %s: %+v", del, byDel)
	}
	byVal, err := c.DelegationsByValidator(ctx, op, crypto.Address{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := map[crypto.Address]uint64{op: 5 * unit, del: 2 * unit}
	if len(byVal.Delegations) != 2 || !slices.IsSortedFunc(byVal.Delegations, func(a, b api.Delegation) int { return bytes.Compare(a.Delegator[:], b.Delegator[:]) }) {
		t.Fatalf("delegations to %s: %+v", op, byVal)
	}
	for _, d := range byVal.Delegations {
		if uint64(d.Tokens) != want[d.Delegator] || d.Operator != op {
			t.Fatalf("delegation %+v, want %d tokens", d, want[d.Delegator])
		}
	}
	first, err := c.DelegationsByValidator(ctx, op, crypto.Address{}, 1)
	if err != nil || len(first.Delegations) != 1 || first.NextAfter == nil || *first.NextAfter != first.Delegations[0].Delegator {
		t.Fatalf("first page of one: %+v, %v", first, err)
	}
	second, err := c.DelegationsByValidator(ctx, op, *first.NextAfter, 1)
	if err != nil || len(second.Delegations) != 1 || second.NextAfter != nil || second.Delegations[0].Delegator == first.Delegations[0].Delegator {
		t.Fatalf("second page of one: %+v, %v", second, err)
	}

	// An undelegation leaves an unbonding entry.
	blk := b.commit(t, ledgertest.Undelegate(k1, op, unit/2, 1, 1))
	ubd, err := c.Unbondings(ctx, del, crypto.Address{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	completion := blk.Height() + b.doc.Staking.UnbondingHeights
	if len(ubd.Unbondings) != 1 || ubd.Unbondings[0].Operator != op || len(ubd.Unbondings[0].Entries) != 1 {
		t.Fatalf("unbondings: %+v", ubd)
	}
	if e := ubd.Unbondings[0].Entries[0]; uint64(e.Balance) != unit/2 || uint64(e.CompletionHeight) != completion || uint64(e.CreationHeight) != blk.Height() {
		t.Fatalf("unbonding entry %+v, want %d completing at %d", e, unit/2, completion)
	}
	if p, err := c.StakingPool(ctx, api.Latest, false); err != nil || uint64(p.Unbonding) != unit/2 || uint64(p.Bonded) != genesisStake+7*unit-unit/2 {
		t.Fatalf("pool after the undelegation: %+v, %v", p, err)
	}
	// The joiner's power fell to 6: the next set change is that block's,
	// none came for the blocks between, which changed nothing.
	if change, err = sets.NextValidatorSet(ctx); err != nil {
		t.Fatal(err)
	}
	if uint64(change.BlockHeight) != blk.Height() || uint64(change.Height) != blk.Height()+2 || change.TotalPower != 26 {
		t.Fatalf("set change %+v, want block %d's (total power 26)", change, blk.Height())
	}
	_ = blk1
}

// Bad staking parameters get their documented errors.
func TestStakingParamErrors(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{})
	op := b.chain.Genesis.Validators.Get(0).Operator
	for _, tc := range []struct {
		method string
		params []any
		code   int
		want   string
	}{
		{api.MethodStakingPool, []any{"5"}, api.CodeNotFound, "above the latest committed height"},
		{api.MethodStakingPool, []any{"latest", "yes"}, api.CodeInvalidParams, `"prove"`},
		{api.MethodGetValidator, []any{}, api.CodeInvalidParams, `missing required parameter "operator"`},
		{api.MethodGetValidator, []any{"ldg1nope"}, api.CodeInvalidParams, `"operator"`},
		{api.MethodGetValidator, []any{b.addr(2)}, api.CodeNotFound, "no validator is operated by"},
		{api.MethodGetValidator, []any{op, "9"}, api.CodeNotFound, "above the latest committed height"},
		{api.MethodValidatorsByPower, []any{nil, 0}, api.CodeInvalidParams, "want 1 to 100"},
		{api.MethodValidatorsByPower, []any{nil, 101}, api.CodeInvalidParams, "want 1 to 100"},
		{api.MethodValidatorsByPower, []any{"00ff"}, api.CodeInvalidParams, `parameter "from"`},
		{api.MethodValidatorsByPower, []any{"zz"}, api.CodeInvalidParams, `parameter "from"`},
		{api.MethodDelegationsByDelegator, []any{b.addr(0), nil, 1000}, api.CodeInvalidParams, "want 1 to 100"},
		{api.MethodDelegationsByValidator, []any{op, "ldg1bad"}, api.CodeInvalidParams, `"after"`},
		{api.MethodGetUnbondings, []any{}, api.CodeInvalidParams, `missing required parameter "delegator"`},
	} {
		r := ts.callRaw(t, tc.method, tc.params...)
		if r.errCode() != tc.code || !strings.Contains(r.Error.Message, tc.want) {
			t.Errorf("%s %v: %+v, want code %d saying %q", tc.method, tc.params, r.Error, tc.code, tc.want)
		}
	}
	// Genesis answers: the genesis validator with its genesis stake.
	var v api.ValidatorStatus
	ts.call(t, api.MethodGetValidator, &v, op, "0")
	if v.Power != 10 || !v.Active || !v.Validating || v.Operator != op {
		t.Fatalf("genesis validator: %+v", v)
	}
	var empty api.Delegations
	ts.call(t, api.MethodDelegationsByDelegator, &empty, b.addr(2))
	if empty.Delegations == nil || len(empty.Delegations) != 0 {
		t.Fatalf("no delegations: %+v (want an empty list, not null)", empty)
	}
}
