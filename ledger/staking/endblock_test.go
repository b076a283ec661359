package staking

import (
	"math"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
)

// blockInfo is a BlockInfo at height in which every member of the active set
// signed but the operators addr(i) listed in missing.
func (c *chain) blockInfo(height uint64, missing ...int) BlockInfo {
	c.t.Helper()
	set, err := c.query().Active()
	must(c.t, err)
	info := BlockInfo{Height: height}
	for _, m := range set {
		info.LastSet = append(info.LastSet, SetMember{ConsAddr: m.ConsKey.Address(), Power: m.Power})
		signed := true
		for _, i := range missing {
			if m.Operator == addr(i) {
				signed = false
			}
		}
		info.Signed = append(info.Signed, signed)
	}
	return info
}

// unbondingSetup: delegator 9 bonds 1000 to validator 0 at height 2, then
// undelegates 200 at height 4, 300 at 6 and 100 at 8. Validator 0 keeps
// 1400 tokens; 600 are unbonding.
func unbondingSetup(t *testing.T) *chain {
	c := genesis3(t)
	c.do(func(s *Staking) { must(t, s.Delegate(2, addr(9), addr(0), 1000)) })
	for _, u := range []struct{ h, amount uint64 }{{4, 200}, {6, 300}, {8, 100}} {
		c.do(func(s *Staking) {
			_, err := s.Undelegate(u.h, addr(9), addr(0), u.amount)
			must(t, err)
		})
	}
	if p := c.pool(); p.Bonded != 3400 || p.Unbonding != 600 {
		t.Fatalf("pool %+v", p)
	}
	return c
}

func entries(t *testing.T, c *chain, del, op crypto.Address) []UnbondingEntry {
	t.Helper()
	u, _, err := New(c.store, c.p).unbonding(del, op)
	must(t, err)
	return u.Entries
}

func TestDoubleSignSlashesUnbondingFromTheInfractionOn(t *testing.T) {
	c := unbondingSetup(t)
	// Double sign at height 6 with power 18: 0.1 * 18 * 100 = 180 tokens.
	info := c.blockInfo(9)
	info.DoubleSigns = []Infraction{{ConsAddr: consKey(t, 0).Address(), Height: 6, Power: 18}}
	c.endBlock(info)
	got := entries(t, c, addr(9), addr(0))
	want := []UnbondingEntry{
		{CreationHeight: 4, CompletionHeight: 14, InitialBalance: 200, Balance: 200}, // before the infraction: untouched
		{CreationHeight: 6, CompletionHeight: 16, InitialBalance: 300, Balance: 270}, // at it: 10%
		{CreationHeight: 8, CompletionHeight: 18, InitialBalance: 100, Balance: 90},  // after it: 10%
	}
	if len(got) != len(want) {
		t.Fatalf("entries %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	v := c.validator(addr(0))
	if v.Tokens != 1400-140 || v.Shares != 1400 || !v.Jailed || !v.Tombstoned || v.JailedUntil != math.MaxUint64 {
		t.Fatalf("validator %+v", v)
	}
	if p := c.pool(); p.Burned != 180 || p.Unbonding != 560 || p.Bonded != 3400-140 {
		t.Fatalf("pool %+v", p)
	}
	checkPool(t, c.store)

	// The same key's second offence is ignored: it is tombstoned.
	info = c.blockInfo(10)
	info.DoubleSigns = []Infraction{{ConsAddr: consKey(t, 0).Address(), Height: 7, Power: 18}}
	c.endBlock(info)
	if p := c.pool(); p.Burned != 180 {
		t.Fatalf("slashed twice: pool %+v", p)
	}
}

func TestSlashSkipsMaturedEntriesAndCapsAtBalance(t *testing.T) {
	c := unbondingSetup(t)
	// Judged at 14, when the height-4 entry matures: it is paid, not slashed.
	info := c.blockInfo(14)
	info.DoubleSigns = []Infraction{{ConsAddr: consKey(t, 0).Address(), Height: 4, Power: 20}}
	pay, _, _ := c.endBlock(info)
	if len(pay) != 1 || pay[0] != (Payout{Account: addr(9), Amount: 200}) {
		t.Fatalf("payouts %+v", pay)
	}
	// 200 tokens: 30 + 10 from the two live entries, 160 from the validator.
	if v := c.validator(addr(0)); v.Tokens != 1400-160 {
		t.Fatalf("validator tokens %d", v.Tokens)
	}
	if p := c.pool(); p.Burned != 200 {
		t.Fatalf("pool %+v", p)
	}
	checkPool(t, c.store)

	// A slash above everything at stake burns what there is and no more.
	c2 := genesis3(t)
	p := c2.p
	p.SlashFractionDoubleSign = FractionUnit
	c2.p = p
	info = c2.blockInfo(3)
	info.DoubleSigns = []Infraction{{ConsAddr: consKey(t, 1).Address(), Height: 2, Power: 1000}}
	c2.endBlock(info)
	if v := c2.validator(addr(1)); v.Tokens != 0 || v.Shares != 1000 {
		t.Fatalf("validator %+v", v)
	}
	if p := c2.pool(); p.Burned != 1000 || p.Bonded != 2000 {
		t.Fatalf("pool %+v", p)
	}
	checkPool(t, c2.store)
}

func TestDoubleSignEdgeCases(t *testing.T) {
	c := genesis3(t)
	s := New(c.store, c.p)
	_, err := s.EndBlock(BlockInfo{Height: 5, DoubleSigns: []Infraction{{ConsAddr: consKey(t, 0).Address(), Height: 6, Power: 1}}})
	wantReject(t, err, "double sign at height 6 judged at height 5")
	// An unknown key is left alone.
	s = New(c.store, c.p)
	_, err = s.EndBlock(BlockInfo{Height: 5, DoubleSigns: []Infraction{{ConsAddr: addr(50), Height: 4, Power: 1}}})
	must(t, err)
	if n := len(s.Changes()); n != 0 {
		t.Fatalf("an unknown key's evidence staged %d writes", n)
	}
	_, err = New(c.store, c.p).EndBlock(BlockInfo{Height: 5, LastSet: []SetMember{{}}})
	if err == nil {
		t.Fatal("EndBlock took a LastSet without its Signed flags")
	}
}

func TestTombstonedKeyNeverRejoins(t *testing.T) {
	c := genesis3(t)
	info := c.blockInfo(5)
	info.DoubleSigns = []Infraction{{ConsAddr: consKey(t, 2).Address(), Height: 4, Power: 10}}
	_, set, changed := c.endBlock(info)
	if !changed || len(set) != 2 {
		t.Fatalf("active set after the tombstone: %+v (changed %v)", set, changed)
	}
	// Unjail: never, however long after.
	wantReject(t, New(c.store, c.p).Unjail(math.MaxUint64, addr(2)), "tombstoned")
	// The operator leaves; once the entry matures the validator is gone.
	var completion uint64
	c.do(func(s *Staking) {
		var err error
		completion, err = s.Undelegate(6, addr(2), addr(2), c.validator(addr(2)).Tokens)
		must(t, err)
	})
	c.endBlock(c.blockInfo(completion))
	if _, ok, _ := c.query().Validator(addr(2)); ok {
		t.Fatal("an empty validator was kept")
	}
	if p := c.pool(); p.Candidates != 2 {
		t.Fatalf("pool %+v", p)
	}
	checkPool(t, c.store)
	// Its key cannot serve a new validator, with any operator.
	for _, op := range []crypto.Address{addr(2), addr(20)} {
		wantReject(t, New(c.store, c.p).CreateValidator(completion+1, op, consKey(t, 2), "", 1000), "is tombstoned")
	}
	rec, ok, _ := c.query().ConsRecord(consKey(t, 2).Address())
	if !ok || !rec.Tombstoned {
		t.Fatalf("consensus record %+v %v", rec, ok)
	}
}

func TestDowntimeJailAfterAFullWindowOnly(t *testing.T) {
	c := genesis3(t) // signing windows start at 0; window 10, at most 5 misses
	for h := uint64(1); h <= 10; h++ {
		c.endBlock(c.blockInfo(h, 0))
		if c.validator(addr(0)).Jailed {
			t.Fatalf("jailed at height %d, within the first window", h)
		}
	}
	si, _, _ := c.query().SigningInfo(consKey(t, 0).Address())
	if si.MissedCount != 10 {
		t.Fatalf("signing info %+v", si)
	}
	_, set, changed := c.endBlock(c.blockInfo(11, 0))
	v := c.validator(addr(0))
	if !v.Jailed || v.JailedUntil != 31 || v.Tokens != 990 || v.Tombstoned {
		t.Fatalf("validator %+v: want jailed until 31 with 1%% of power 10 slashed", v)
	}
	if !changed || len(set) != 2 {
		t.Fatalf("active set %+v changed %v", set, changed)
	}
	si, _, _ = c.query().SigningInfo(consKey(t, 0).Address())
	if si != (SigningInfo{StartHeight: 11}) {
		t.Fatalf("signing info after the jail %+v, want a fresh window", si)
	}
	checkPool(t, c.store)

	wantReject(t, New(c.store, c.p).Unjail(30, addr(0)), "jailed until height 31 (now 30)")
	c.do(func(s *Staking) { must(t, s.Unjail(31, addr(0))) })
	_, set, changed = c.endBlock(c.blockInfo(31))
	if !changed || len(set) != 3 {
		t.Fatalf("active set after unjail %+v changed %v", set, changed)
	}
	if si, _, _ := c.query().SigningInfo(consKey(t, 0).Address()); si.StartHeight != 31 {
		t.Fatalf("rejoining did not start a fresh window: %+v", si)
	}
}

func TestDowntimeThreshold(t *testing.T) {
	for _, tc := range []struct {
		name string
		miss func(h uint64) bool
		jail bool
	}{
		{"misses half", func(h uint64) bool { return h%2 == 0 }, false},
		{"misses 6 of 10", func(h uint64) bool { return h%10 < 6 }, true},
		{"misses 5 of 10", func(h uint64) bool { return h%10 < 5 }, false},
		{"signs everything", func(uint64) bool { return false }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := genesis3(t)
			jailed := false
			for h := uint64(1); h <= 40 && !jailed; h++ {
				var missing []int
				if tc.miss(h) {
					missing = []int{1}
				}
				c.endBlock(c.blockInfo(h, missing...))
				jailed = c.validator(addr(1)).Jailed
			}
			if jailed != tc.jail {
				t.Fatalf("jailed %v, want %v", jailed, tc.jail)
			}
		})
	}
}

func TestSigningCostsNoWrites(t *testing.T) {
	c := genesis3(t)
	c.endBlock(c.blockInfo(1, 2)) // one miss: bit set
	s := New(c.store, c.p)
	_, err := s.EndBlock(c.blockInfo(2))
	must(t, err)
	if n := len(s.Changes()); n != 0 {
		t.Fatalf("a block everyone signed staged %d writes: %v", n, s.Changes())
	}
	// Signing at the position of the earlier miss clears the bit.
	c.endBlock(c.blockInfo(11))
	si, _, _ := c.query().SigningInfo(consKey(t, 2).Address())
	if si.MissedCount != 0 {
		t.Fatalf("signing info %+v", si)
	}
	if found, _ := New(c.store, c.p).anyUnder(missPrefix(consKey(t, 2).Address())); found {
		t.Fatal("a chunk with no bit set was kept")
	}
}

func TestMaturityPaysAtTheCompletionHeight(t *testing.T) {
	c := unbondingSetup(t)
	if pay, _, _ := c.endBlock(c.blockInfo(13)); len(pay) != 0 {
		t.Fatalf("paid before completion: %+v", pay)
	}
	pay, _, _ := c.endBlock(c.blockInfo(14))
	if len(pay) != 1 || pay[0] != (Payout{Account: addr(9), Amount: 200}) {
		t.Fatalf("payouts at 14: %+v", pay)
	}
	if p := c.pool(); p.Unbonding != 400 {
		t.Fatalf("pool %+v", p)
	}
	// A block that skips heights pays everything due by then, in order.
	pay, _, _ = c.endBlock(c.blockInfo(30))
	if len(pay) != 1 || pay[0].Amount != 400 {
		t.Fatalf("payouts at 30: %+v", pay)
	}
	if p := c.pool(); p.Unbonding != 0 {
		t.Fatalf("pool %+v", p)
	}
	if us, _, _ := c.query().Unbondings(addr(9), crypto.Address{}, 0); len(us) != 0 {
		t.Fatalf("unbondings left %+v", us)
	}
	checkPool(t, c.store)
}

func TestSharesAfterSlash(t *testing.T) {
	c := genesis3(t)
	c.do(func(s *Staking) { must(t, s.Delegate(2, addr(9), addr(0), 1000)) })
	info := c.blockInfo(3)
	info.DoubleSigns = []Infraction{{ConsAddr: consKey(t, 0).Address(), Height: 3, Power: 20}}
	c.endBlock(info) // burns 200 of 2000: a share is worth 0.9
	for _, del := range []crypto.Address{addr(0), addr(9)} {
		d, _, _ := c.query().Delegation(del, addr(0))
		if d.Shares != 1000 || d.Tokens != 900 {
			t.Fatalf("delegation of %s: %+v, want 1000 shares worth 900", del, d)
		}
	}
	// Validator 1 is slashed by downtime-sized amounts; a new delegation
	// buys shares at the lower price: 900 tokens buy 1000 shares.
	c.do(func(s *Staking) {
		v, _, _ := s.validator(addr(1))
		old := v
		must(t, s.slash(&v, 3, 10, 100_000, 4))
		s.putValidator(&old, &v)
	})
	c.do(func(s *Staking) { must(t, s.Delegate(5, addr(8), addr(1), 900)) })
	d, _, _ := c.query().Delegation(addr(8), addr(1))
	if d.Shares != 1000 || d.Tokens != 900 {
		t.Fatalf("delegation after the slash %+v", d)
	}
	checkPool(t, c.store)
}

func TestActiveSetTopByPowerTiesByConsensusAddress(t *testing.T) {
	c := genesis3(t) // MaxValidators 3, all power 10
	// Two newcomers with power 10: the set holds the three of power 10
	// with the lowest consensus addresses.
	c.do(func(s *Staking) {
		must(t, s.CreateValidator(1, addr(3), consKey(t, 3), "", 1000))
		must(t, s.CreateValidator(1, addr(4), consKey(t, 4), "", 1000))
	})
	_, set, changed := c.endBlock(c.blockInfo(1))
	if !changed || len(set) != 3 {
		t.Fatalf("set %+v changed %v", set, changed)
	}
	var addrs []crypto.Address
	for i := range 5 {
		addrs = append(addrs, consKey(t, i).Address())
	}
	sortAddrs(addrs)
	for i, m := range set {
		if m.ConsKey.Address() != addrs[i] || m.Power != 10 {
			t.Fatalf("member %d: %+v, want consensus address %s", i, m, addrs[i])
		}
	}
	// Power beats address: raise the last one to 11.
	last := consKey(t, 0).Address()
	var lastOp crypto.Address
	for i := range 5 {
		if consKey(t, i).Address() == addrs[4] {
			last, lastOp = addrs[4], addr(i)
		}
	}
	c.do(func(s *Staking) { must(t, s.Delegate(2, addr(9), lastOp, 100)) })
	_, set, changed = c.endBlock(c.blockInfo(2))
	found := false
	for _, m := range set {
		if m.ConsKey.Address() == last && m.Power == 11 {
			found = true
		}
	}
	if !changed || !found || len(set) != 3 {
		t.Fatalf("set %+v changed %v: want %s in it", set, changed, last)
	}
	// Nothing changes: no write at all.
	s := New(c.store, c.p)
	_, err := s.EndBlock(c.blockInfo(3))
	must(t, err)
	set2, changed, err := s.ActiveSet()
	must(t, err)
	if changed || len(s.Changes()) != 0 || len(set2) != 3 {
		t.Fatalf("an idle block changed the set (%v) or staged %d writes", changed, len(s.Changes()))
	}
	// A power change that leaves the set as it was is not a change.
	s = New(c.store, c.p)
	must(t, s.Delegate(4, addr(9), lastOp, 1)) // 1101 tokens: still power 11
	if _, changed, _ := s.ActiveSet(); changed {
		t.Fatal("the set changed with no power change")
	}
	checkPool(t, c.store)
}

func sortAddrs(a []crypto.Address) {
	for i := range a {
		for j := i + 1; j < len(a); j++ {
			if string(a[j][:]) < string(a[i][:]) {
				a[i], a[j] = a[j], a[i]
			}
		}
	}
}

func TestQueriesPage(t *testing.T) {
	c := genesis3(t)
	c.do(func(s *Staking) {
		for i := 10; i < 15; i++ {
			must(t, s.Delegate(2, addr(i), addr(0), 100))
		}
		for op := range 3 {
			must(t, s.Delegate(2, addr(10), addr(op), 100+uint64(op)))
		}
	})
	q := c.query()
	var all []DelegationInfo
	var after crypto.Address
	for {
		page, more, err := q.DelegationsByValidator(addr(0), after, 2)
		must(t, err)
		all = append(all, page...)
		if !more {
			break
		}
		if len(page) != 2 {
			t.Fatalf("page of %d", len(page))
		}
		after = page[len(page)-1].Delegator
	}
	if len(all) != 6 { // the operator and delegators 10..14
		t.Fatalf("%d delegations to validator 0: %+v", len(all), all)
	}
	byDel, more, err := q.DelegationsByDelegator(addr(10), crypto.Address{}, 0)
	must(t, err)
	if more || len(byDel) != 3 {
		t.Fatalf("delegations of 10: %+v more %v", byDel, more)
	}
	for _, d := range byDel {
		if d.Delegator != addr(10) || d.Shares < 100 {
			t.Fatalf("delegation %+v", d)
		}
	}
	vals, more, err := q.Validators(crypto.Address{}, 2)
	must(t, err)
	if !more || len(vals) != 2 {
		t.Fatalf("validators page %d more %v", len(vals), more)
	}
	rest, more, err := q.Validators(vals[1].Operator, 2)
	must(t, err)
	if more || len(rest) != 1 {
		t.Fatalf("second validators page %d more %v", len(rest), more)
	}
	if pageLimit(0) != MaxPage || pageLimit(MaxPage+1) != MaxPage || pageLimit(3) != 3 {
		t.Fatal("page limits")
	}
}

func TestEmptyValidatorStaysSlashableUntilItsEntriesMature(t *testing.T) {
	c := genesis3(t)
	c.do(func(s *Staking) { must(t, s.Delegate(2, addr(9), addr(1), 1000)) })
	// Everyone leaves validator 1, at heights 3 and 4: no shares, no tokens.
	c.do(func(s *Staking) {
		_, err := s.Undelegate(3, addr(1), addr(1), 1000)
		must(t, err)
	})
	c.do(func(s *Staking) {
		_, err := s.Undelegate(4, addr(9), addr(1), 1000)
		must(t, err)
	})
	if v := c.validator(addr(1)); v.Shares != 0 || v.Tokens != 0 {
		t.Fatalf("validator %+v", v)
	}
	// Its double sign at height 3 is found at 12: the entries pay for it.
	info := c.blockInfo(12)
	info.DoubleSigns = []Infraction{{ConsAddr: consKey(t, 1).Address(), Height: 3, Power: 20}}
	c.endBlock(info)
	for _, del := range []crypto.Address{addr(1), addr(9)} {
		e := entries(t, c, del, addr(1))
		if len(e) != 1 || e[0].Balance != 900 {
			t.Fatalf("entries of %s: %+v, want 10%% slashed", del, e)
		}
	}
	if p := c.pool(); p.Burned != 200 {
		t.Fatalf("pool %+v", p)
	}
	// At 13 the operator's entry matures; the validator stays for the
	// other one, still slashable.
	pay, _, _ := c.endBlock(c.blockInfo(13))
	if len(pay) != 1 || pay[0] != (Payout{Account: addr(1), Amount: 900}) {
		t.Fatalf("payouts at 13: %+v", pay)
	}
	if _, ok, _ := c.query().Validator(addr(1)); !ok {
		t.Fatal("the validator went while an unbonding entry from it was live")
	}
	checkPool(t, c.store)
	// At 14 the last entry matures, and the empty validator goes.
	pay, _, _ = c.endBlock(c.blockInfo(14))
	if len(pay) != 1 || pay[0] != (Payout{Account: addr(9), Amount: 900}) {
		t.Fatalf("payouts at 14: %+v", pay)
	}
	if _, ok, _ := c.query().Validator(addr(1)); ok {
		t.Fatal("the empty validator outlived its entries")
	}
	checkPool(t, c.store)
}
