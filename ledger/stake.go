package ledger

import (
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger/staking"
)

// ErrTxFailed is wrapped by a receipt's error: the transaction was
// included and charged its fee and nonce, but what it asked for was
// refused by the staking rules (it did nothing else).
var ErrTxFailed = errors.New("transaction failed")

// records adapts a StateReader to the staking module's reader.
type records struct{ r StateReader }

func (x records) Get(k []byte) ([]byte, error) { return x.r.Record(k) }
func (x records) Iterate(prefix []byte, fn func(k, v []byte) error) error {
	return x.r.IterateRecords(prefix, fn)
}

// stake carries out a staking transaction on stk for the block at height
// h. The sender's account has paid the fee and used its nonce; from is
// that account, which a bond also debits. A refusal of the staking rules
// is returned wrapped in staking.ErrRejected: the transaction fails, the
// block stays valid. Any other error is a failure to read the state.
func stake(stk *staking.Staking, h uint64, tx *Tx, from *Account) error {
	sender := tx.Sender()
	var err error
	switch tx.Kind {
	case TxCreateValidator:
		if err = stk.CreateValidator(h, sender, tx.ConsKey, tx.Moniker, tx.Amount); err == nil {
			from.Balance -= tx.Amount
		}
	case TxDelegate:
		if err = stk.Delegate(h, sender, tx.To, tx.Amount); err == nil {
			from.Balance -= tx.Amount
		}
	case TxUndelegate:
		_, err = stk.Undelegate(h, sender, tx.To, tx.Amount)
	case TxUnjail:
		err = stk.Unjail(h, sender)
	default:
		return fmt.Errorf("%w: %s is not a staking kind", ErrUnknownTxKind, tx.Kind)
	}
	return err
}

// endBlock runs the staking module's duties for block b (slashing the
// double signers its evidence proves, the signing record of its last
// commit, downtime jailing, matured unbondings paid through credit) and
// records in res the state records the block changed and the validator set
// of height h+2 if it changed.
func endBlock(s *State, b *Block, doubleSigns []staking.Infraction, stk *staking.Staking, res *Result, credit func(string, crypto.Address, uint64) error) error {
	h := b.Height()
	info := staking.BlockInfo{Height: h, DoubleSigns: doubleSigns}
	if b.LastCommit != nil {
		vals := s.LastValidators
		info.LastSet = make([]staking.SetMember, vals.Size())
		info.Signed = make([]bool, vals.Size())
		for i := range info.LastSet {
			v := vals.Get(i)
			info.LastSet[i] = staking.SetMember{ConsAddr: v.Address(), Power: v.Power}
		}
		for _, sig := range b.LastCommit.Sigs {
			info.Signed[sig.ValidatorIndex] = true // Verify checked the index
		}
	}
	payouts, err := stk.EndBlock(info)
	if err != nil {
		return fmt.Errorf("staking: %w", err)
	}
	for _, p := range payouts {
		if err := credit("unbonding delegator", p.Account, p.Amount); err != nil {
			return err
		}
	}
	members, changed, err := stk.ActiveSet()
	if err != nil {
		return fmt.Errorf("staking: active set: %w", err)
	}
	// A set with no member could decide nothing: the chain keeps its set
	// until some validator can serve again (unjails or bonds).
	if changed && len(members) > 0 {
		vals := make([]Validator, len(members))
		for i, m := range members {
			vals[i] = Validator{PubKey: m.ConsKey, Power: m.Power, Name: m.Moniker, Operator: m.Operator}
		}
		next, err := NewValidatorSet(vals)
		if err != nil {
			return fmt.Errorf("staking: active set: %w", err)
		}
		if !next.Equal(s.NextValidators) {
			res.NextValidators = next
		}
	}
	for _, c := range stk.Changes() { // sorted by key
		res.Records = append(res.Records, Record{Key: c.Key, Value: c.Value})
	}
	return nil
}

// StakeHeld is every token the staking module holds or burned: bonded,
// unbonding and slashed. With the balances it sums to State.TotalSupply.
func StakeHeld(r StateReader) (uint64, error) {
	pool, err := staking.NewQuery(records{r}).Pool()
	if err != nil {
		return 0, err
	}
	return pool.Bonded + pool.Unbonding + pool.Burned, nil
}
