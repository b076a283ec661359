package staking

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
)

// MaxPage bounds the items of one page of a listing query.
const MaxPage = 100

// Query answers read-only questions about a staking state (a committed
// one, or a Staking's staged one) for the RPC. Listings come in pages of
// at most MaxPage items after a given address (zero: from the start), with
// more reporting whether items follow.
type Query struct{ r Reader }

// NewQuery returns a Query over r.
func NewQuery(r Reader) Query { return Query{r: r} }

func qload[T any](q Query, k []byte, dec func([]byte) (T, error)) (T, bool, error) {
	var zero T
	b, err := q.r.Get(k)
	if err != nil {
		return zero, false, fmt.Errorf("staking: read %q: %w", k, err)
	}
	if b == nil {
		return zero, false, nil
	}
	v, err := dec(b)
	if err != nil {
		return zero, false, fmt.Errorf("staking: record %q: %w", k, err)
	}
	return v, true, nil
}

// Pool returns the pool (zero before genesis).
func (q Query) Pool() (Pool, error) {
	p, _, err := qload(q, PoolKey, DecodePool)
	return p, err
}

// Active returns the active set last computed.
func (q Query) Active() ([]Member, error) {
	b, err := q.r.Get(ActiveKey)
	if err != nil || b == nil {
		return nil, err
	}
	return DecodeActive(b)
}

// Validator returns the validator operated by op.
func (q Query) Validator(op crypto.Address) (Validator, bool, error) {
	return qload(q, ValidatorKey(op), DecodeValidator)
}

// ValidatorByCons returns the validator whose consensus address is cons.
func (q Query) ValidatorByCons(cons crypto.Address) (Validator, bool, error) {
	rec, ok, err := qload(q, ConsRecordKey(cons), DecodeConsRecord)
	if err != nil || !ok {
		return Validator{}, false, err
	}
	return q.Validator(rec.Operator)
}

// ConsRecord returns the record of a consensus address: which validator it
// served and whether it is tombstoned.
func (q Query) ConsRecord(cons crypto.Address) (ConsRecord, bool, error) {
	return qload(q, ConsRecordKey(cons), DecodeConsRecord)
}

// Validators returns a page of validators in operator order.
func (q Query) Validators(after crypto.Address, limit int) (vals []Validator, more bool, err error) {
	limit = pageLimit(limit)
	err = q.page([]byte(prefixVal), after, func(k, v []byte) (bool, error) {
		if len(vals) == limit {
			more = true
			return false, nil
		}
		val, err := DecodeValidator(v)
		if err != nil {
			return false, fmt.Errorf("staking: record %q: %w", k, err)
		}
		vals = append(vals, val)
		return true, nil
	})
	return vals, more, err
}

// DelegationInfo is a delegation with what its shares are worth now.
type DelegationInfo struct {
	Delegator crypto.Address `json:"delegator"`
	Operator  crypto.Address `json:"operator"`
	Shares    uint64         `json:"shares,string"`
	Tokens    uint64         `json:"tokens,string"` // the shares' worth, rounded down
}

// Delegation returns del's delegation to the validator op.
func (q Query) Delegation(del, op crypto.Address) (DelegationInfo, bool, error) {
	d, ok, err := qload(q, DelegationKey(del, op), DecodeDelegation)
	if err != nil || !ok {
		return DelegationInfo{}, false, err
	}
	return q.delegationInfo(del, op, d)
}

func (q Query) delegationInfo(del, op crypto.Address, d Delegation) (DelegationInfo, bool, error) {
	v, ok, err := q.Validator(op)
	if err != nil {
		return DelegationInfo{}, false, err
	}
	if !ok || d.Shares > v.Shares {
		return DelegationInfo{}, false, errCorrupt("delegation of %s to %s: %d shares of a validator with %d", del, op, d.Shares, v.Shares)
	}
	return DelegationInfo{Delegator: del, Operator: op, Shares: d.Shares, Tokens: tokensForShares(d.Shares, v.Tokens, v.Shares)}, true, nil
}

// DelegationsByDelegator returns a page of del's delegations, in operator
// order after the operator after.
func (q Query) DelegationsByDelegator(del, after crypto.Address, limit int) (out []DelegationInfo, more bool, err error) {
	limit = pageLimit(limit)
	err = q.page(key(prefixDel, del[:]), after, func(k, v []byte) (bool, error) {
		if len(out) == limit {
			more = true
			return false, nil
		}
		d2, op, err := parsePair(k, prefixDel)
		if err != nil {
			return false, err
		}
		d, err := DecodeDelegation(v)
		if err != nil {
			return false, fmt.Errorf("staking: record %q: %w", k, err)
		}
		info, _, err := q.delegationInfo(d2, op, d)
		out = append(out, info)
		return true, err
	})
	return out, more, err
}

// DelegationsByValidator returns a page of the delegations to the
// validator op, in delegator order after the delegator after.
func (q Query) DelegationsByValidator(op, after crypto.Address, limit int) (out []DelegationInfo, more bool, err error) {
	limit = pageLimit(limit)
	var dels []crypto.Address
	err = q.page(key(prefixDelV, op[:]), after, func(k, _ []byte) (bool, error) {
		if len(dels) == limit {
			more = true
			return false, nil
		}
		_, del, err := parsePair(k, prefixDelV)
		dels = append(dels, del)
		return true, err
	})
	if err != nil {
		return nil, false, err
	}
	for _, del := range dels {
		info, ok, err := q.Delegation(del, op)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, false, errCorrupt("index names a delegation of %s to %s that does not exist", del, op)
		}
		out = append(out, info)
	}
	return out, more, nil
}

// UnbondingInfo is one (delegator, validator) pair's unbonding entries.
type UnbondingInfo struct {
	Delegator crypto.Address   `json:"delegator"`
	Operator  crypto.Address   `json:"operator"`
	Entries   []UnbondingEntry `json:"entries"`
}

// Unbondings returns a page of del's unbonding entries, grouped by
// validator in operator order after the operator after.
func (q Query) Unbondings(del, after crypto.Address, limit int) (out []UnbondingInfo, more bool, err error) {
	limit = pageLimit(limit)
	err = q.page(key(prefixUbd, del[:]), after, func(k, v []byte) (bool, error) {
		if len(out) == limit {
			more = true
			return false, nil
		}
		d, op, err := parsePair(k, prefixUbd)
		if err != nil {
			return false, err
		}
		u, err := DecodeUnbonding(v)
		if err != nil {
			return false, fmt.Errorf("staking: record %q: %w", k, err)
		}
		out = append(out, UnbondingInfo{Delegator: d, Operator: op, Entries: u.Entries})
		return true, nil
	})
	return out, more, err
}

// SigningInfo returns the signing record of a consensus address.
func (q Query) SigningInfo(cons crypto.Address) (SigningInfo, bool, error) {
	return qload(q, SigningInfoKey(cons), DecodeSigningInfo)
}

func pageLimit(limit int) int {
	if limit <= 0 || limit > MaxPage {
		return MaxPage
	}
	return limit
}

// page calls fn for the entries under prefix whose address after the
// prefix is above after (every entry when after is zero), until fn
// returns false.
func (q Query) page(prefix []byte, after crypto.Address, fn func(k, v []byte) (bool, error)) error {
	start := append(bytes.Clone(prefix), after[:]...)
	visit := func(k, v []byte) error {
		if !after.IsZero() && bytes.Compare(k[:min(len(k), len(start))], start) <= 0 {
			return nil
		}
		goOn, err := fn(k, v)
		if err != nil {
			return err
		}
		if !goOn {
			return errStop
		}
		return nil
	}
	var err error
	if sk, ok := q.r.(Seeker); ok && !after.IsZero() {
		err = sk.IterateFrom(prefix, start, visit)
	} else {
		err = q.r.Iterate(prefix, visit)
	}
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// Seeker is an optional capability of a Reader: iteration that starts at
// the first key under prefix not below start, so a page of a long listing
// costs the page. Queries use it when the Reader has it.
type Seeker interface {
	IterateFrom(prefix, start []byte, fn func(key, value []byte) error) error
}

// ErrBadPosition is wrapped by the error ValidatorsByPower returns for a
// position it did not hand out.
var ErrBadPosition = errors.New("staking: not a position of the validator listing")

// ValidatorsByPower returns a page of at most limit validators (1 to
// MaxPage), every validator once across the pages: first those that may
// be in the active set, by power descending and then consensus address
// ascending (the order the active set is taken in, so the first
// MaxValidators of them are the active set as of the state read), then
// the others (jailed, tombstoned, or below one power unit) in operator
// order. from is where the page starts: nil for the first page, else the
// next of the page before. next is nil when the listing is complete.
// Positions are opaque (they are keys of the state); one that is not
// well-formed is refused with ErrBadPosition.
func (q Query) ValidatorsByPower(powerUnit uint64, from []byte, limit int) (vals []Validator, next []byte, err error) {
	limit = pageLimit(limit)
	if powerUnit == 0 {
		return nil, nil, errors.New("staking: power unit 0")
	}
	eligibleFrom, othersFrom := []byte(nil), []byte(nil)
	switch {
	case from == nil:
	case bytes.HasPrefix(from, []byte(prefixPow)):
		if _, _, err := parsePowerKey(from); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrBadPosition, err)
		}
		eligibleFrom = from
	case bytes.HasPrefix(from, []byte(prefixVal)):
		if _, err := parseSingle(from, prefixVal); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrBadPosition, err)
		}
		othersFrom = from
	default:
		return nil, nil, ErrBadPosition
	}
	if othersFrom == nil {
		err = q.scan([]byte(prefixPow), eligibleFrom, func(k, v []byte) (bool, error) {
			if len(vals) == limit {
				next = bytes.Clone(k)
				return false, nil
			}
			if _, _, err := parsePowerKey(k); err != nil {
				return false, err
			}
			rec, err := DecodePowerRecord(v)
			if err != nil {
				return false, errCorrupt("power index %q: %v", k, err)
			}
			val, ok, err := q.Validator(rec.Operator)
			if err != nil {
				return false, err
			}
			if !ok {
				return false, errCorrupt("power index %q names %s, which has no validator record", k, rec.Operator)
			}
			vals = append(vals, val)
			return true, nil
		})
		if err != nil || next != nil {
			return vals, next, err
		}
	}
	err = q.scan([]byte(prefixVal), othersFrom, func(k, v []byte) (bool, error) {
		val, err := DecodeValidator(v)
		if err != nil {
			return false, fmt.Errorf("staking: record %q: %w", k, err)
		}
		if val.eligible(powerUnit) {
			return true, nil // listed by power
		}
		if len(vals) == limit {
			next = bytes.Clone(k)
			return false, nil
		}
		vals = append(vals, val)
		return true, nil
	})
	return vals, next, err
}

// scan calls fn for the entries under prefix from the key start on (every
// entry when start is nil), until fn returns false.
func (q Query) scan(prefix, start []byte, fn func(k, v []byte) (bool, error)) error {
	visit := func(k, v []byte) error {
		if start != nil && bytes.Compare(k, start) < 0 {
			return nil
		}
		goOn, err := fn(k, v)
		if err != nil {
			return err
		}
		if !goOn {
			return errStop
		}
		return nil
	}
	var err error
	if sk, ok := q.r.(Seeker); ok && start != nil {
		err = sk.IterateFrom(prefix, start, visit)
	} else {
		err = q.r.Iterate(prefix, visit)
	}
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}
