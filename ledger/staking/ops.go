package staking

import (
	"math"

	"github.com/ledgerd/ledgerd/crypto"
)

// CreateValidator registers a validator operated by operator, signing with
// consKey, and bonds selfBond tokens as the operator's own delegation (one
// share per token). The caller has taken selfBond from the operator's
// account. Rejected when: the operator already runs a validator; the
// consensus key serves or served a validator (tombstoned or not); the
// self-bond is below one power unit; the moniker breaks CheckMoniker;
// MaxCandidates validators exist.
func (s *Staking) CreateValidator(height uint64, operator crypto.Address, consKey crypto.PubKey, moniker string, selfBond uint64) error {
	if s.perr != nil {
		return s.perr
	}
	switch {
	case operator.IsZero():
		return reject("create-validator: zero operator address")
	case consKey.IsZero():
		return reject("create-validator: zero consensus key")
	case selfBond < s.p.PowerUnit:
		return reject("create-validator: self-bond %d is below one power unit (%d tokens)", selfBond, s.p.PowerUnit)
	}
	if err := CheckMoniker(moniker); err != nil {
		return reject("create-validator: %v", err)
	}
	if _, exists, err := s.validator(operator); err != nil {
		return err
	} else if exists {
		return reject("create-validator: %s already operates a validator", operator)
	}
	cons := consKey.Address()
	if rec, used, err := s.consRecord(cons); err != nil {
		return err
	} else if used && rec.Tombstoned {
		return reject("create-validator: consensus key %s is tombstoned (double sign): it can never validate again", consKey)
	} else if used {
		return reject("create-validator: consensus key %s already served validator %s; a key serves one validator, once", consKey, rec.Operator)
	}
	pool, err := s.pool()
	if err != nil {
		return err
	}
	if pool.Candidates >= MaxCandidates {
		return reject("create-validator: %d validators exist, the most there can be", pool.Candidates)
	}
	if pool.Bonded > math.MaxUint64-selfBond {
		return reject("create-validator: bonded tokens would overflow")
	}

	v := Validator{
		Operator: operator, ConsKey: consKey, Moniker: moniker,
		Tokens: selfBond, Shares: selfBond, CreatedHeight: height,
	}
	pool.Bonded += selfBond
	pool.Candidates++
	s.setPool(pool)
	s.putValidator(nil, &v)
	s.ov.set(ConsRecordKey(cons), ConsRecord{Operator: operator}.Encode())
	s.setDelegation(operator, operator, Delegation{Shares: selfBond})
	return s.resetSigning(cons, height)
}

// Delegate bonds amount tokens from delegator to the validator op, for
// floor(amount * Shares / Tokens) of its shares. The caller has taken
// amount from the delegator's account. Rejected when: the amount is zero;
// no validator is operated by op; it is tombstoned; its shares are
// worthless (all its tokens slashed); the amount buys no share; a total
// would overflow.
func (s *Staking) Delegate(height uint64, delegator, op crypto.Address, amount uint64) error {
	if s.perr != nil {
		return s.perr
	}
	if amount == 0 {
		return reject("delegate: zero amount")
	}
	v, ok, err := s.validator(op)
	if err != nil {
		return err
	}
	switch {
	case !ok:
		return reject("delegate: no validator is operated by %s", op)
	case v.Tombstoned:
		return reject("delegate: validator %s is tombstoned and can never validate again", op)
	case v.Tokens == 0 && v.Shares != 0:
		return reject("delegate: validator %s has lost all its tokens; its shares are worthless", op)
	}
	shares, fits := sharesForTokens(amount, v.Tokens, v.Shares)
	switch {
	case !fits:
		return reject("delegate: %d tokens buy more shares of validator %s than can be counted", amount, op)
	case shares == 0:
		return reject("delegate: %d tokens buy no share of validator %s (a share is worth more than that)", amount, op)
	case v.Shares > math.MaxUint64-shares:
		return reject("delegate: validator %s's shares would overflow", op)
	case v.Tokens > math.MaxUint64-amount:
		return reject("delegate: validator %s's tokens would overflow", op)
	}
	d, _, err := s.delegation(delegator, op)
	if err != nil {
		return err
	}
	pool, err := s.pool()
	if err != nil {
		return err
	}
	if pool.Bonded > math.MaxUint64-amount {
		return reject("delegate: bonded tokens would overflow")
	}
	old := v
	v.Tokens += amount
	v.Shares += shares
	d.Shares += shares
	pool.Bonded += amount
	s.setPool(pool)
	s.putValidator(&old, &v)
	s.setDelegation(delegator, op, d)
	return nil
}

// Undelegate unbonds amount tokens' worth of delegator's shares of the
// validator op: it gives up ceil(amount * Shares / Tokens) shares (the
// whole delegation if less than one token's worth would be left) and
// receives their worth rounded down, at least amount, in a new unbonding
// entry paid at the returned completion height (height plus
// UnbondingHeights). When the operator's own delegation falls below one
// power unit, the validator is jailed, as Cosmos does below the minimum
// self-delegation. Rejected when: the amount is zero; there is no such
// validator or delegation; the delegation is worth less than amount; the
// pair has MaxEntries entries already (and none created at this height).
func (s *Staking) Undelegate(height uint64, delegator, op crypto.Address, amount uint64) (uint64, error) {
	if s.perr != nil {
		return 0, s.perr
	}
	if amount == 0 {
		return 0, reject("undelegate: zero amount")
	}
	v, ok, err := s.validator(op)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, reject("undelegate: no validator is operated by %s", op)
	}
	d, ok, err := s.delegation(delegator, op)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, reject("undelegate: %s has no delegation to validator %s", delegator, op)
	}
	if d.Shares > v.Shares {
		return 0, errCorrupt("delegation of %s to %s holds %d shares of %d", delegator, op, d.Shares, v.Shares)
	}
	worth := tokensForShares(d.Shares, v.Tokens, v.Shares)
	if amount > worth {
		return 0, reject("undelegate: the delegation of %s to %s is worth %d tokens, %d asked", delegator, op, worth, amount)
	}
	completion := height + s.p.UnbondingHeights
	if completion < height {
		return 0, reject("undelegate: completion height overflows")
	}
	u, _, err := s.unbonding(delegator, op)
	if err != nil {
		return 0, err
	}
	at := -1
	for i, e := range u.Entries {
		if e.CreationHeight == height {
			at = i
		}
	}
	if at < 0 && len(u.Entries) >= int(s.p.MaxEntries) {
		return 0, reject("undelegate: %s has %d unbonding entries from %s, the most allowed; wait until one matures (next at height %d)",
			delegator, len(u.Entries), op, u.Entries[0].CompletionHeight)
	}
	pool, err := s.pool()
	if err != nil {
		return 0, err
	}

	// amount <= worth = floor(d*T/S) implies ceil(amount*S/T) <= d.
	need, _ := mulDivCeil(amount, v.Shares, v.Tokens)
	if left := d.Shares - need; left > 0 && tokensForShares(left, v.Tokens, v.Shares) == 0 {
		need = d.Shares // leave no delegation worth nothing
	}
	paid := tokensForShares(need, v.Tokens, v.Shares)
	if need == v.Shares {
		paid = v.Tokens // the last shares out take every token left
	}
	if pool.Bonded < paid || pool.Unbonding > math.MaxUint64-paid {
		return 0, errCorrupt("pool %+v cannot move %d tokens to unbonding", pool, paid)
	}

	old := v
	v.Tokens -= paid
	v.Shares -= need
	d.Shares -= need
	if delegator == op && !v.Jailed && tokensForShares(d.Shares, v.Tokens, v.Shares) < s.p.PowerUnit {
		v.Jailed = true // below the minimum self-bond; Unjail once it is restored
	}
	pool.Bonded -= paid
	pool.Unbonding += paid
	if at >= 0 {
		e := &u.Entries[at]
		e.InitialBalance += paid
		e.Balance += paid
	} else {
		u.Entries = append(u.Entries, UnbondingEntry{
			CreationHeight: height, CompletionHeight: completion, InitialBalance: paid, Balance: paid,
		})
	}
	s.setPool(pool)
	s.putValidator(&old, &v)
	s.setDelegation(delegator, op, d)
	s.setUnbonding(delegator, op, &u)
	s.ov.set(queueKey(completion, delegator, op), marker)
	return completion, nil
}

// Unjail lets the jailed validator operated by op back into the running
// for the active set. Rejected when: there is no such validator; it is not
// jailed; it is tombstoned; height is below its JailedUntil; the
// operator's own delegation is worth less than one power unit.
func (s *Staking) Unjail(height uint64, op crypto.Address) error {
	if s.perr != nil {
		return s.perr
	}
	v, ok, err := s.validator(op)
	if err != nil {
		return err
	}
	switch {
	case !ok:
		return reject("unjail: no validator is operated by %s", op)
	case v.Tombstoned:
		return reject("unjail: validator %s is tombstoned (double sign) and can never be unjailed", op)
	case !v.Jailed:
		return reject("unjail: validator %s is not jailed", op)
	case height < v.JailedUntil:
		return reject("unjail: validator %s is jailed until height %d (now %d)", op, v.JailedUntil, height)
	}
	d, _, err := s.delegation(op, op)
	if err != nil {
		return err
	}
	if self := tokensForShares(d.Shares, v.Tokens, v.Shares); self < s.p.PowerUnit {
		return reject("unjail: validator %s's self-bond is worth %d tokens, below one power unit (%d); delegate to it from the operator first", op, self, s.p.PowerUnit)
	}
	old := v
	v.Jailed = false
	s.putValidator(&old, &v)
	return nil
}
