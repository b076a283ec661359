package staking

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
)

func genesis3(t *testing.T) *chain {
	return newChain(t, testParams(), gv(t, 0, 10), gv(t, 1, 10), gv(t, 2, 10))
}

func TestGenesisRecords(t *testing.T) {
	c := genesis3(t)
	if p := c.pool(); p != (Pool{Bonded: 3000, Candidates: 3}) {
		t.Fatalf("pool %+v", p)
	}
	v := c.validator(addr(1))
	if v.Tokens != 1000 || v.Shares != 1000 || v.Jailed || v.Moniker != "val1" || v.ConsKey != consKey(t, 1) {
		t.Fatalf("validator %+v", v)
	}
	d, ok, err := c.query().Delegation(addr(1), addr(1))
	if err != nil || !ok || d.Shares != 1000 || d.Tokens != 1000 {
		t.Fatalf("self-delegation %+v %v %v", d, ok, err)
	}
	set, err := c.query().Active()
	must(t, err)
	if len(set) != 3 {
		t.Fatalf("active set %+v", set)
	}
	for i := 1; i < len(set); i++ {
		a, b := set[i-1].ConsKey.Address(), set[i].ConsKey.Address()
		if bytes.Compare(a[:], b[:]) >= 0 {
			t.Fatal("active set not sorted by consensus address")
		}
	}
	// An operator left zero is the consensus key's address.
	g := gv(t, 4, 1)
	g.Operator = crypto.Address{}
	c2 := newChain(t, testParams(), g)
	if _, ok, _ := c2.query().Validator(consKey(t, 4).Address()); !ok {
		t.Fatal("zero operator did not default to the consensus address")
	}
}

func TestGenesisErrors(t *testing.T) {
	p := testParams()
	for _, tc := range []struct {
		name string
		vals []GenesisValidator
		want string
	}{
		{"too many", []GenesisValidator{gv(t, 0, 1), gv(t, 1, 1), gv(t, 2, 1), gv(t, 3, 1)}, "4 validators, but max_validators is 3"},
		{"zero power", []GenesisValidator{gv(t, 0, 0)}, "zero power"},
		{"same operator", []GenesisValidator{gv(t, 0, 1), {Operator: addr(0), ConsKey: consKey(t, 1), Power: 1}}, "already operates a validator"},
		{"same key", []GenesisValidator{gv(t, 0, 1), {Operator: addr(1), ConsKey: consKey(t, 0), Power: 1}}, "already served validator"},
		{"overflow", []GenesisValidator{gv(t, 0, math.MaxUint64/10)}, "overflows"},
		{"moniker", []GenesisValidator{{Operator: addr(0), ConsKey: consKey(t, 0), Power: 1, Moniker: "a\x00b"}}, "control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := InitGenesis(p, tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	bad := p
	bad.PowerUnit = 0
	if _, err := InitGenesis(bad, nil); err == nil {
		t.Fatal("genesis under invalid parameters")
	}
}

func TestCreateValidator(t *testing.T) {
	c := genesis3(t)
	c.do(func(s *Staking) {
		must(t, s.CreateValidator(5, addr(7), consKey(t, 7), "new one", 250))
	})
	v := c.validator(addr(7))
	want := Validator{Operator: addr(7), ConsKey: consKey(t, 7), Moniker: "new one", Tokens: 250, Shares: 250, CreatedHeight: 5}
	if v != want {
		t.Fatalf("validator %+v, want %+v", v, want)
	}
	if p := c.pool(); p.Bonded != 3250 || p.Candidates != 4 {
		t.Fatalf("pool %+v", p)
	}
	if si, ok, _ := c.query().SigningInfo(consKey(t, 7).Address()); !ok || si.StartHeight != 5 {
		t.Fatalf("signing info %+v %v", si, ok)
	}
	if v2, ok, _ := c.query().ValidatorByCons(consKey(t, 7).Address()); !ok || v2 != want {
		t.Fatalf("by consensus address: %+v %v", v2, ok)
	}
}

func TestCreateValidatorRejections(t *testing.T) {
	c := genesis3(t)
	long := strings.Repeat("x", MaxMonikerLen+1)
	for _, tc := range []struct {
		name    string
		op      crypto.Address
		key     crypto.PubKey
		moniker string
		bond    uint64
		want    string
	}{
		{"zero operator", crypto.Address{}, consKey(t, 7), "", 100, "zero operator"},
		{"zero key", addr(7), crypto.PubKey{}, "", 100, "zero consensus key"},
		{"self-bond below a power unit", addr(7), consKey(t, 7), "", 99, "self-bond 99 is below one power unit (100 tokens)"},
		{"moniker too long", addr(7), consKey(t, 7), long, 100, "moniker is 65 bytes, at most 64"},
		{"moniker not UTF-8", addr(7), consKey(t, 7), "\xff", 100, "not valid UTF-8"},
		{"moniker with a control character", addr(7), consKey(t, 7), "a\nb", 100, "control character"},
		{"operator runs one already", addr(1), consKey(t, 7), "", 100, "already operates a validator"},
		{"key in use", addr(7), consKey(t, 1), "", 100, "already served validator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(c.store, c.p)
			wantReject(t, s.CreateValidator(3, tc.op, tc.key, tc.moniker, tc.bond), tc.want)
			if n := len(s.Changes()); n != 0 {
				t.Fatalf("a rejected create-validator staged %d writes", n)
			}
		})
	}
	t.Run("too many candidates", func(t *testing.T) {
		p := c.pool()
		p.Candidates = MaxCandidates
		c.store.apply([]Change{{Key: PoolKey, Value: p.Encode()}})
		s := New(c.store, c.p)
		wantReject(t, s.CreateValidator(3, addr(7), consKey(t, 7), "", 100), "10000 validators exist")
	})
}

func TestDelegateShares(t *testing.T) {
	c := genesis3(t)
	c.do(func(s *Staking) { must(t, s.Delegate(2, addr(9), addr(0), 500)) })
	v := c.validator(addr(0))
	if v.Tokens != 1500 || v.Shares != 1500 {
		t.Fatalf("validator %+v", v)
	}
	if p := c.pool(); p.Bonded != 3500 {
		t.Fatalf("pool %+v", p)
	}
	// A second delegation adds to the first.
	c.do(func(s *Staking) { must(t, s.Delegate(3, addr(9), addr(0), 100)) })
	d, _, _ := c.query().Delegation(addr(9), addr(0))
	if d.Shares != 600 || d.Tokens != 600 {
		t.Fatalf("delegation %+v", d)
	}
	// Power and the index follow the tokens.
	if got := c.validator(addr(0)).Power(100); got != 16 {
		t.Fatalf("power %d, want 16", got)
	}
}

func TestDelegateRejections(t *testing.T) {
	c := genesis3(t)
	// Validator 2 is tombstoned; validator 1 lost all its tokens.
	c.do(func(s *Staking) {
		_, err := s.EndBlock(BlockInfo{Height: 5, DoubleSigns: []Infraction{{ConsAddr: consKey(t, 2).Address(), Height: 4, Power: 10}}})
		must(t, err)
		v, _, _ := s.validator(addr(1))
		old := v
		v.Tokens = 0
		s.putValidator(&old, &v)
		p, _ := s.pool()
		p.Bonded -= 1000
		p.Burned += 1000
		s.setPool(p)
	})
	for _, tc := range []struct {
		name   string
		op     crypto.Address
		amount uint64
		want   string
	}{
		{"zero amount", addr(0), 0, "zero amount"},
		{"unknown validator", addr(8), 10, "no validator is operated by"},
		{"tombstoned", addr(2), 10, "tombstoned"},
		{"worthless shares", addr(1), 10, "lost all its tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(c.store, c.p)
			wantReject(t, s.Delegate(6, addr(9), tc.op, tc.amount), tc.want)
			if n := len(s.Changes()); n != 0 {
				t.Fatalf("a rejected delegation staged %d writes", n)
			}
		})
	}
	t.Run("buys no share", func(t *testing.T) {
		// 1000 shares worth 3000 tokens: 2 tokens buy 0.66 of a share.
		c := genesis3(t)
		c.do(func(s *Staking) {
			v, _, _ := s.validator(addr(0))
			old := v
			v.Tokens = 3000
			s.putValidator(&old, &v)
		})
		s := New(c.store, c.p)
		wantReject(t, s.Delegate(6, addr(9), addr(0), 2), "buy no share")
		must(t, s.Delegate(6, addr(9), addr(0), 3))
	})
}

func TestUndelegate(t *testing.T) {
	c := genesis3(t)
	c.do(func(s *Staking) { must(t, s.Delegate(2, addr(9), addr(0), 500)) })
	var completion uint64
	c.do(func(s *Staking) {
		var err error
		completion, err = s.Undelegate(4, addr(9), addr(0), 200)
		must(t, err)
	})
	if completion != 14 {
		t.Fatalf("completion %d, want 14", completion)
	}
	if p := c.pool(); p.Bonded != 3300 || p.Unbonding != 200 {
		t.Fatalf("pool %+v", p)
	}
	us, _, err := c.query().Unbondings(addr(9), crypto.Address{}, 0)
	must(t, err)
	want := UnbondingEntry{CreationHeight: 4, CompletionHeight: 14, InitialBalance: 200, Balance: 200}
	if len(us) != 1 || len(us[0].Entries) != 1 || us[0].Entries[0] != want || us[0].Operator != addr(0) {
		t.Fatalf("unbondings %+v", us)
	}
	// A second undelegation at the same height adds to the entry.
	c.do(func(s *Staking) {
		_, err := s.Undelegate(4, addr(9), addr(0), 50)
		must(t, err)
	})
	u, _, _ := New(c.store, c.p).unbonding(addr(9), addr(0))
	if len(u.Entries) != 1 || u.Entries[0].Balance != 250 || u.Entries[0].InitialBalance != 250 {
		t.Fatalf("entries %+v", u.Entries)
	}
}

func TestUndelegateRejections(t *testing.T) {
	c := genesis3(t)
	c.do(func(s *Staking) { must(t, s.Delegate(2, addr(9), addr(0), 500)) })
	for _, tc := range []struct {
		name   string
		del    crypto.Address
		op     crypto.Address
		amount uint64
		want   string
	}{
		{"zero amount", addr(9), addr(0), 0, "zero amount"},
		{"unknown validator", addr(9), addr(8), 10, "no validator is operated by"},
		{"no delegation", addr(9), addr(1), 10, "has no delegation to validator"},
		{"more than the delegation is worth", addr(9), addr(0), 501, "is worth 500 tokens, 501 asked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(c.store, c.p)
			_, err := s.Undelegate(3, tc.del, tc.op, tc.amount)
			wantReject(t, err, tc.want)
			if n := len(s.Changes()); n != 0 {
				t.Fatalf("a rejected undelegation staged %d writes", n)
			}
		})
	}
	t.Run("too many entries", func(t *testing.T) {
		for h := uint64(3); h < 3+uint64(c.p.MaxEntries); h++ {
			c.do(func(s *Staking) {
				_, err := s.Undelegate(h, addr(9), addr(0), 10)
				must(t, err)
			})
		}
		s := New(c.store, c.p)
		_, err := s.Undelegate(9, addr(9), addr(0), 10)
		wantReject(t, err, "has 3 unbonding entries", "next at height 13")
		if n := len(s.Changes()); n != 0 {
			t.Fatalf("a rejected undelegation staged %d writes", n)
		}
		// The same height as an existing entry still merges.
		_, err = s.Undelegate(5, addr(9), addr(0), 10)
		must(t, err)
	})
}

func TestUndelegateRounding(t *testing.T) {
	c := genesis3(t)
	c.do(func(s *Staking) { must(t, s.Delegate(2, addr(9), addr(0), 500)) })
	// Slash validator 0 to 1400 tokens for 1500 shares: a share is worth
	// 14/15 of a token.
	c.do(func(s *Staking) {
		v, _, _ := s.validator(addr(0))
		old := v
		v.Tokens = 1400
		s.putValidator(&old, &v)
		p, _ := s.pool()
		p.Bonded -= 100
		p.Burned += 100
		s.setPool(p)
	})
	// 500 shares are worth floor(500*1400/1500) = 466 tokens.
	d, _, _ := c.query().Delegation(addr(9), addr(0))
	if d.Tokens != 466 {
		t.Fatalf("delegation worth %d, want 466", d.Tokens)
	}
	// Undelegating 100 gives up ceil(100*1500/1400) = 108 shares, worth
	// floor(108*1400/1500) = 100 tokens.
	c.do(func(s *Staking) {
		_, err := s.Undelegate(3, addr(9), addr(0), 100)
		must(t, err)
	})
	d, _, _ = c.query().Delegation(addr(9), addr(0))
	if d.Shares != 392 {
		t.Fatalf("shares left %d, want 392", d.Shares)
	}
	v := c.validator(addr(0))
	if v.Tokens != 1300 || v.Shares != 1392 {
		t.Fatalf("validator %+v", v)
	}
	// Undelegating everything it is worth takes every share: no dust.
	worth := d.Tokens
	c.do(func(s *Staking) {
		_, err := s.Undelegate(4, addr(9), addr(0), worth)
		must(t, err)
	})
	if _, ok, _ := c.query().Delegation(addr(9), addr(0)); ok {
		t.Fatal("a delegation worth nothing was left behind")
	}
	v = c.validator(addr(0))
	if v.Shares != 1000 {
		t.Fatalf("validator shares %d, want the operator's 1000", v.Shares)
	}
	checkPool(t, c.store)
}

func TestLastSharesOutTakeEveryToken(t *testing.T) {
	c := genesis3(t)
	// 1000 shares for 999 tokens: the operator's 1000 shares are worth 999.
	c.do(func(s *Staking) {
		v, _, _ := s.validator(addr(0))
		old := v
		v.Tokens = 999
		s.putValidator(&old, &v)
		p, _ := s.pool()
		p.Bonded--
		p.Burned++
		s.setPool(p)
	})
	c.do(func(s *Staking) {
		_, err := s.Undelegate(3, addr(0), addr(0), 999)
		must(t, err)
	})
	v := c.validator(addr(0))
	if v.Tokens != 0 || v.Shares != 0 || !v.Jailed {
		t.Fatalf("validator %+v: want empty and jailed (no self-bond)", v)
	}
	if p := c.pool(); p.Unbonding != 999 {
		t.Fatalf("pool %+v", p)
	}
	checkPool(t, c.store)
}

func TestSelfBondBelowOneUnitJails(t *testing.T) {
	c := genesis3(t)
	c.do(func(s *Staking) {
		_, err := s.Undelegate(3, addr(0), addr(0), 900) // 100 left: still one unit
		must(t, err)
	})
	if c.validator(addr(0)).Jailed {
		t.Fatal("jailed with a self-bond of exactly one power unit")
	}
	c.do(func(s *Staking) {
		_, err := s.Undelegate(4, addr(0), addr(0), 1)
		must(t, err)
	})
	if !c.validator(addr(0)).Jailed {
		t.Fatal("not jailed with a self-bond below one power unit")
	}
	s := New(c.store, c.p)
	wantReject(t, s.Unjail(5, addr(0)), "self-bond is worth 99 tokens, below one power unit (100)")
	must(t, s.Delegate(5, addr(0), addr(0), 1))
	must(t, s.Unjail(5, addr(0)))
}

func TestUnjailRejections(t *testing.T) {
	c := genesis3(t)
	c.do(func(s *Staking) {
		_, err := s.EndBlock(BlockInfo{Height: 5, DoubleSigns: []Infraction{{ConsAddr: consKey(t, 2).Address(), Height: 4, Power: 10}}})
		must(t, err)
		v, _, _ := s.validator(addr(1))
		old := v
		v.Jailed, v.JailedUntil = true, 30
		s.putValidator(&old, &v)
	})
	for _, tc := range []struct {
		name   string
		op     crypto.Address
		height uint64
		want   string
	}{
		{"unknown validator", addr(8), 40, "no validator is operated by"},
		{"not jailed", addr(0), 40, "is not jailed"},
		{"tombstoned", addr(2), 40, "can never be unjailed"},
		{"before the jail time", addr(1), 29, "jailed until height 30 (now 29)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(c.store, c.p)
			wantReject(t, s.Unjail(tc.height, tc.op), tc.want)
			if n := len(s.Changes()); n != 0 {
				t.Fatalf("a rejected unjail staged %d writes", n)
			}
		})
	}
	c.do(func(s *Staking) { must(t, s.Unjail(30, addr(1))) })
	if c.validator(addr(1)).Jailed {
		t.Fatal("still jailed")
	}
}

func TestReadErrorsAreNotRejections(t *testing.T) {
	s := New(failingReader{}, testParams())
	errs := []error{
		s.CreateValidator(1, addr(1), consKey(t, 1), "", 100),
		s.Delegate(1, addr(1), addr(2), 5),
		s.Unjail(1, addr(1)),
	}
	_, err := s.Undelegate(1, addr(1), addr(2), 5)
	errs = append(errs, err)
	_, err = s.EndBlock(BlockInfo{Height: 9})
	errs = append(errs, err)
	_, _, err = s.ActiveSet()
	errs = append(errs, err)
	for i, err := range errs {
		if !errors.Is(err, errDisk) || errors.Is(err, ErrRejected) {
			t.Errorf("operation %d: err = %v, want the read error and no rejection", i, err)
		}
	}
}

func TestCorruptRecordIsReported(t *testing.T) {
	c := genesis3(t)
	c.store.apply([]Change{{Key: ValidatorKey(addr(0)), Value: []byte{1, 2, 3}}})
	s := New(c.store, c.p)
	err := s.Delegate(1, addr(9), addr(0), 5)
	if err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "decode validator") {
		t.Fatalf("err = %v", err)
	}
}
