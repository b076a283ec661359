package staking

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
)

// checkPool fails the test unless the state r holds keeps every invariant
// of the package (see checkInvariants) under testParams.
func checkPool(t testing.TB, r Reader) {
	t.Helper()
	if err := checkInvariants(r, testParams()); err != nil {
		t.Fatal(err)
	}
}

// checkInvariants checks the whole state: every record decodes; Pool.Bonded
// is the sum of the validators' tokens and Pool.Unbonding the sum of the
// entries' balances; Pool.Candidates counts the validators; each
// validator's shares are the sum of its delegations'; the power index
// holds exactly the eligible validators at their power; every index entry
// (delegations by validator, unbondings by validator, the maturity queue,
// consensus records) matches the records.
func checkInvariants(r Reader, p Params) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	all := map[string][]byte{}
	if err := r.Iterate([]byte(Prefix), func(k, v []byte) error {
		all[string(k)] = bytes.Clone(v)
		return nil
	}); err != nil {
		return err
	}
	var pool Pool
	if b, ok := all[string(PoolKey)]; ok {
		var err error
		if pool, err = DecodePool(b); err != nil {
			fail("pool: %v", err)
		}
	}
	vals := map[crypto.Address]Validator{}
	shares := map[crypto.Address]uint64{}
	var bonded, unbonding uint64
	pow := map[string][]byte{}
	queue := map[string]bool{}
	for k, v := range all {
		kb := []byte(k)
		switch {
		case k == string(PoolKey):
		case k == string(ActiveKey):
			if _, err := DecodeActive(v); err != nil {
				fail("active: %v", err)
			}
		case hasPrefix(k, prefixVal):
			op, err := parseSingle(kb, prefixVal)
			val, derr := DecodeValidator(v)
			if err != nil || derr != nil || val.Operator != op {
				fail("validator %q: %v %v", k, err, derr)
				continue
			}
			vals[op] = val
			bonded += val.Tokens
			rec, ok := all[string(ConsRecordKey(val.ConsAddr()))]
			if c, err := DecodeConsRecord(rec); !ok || err != nil || c.Operator != op || c.Tombstoned != val.Tombstoned {
				fail("validator %s: consensus record %+v %v", op, c, err)
			}
			if val.eligible(p.PowerUnit) {
				pow[string(powerKey(val.Power(p.PowerUnit), val.ConsAddr()))] = PowerRecord{Operator: op, ConsKey: val.ConsKey, Moniker: val.Moniker}.Encode()
			}
		case hasPrefix(k, prefixCons):
			if _, err := DecodeConsRecord(v); err != nil {
				fail("%q: %v", k, err)
			}
		case hasPrefix(k, prefixPow):
			if _, _, err := parsePowerKey(kb); err != nil {
				fail("%v", err)
			}
			if _, err := DecodePowerRecord(v); err != nil {
				fail("%q: %v", k, err)
			}
		case hasPrefix(k, prefixDel):
			del, op, err := parsePair(kb, prefixDel)
			d, derr := DecodeDelegation(v)
			if err != nil || derr != nil {
				fail("%q: %v %v", k, err, derr)
				continue
			}
			shares[op] += d.Shares
			if _, ok := all[string(delByValKey(op, del))]; !ok {
				fail("delegation %q has no by-validator entry", k)
			}
		case hasPrefix(k, prefixDelV):
			op, del, err := parsePair(kb, prefixDelV)
			if _, ok := all[string(DelegationKey(del, op))]; err != nil || !ok || DecodeMarker(v) != nil {
				fail("by-validator entry %q names no delegation", k)
			}
		case hasPrefix(k, prefixUbd):
			del, op, err := parsePair(kb, prefixUbd)
			u, derr := DecodeUnbonding(v)
			if err != nil || derr != nil {
				fail("%q: %v %v", k, err, derr)
				continue
			}
			for _, e := range u.Entries {
				unbonding += e.Balance
				queue[string(queueKey(e.CompletionHeight, del, op))] = true
			}
			if _, ok := all[string(ubdByValKey(op, del))]; !ok {
				fail("unbonding %q has no by-validator entry", k)
			}
			if _, ok := all[string(ValidatorKey(op))]; !ok {
				fail("unbonding %q outlives its validator (it could not be slashed)", k)
			}
		case hasPrefix(k, prefixUbdV):
			op, del, err := parsePair(kb, prefixUbdV)
			if _, ok := all[string(UnbondingKey(del, op))]; err != nil || !ok || DecodeMarker(v) != nil {
				fail("by-validator entry %q names no unbonding", k)
			}
		case hasPrefix(k, prefixUbdQ):
			if _, _, _, err := parseQueueKey(kb); err != nil || DecodeMarker(v) != nil {
				fail("queue entry %q: %v", k, err)
			}
		case hasPrefix(k, prefixSign):
			if _, err := DecodeSigningInfo(v); err != nil {
				fail("%q: %v", k, err)
			}
		case hasPrefix(k, prefixMiss):
			if _, err := DecodeMissChunk(v); err != nil {
				fail("%q: %v", k, err)
			}
		default:
			fail("unknown key %q", k)
		}
	}
	if pool.Bonded != bonded {
		fail("pool bonded %d, validators hold %d", pool.Bonded, bonded)
	}
	if pool.Unbonding != unbonding {
		fail("pool unbonding %d, entries hold %d", pool.Unbonding, unbonding)
	}
	if int(pool.Candidates) != len(vals) {
		fail("pool counts %d candidates, %d exist", pool.Candidates, len(vals))
	}
	for op, v := range vals {
		if shares[op] != v.Shares {
			fail("validator %s has %d shares, its delegations %d", op, v.Shares, shares[op])
		}
		delete(shares, op)
	}
	for op := range shares {
		fail("delegations to %s, which does not exist", op)
	}
	for k := range all {
		if want, ok := pow[k]; hasPrefix(k, prefixPow) && (!ok || !bytes.Equal(want, all[k])) {
			fail("power index entry %x names no eligible validator, or not as its record does", k)
		}
		if hasPrefix(k, prefixUbdQ) && !queue[k] {
			fail("queue entry %x names no entry", k)
		}
	}
	for k := range pow {
		if _, ok := all[k]; !ok {
			fail("eligible validator with power key %x missing from the index", k)
		}
	}
	for k := range queue {
		if _, ok := all[k]; !ok {
			fail("entry with queue key %x missing from the queue", k)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invariants broken: %v", errs)
	}
	return nil
}

func hasPrefix(k, p string) bool { return len(k) >= len(p) && k[:len(p)] == p }
