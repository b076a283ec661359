package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// churnBound bounds how long a churn fault tries to get its staking
// transaction committed.
const churnBound = 30 * time.Second

// churn carries out one half of a churn fault: at the injection (kind
// TxDelegate) the staker delegates f.Stake units of power to validator
// f.Nodes[0]; at the heal (TxUndelegate) it takes them back. It waits for
// the transaction's commit (re-submitting the same signed bytes to the
// validators in turn, as the workload does), then for the height at which
// the set change is in force (two heights after its block), and checks
// that the validator's power there moved by exactly f.Stake. What it
// finds goes into rec; an error means the transaction was not committed.
func (r *runner) churn(ctx context.Context, rec *FaultRecord, f Fault, kind ledger.TxKind) error {
	of := f.Nodes[0]
	if kind == ledger.TxDelegate {
		// An earlier twin fault tombstoned its validator for good (and
		// jailed ones sit out): churn then moves to the first validator
		// still in the set, so it changes the set all the same.
		var err error
		if of, err = r.churnTarget(ctx, of); err != nil {
			return err
		}
		if of != f.Nodes[0] {
			r.logf("churn: node%d is out of the set; delegating to node%d", f.Nodes[0], of)
		}
		rec.Details["target"] = of
	} else {
		if _, ok := rec.Details["delegate_height"]; !ok {
			return nil // nothing was delegated
		}
		of = rec.Details["target"].(int)
	}
	op, cons := r.operatorOf(of)
	amount := f.Stake * r.doc.Staking.PowerUnit
	deadline := time.Now().Add(churnBound)
	var tx *ledger.Tx
	var got *api.Transaction
	var last error
	for k := 0; ; k++ {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s of %d tokens to node%d not committed within %s: %v", kind, amount, of, churnBound, last)
		}
		cl := r.c.Client((of + k) % r.c.Validators())
		cctx, cancel := context.WithTimeout(ctx, sendWait+time.Second)
		if tx == nil {
			acc, err := cl.Account(cctx, r.staker.PubKey().Address())
			if err == nil {
				tx = &ledger.Tx{Kind: kind, ChainID: r.doc.ChainID, To: op, Amount: amount, Fee: 1, Nonce: uint64(acc.Nonce)}
				tx.Sign(r.staker)
			}
			last = err
		}
		if tx != nil {
			got, last = cl.SendTxAndWait(cctx, tx, sendWait)
		}
		cancel()
		if tx != nil && last == nil && got.Status == api.TxCommitted && got.Height != nil {
			break
		}
		if last == nil {
			last = fmt.Errorf("status %s", got.Status)
		}
		if err := sleepUntil(ctx, time.Now().Add(retryPause)); err != nil {
			return err
		}
	}
	c := uint64(*got.Height)
	name := "delegate"
	if kind == ledger.TxUndelegate {
		name = "undelegate"
	}
	rec.Details[name+"_height"] = c
	if got.Failed {
		reason := ""
		if got.Receipt != nil {
			reason = got.Receipt.Error
		}
		rec.Violations = append(rec.Violations, fmt.Sprintf("%s of %d tokens to node%d failed at height %d: %s", name, amount, of, c, reason))
		if kind == ledger.TxDelegate {
			delete(rec.Details, "delegate_height")
		}
		return nil
	}
	r.logf("churn: %s of power %d to node%d committed at height %d", name, f.Stake, of, c)
	// The set of height c+2 is the first the change is in force in.
	before, err := r.powerAt(ctx, of, cons, c)
	if err != nil {
		rec.Violations = append(rec.Violations, err.Error())
		return nil
	}
	after, err := r.powerAt(ctx, of, cons, c+2)
	if err != nil {
		rec.Violations = append(rec.Violations, err.Error())
		return nil
	}
	want := before + f.Stake
	if kind == ledger.TxUndelegate {
		want = before - f.Stake
	}
	rec.Details[name+"_power"] = []uint64{before, after}
	if after != want {
		rec.Violations = append(rec.Violations, fmt.Sprintf(
			"%s of power %d: node%d had power %d at height %d and %d at height %d, want %d", name, f.Stake, of, before, c, after, c+2, want))
	}
	return nil
}

// powerAt waits until validator of (which a churn fault does not stop)
// has height h and returns the power of the validator with consensus address cons in
// the set of height h (0 when it is not in it).
func (r *runner) powerAt(ctx context.Context, of int, cons crypto.Address, h uint64) (uint64, error) {
	if _, err := r.mon.waitFor(ctx, recoveryBound, func(v view) bool { return v.height[of] >= h }); err != nil {
		return 0, fmt.Errorf("churn: node%d did not reach height %d: %v", of, h, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	vals, err := r.c.Client(of).Validators(cctx, api.At(h))
	if err != nil {
		return 0, fmt.Errorf("churn: validators of height %d: %v", h, err)
	}
	i := slices.IndexFunc(vals.Validators, func(v api.Validator) bool { return v.Address == cons })
	if i < 0 {
		return 0, nil
	}
	return uint64(vals.Validators[i].Power), nil
}

// operatorOf returns genesis validator i's operator and consensus address.
func (r *runner) operatorOf(i int) (op, cons crypto.Address) {
	gv := r.doc.Validators[i]
	op, cons = gv.Operator, gv.PubKey.Address()
	if op.IsZero() {
		op = cons
	}
	return op, cons
}

// churnTarget returns want if its validator is in the next height's set,
// else the first validator that is (asking each validator in turn until
// one answers).
func (r *runner) churnTarget(ctx context.Context, want int) (int, error) {
	var last error
	for k := 0; k < r.c.Validators(); k++ {
		cl := r.c.Client((want + k) % r.c.Validators())
		validating := func(i int) (bool, error) {
			op, _ := r.operatorOf(i)
			cctx, cancel := context.WithTimeout(ctx, callFor*5)
			defer cancel()
			v, err := cl.StakingValidator(cctx, op, api.Latest, false)
			if err != nil {
				return false, err
			}
			return v.Validating && !v.Jailed, nil
		}
		ok, err := validating(want)
		if err != nil {
			last = err
			continue
		}
		if ok {
			return want, nil
		}
		for i := 0; i < r.c.Validators(); i++ {
			if ok, err := validating(i); err == nil && ok {
				return i, nil
			}
		}
		return 0, errors.New("churn: no validator is in the set")
	}
	return 0, fmt.Errorf("churn: no validator answers: %v", last)
}
