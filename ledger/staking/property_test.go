package staking

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/internal/testkit/testseed"
)

// world is the property test's model: the committed staking state, the
// accounts' balances (the ledger's part, which the package leaves to its
// caller), and the active sets by height for the set delay.
type world struct {
	t        *testing.T
	r        *rand.Rand
	p        Params
	store    *memStore
	accounts []crypto.Address
	balance  map[crypto.Address]uint64
	supply   uint64
	paidIn   uint64 // tokens moved from accounts into staking
	paidOut  uint64 // tokens paid back by EndBlock
	genesis  uint64 // tokens bonded at genesis
	keys     []crypto.PubKey
	nextKey  int
	sets     map[uint64][]Member // the set computed at the end of each height (0: genesis)
	offline  map[crypto.Address]bool
	stats    map[string]int
}

func newWorld(t *testing.T, r *rand.Rand) *world {
	p := Params{
		PowerUnit:               100,
		MaxValidators:           uint32(2 + r.IntN(4)),
		UnbondingHeights:        uint64(2 + r.IntN(15)),
		MaxEntries:              uint32(1 + r.IntN(4)),
		SlashFractionDoubleSign: Fraction(r.IntN(FractionUnit + 1)),
		SlashFractionDowntime:   Fraction(r.IntN(100_000)),
		SignedBlocksWindow:      uint64(1 + r.IntN(12)),
		MinSignedPerWindow:      Fraction(r.IntN(FractionUnit + 1)),
		DowntimeJailHeights:     uint64(r.IntN(10)),
	}
	w := &world{t: t, r: r, p: p, store: newMemStore(), balance: map[crypto.Address]uint64{},
		sets: map[uint64][]Member{}, offline: map[crypto.Address]bool{}, stats: map[string]int{}}
	for i := range 10 {
		a := addr(100 + i)
		w.accounts = append(w.accounts, a)
		w.balance[a] = uint64(r.IntN(20_000))
		w.supply += w.balance[a]
	}
	for i := range 40 {
		w.keys = append(w.keys, consKey(t, 100+i))
	}
	var vals []GenesisValidator
	for i := range 1 + r.IntN(int(p.MaxValidators)) {
		power := uint64(1 + r.IntN(30))
		vals = append(vals, GenesisValidator{Operator: w.accounts[i], ConsKey: w.keys[i], Power: power})
		w.genesis += power * p.PowerUnit
	}
	w.nextKey = len(vals)
	w.supply += w.genesis
	cs, err := InitGenesis(p, vals)
	if err != nil {
		t.Fatal(err)
	}
	w.store.apply(cs)
	set, err := NewQuery(w.store).Active()
	must(t, err)
	w.sets[0] = set
	return w
}

// setAt is the set computed at the end of height h (the genesis set before
// height 1).
func (w *world) setAt(h int64) []Member {
	if h <= 0 {
		return w.sets[0]
	}
	return w.sets[uint64(h)]
}

// operators returns every operator that exists now, plus one that never did.
func (w *world) pickOperator(s *Staking) crypto.Address {
	var ops []crypto.Address
	must(w.t, s.Iterate([]byte(prefixVal), func(k, _ []byte) error {
		a, err := parseSingle(k, prefixVal)
		ops = append(ops, a)
		return err
	}))
	if len(ops) == 0 || w.r.IntN(20) == 0 {
		return addr(999)
	}
	return ops[w.r.IntN(len(ops))]
}

// debit takes amount from a's balance, or reports false.
func (w *world) debit(a crypto.Address, amount uint64) bool {
	if w.balance[a] < amount {
		return false
	}
	w.balance[a] -= amount
	w.paidIn += amount
	return true
}

func (w *world) refund(a crypto.Address, amount uint64) {
	w.balance[a] += amount
	w.paidIn -= amount
}

// op runs one random operation on s and checks a rejection staged
// nothing.
func (w *world) op(s *Staking, h uint64) {
	before := fmt.Sprint(s.Changes())
	acct := w.accounts[w.r.IntN(len(w.accounts))]
	var kind string
	var err error
	switch w.r.IntN(10) {
	case 0, 1:
		kind = "create"
		key := w.keys[w.r.IntN(len(w.keys))]
		if w.r.IntN(2) == 0 && w.nextKey < len(w.keys) {
			key = w.keys[w.nextKey]
		}
		amount := uint64(w.r.IntN(3000))
		if !w.debit(acct, amount) {
			return
		}
		if err = s.CreateValidator(h, acct, key, "", amount); err != nil {
			w.refund(acct, amount)
		} else if key == w.keys[w.nextKey%len(w.keys)] {
			w.nextKey++
		}
	case 2, 3, 4:
		kind = "delegate"
		op := w.pickOperator(s)
		amount := uint64(1 + w.r.IntN(2000))
		if !w.debit(acct, amount) {
			return
		}
		v0, _, _ := s.validator(op)
		if err = s.Delegate(h, acct, op, amount); err != nil {
			w.refund(acct, amount)
		} else {
			w.shareValueKept(s, h, kind, v0)
		}
	case 5, 6, 7:
		kind = "undelegate"
		op := w.pickOperator(s)
		amount := uint64(1 + w.r.IntN(2000))
		if d, ok, _ := NewQuery(s).Delegation(acct, op); ok && w.r.IntN(2) == 0 {
			amount = d.Tokens - min(d.Tokens, uint64(w.r.IntN(3))) // all or nearly all
		}
		v0, _, _ := s.validator(op)
		pool0, _ := s.pool()
		if _, err = s.Undelegate(h, acct, op, amount); err == nil {
			w.shareValueKept(s, h, kind, v0)
			if pool, _ := s.pool(); pool.Unbonding-pool0.Unbonding < amount {
				w.t.Fatalf("height %d: undelegating %d unbonded only %d", h, amount, pool.Unbonding-pool0.Unbonding)
			}
		}
	default:
		kind = "unjail"
		err = s.Unjail(h, w.pickOperator(s))
	}
	switch {
	case err == nil:
		w.stats[kind]++
	case errors.Is(err, ErrRejected):
		w.stats[kind+" rejected"]++
		if after := fmt.Sprint(s.Changes()); after != before {
			w.t.Fatalf("height %d: a rejected %s staged writes: %v", h, kind, err)
		}
	default:
		w.t.Fatalf("height %d: %s: %v", h, kind, err)
	}
}

// block runs height h: operations, EndBlock with the set that signed h-1,
// ActiveSet; then commits and checks.
func (w *world) block(h uint64) {
	s := New(w.store, w.p)
	for range w.r.IntN(6) {
		w.op(s, h)
	}
	// Block h's LastCommit signs h-1, whose set was computed at h-3.
	last := w.setAt(int64(h) - 3)
	info := BlockInfo{Height: h}
	for _, m := range last {
		cons := m.ConsKey.Address()
		if w.r.IntN(15) == 0 {
			w.offline[cons] = !w.offline[cons]
		}
		info.LastSet = append(info.LastSet, SetMember{ConsAddr: cons, Power: m.Power})
		info.Signed = append(info.Signed, !w.offline[cons] && w.r.IntN(20) != 0)
	}
	if w.r.IntN(25) == 0 && h > 1 {
		back := uint64(w.r.IntN(int(min(h-1, 6))))
		set := w.setAt(int64(h-back) - 2)
		if len(set) > 0 {
			m := set[w.r.IntN(len(set))]
			info.DoubleSigns = append(info.DoubleSigns, Infraction{ConsAddr: m.ConsKey.Address(), Height: h - back, Power: m.Power})
			w.stats["double sign"]++
		}
	}
	var before map[string]UnbondingEntry
	var tombstonedBefore bool
	if len(info.DoubleSigns) == 1 {
		rec, ok, _ := NewQuery(s).ConsRecord(info.DoubleSigns[0].ConsAddr)
		tombstonedBefore = ok && rec.Tombstoned
		before = unbondingsOf(w.t, s, rec.Operator)
	}
	vals0 := w.validators(s)
	signing0 := map[crypto.Address]SigningInfo{}
	for _, v := range vals0 {
		si, _, err := NewQuery(s).SigningInfo(v.ConsAddr())
		must(w.t, err)
		signing0[v.Operator] = si
	}
	pays, err := s.EndBlock(info)
	if err != nil {
		w.t.Fatalf("height %d: EndBlock: %v", h, err)
	}
	if len(info.DoubleSigns) == 1 && !tombstonedBefore {
		w.checkDoubleSign(h, info.DoubleSigns[0], before, s)
		w.stats["double sign punished"]++
	}
	vals1 := w.validators(s)
	for op, v0 := range vals0 {
		v1, ok := vals1[op]
		switch {
		case !ok:
			w.stats["validator removed"]++
		case !v0.Jailed && v1.Jailed && !v1.Tombstoned:
			w.stats["downtime jail"]++
			if v1.JailedUntil != h+w.p.DowntimeJailHeights {
				w.t.Fatalf("height %d: jailed until %d, want %d", h, v1.JailedUntil, h+w.p.DowntimeJailHeights)
			}
			// Jailed only for a miss in this block, after a full window,
			// past the limit.
			si, missedNow := signing0[op], false
			for i, m := range info.LastSet {
				missedNow = missedNow || (m.ConsAddr == v1.ConsAddr() && !info.Signed[i])
			}
			if !missedNow || h <= si.StartHeight+w.p.SignedBlocksWindow || si.MissedCount+1 <= w.p.maxMissed() {
				w.t.Fatalf("height %d: %s jailed for downtime with signing info %+v (missed now %v, window %d, at most %d misses)",
					h, op, si, missedNow, w.p.SignedBlocksWindow, w.p.maxMissed())
			}
		}
	}
	for _, pay := range pays {
		w.balance[pay.Account] += pay.Amount
		w.paidOut += pay.Amount
		w.stats["payout"]++
	}
	set, changed, err := s.ActiveSet()
	if err != nil {
		w.t.Fatalf("height %d: ActiveSet: %v", h, err)
	}
	if changed {
		w.stats["set change"]++
	}
	w.sets[h] = set

	// Reads through the overlay equal reads of the committed result.
	changes := s.Changes()
	if h%7 == 0 {
		var staged bytes.Buffer
		must(w.t, s.Iterate([]byte(Prefix), func(k, v []byte) error {
			fmt.Fprintf(&staged, "%x=%x\n", k, v)
			return nil
		}))
		next := newMemStore()
		next.apply(w.allChanges())
		next.apply(changes)
		var committed bytes.Buffer
		must(w.t, next.Iterate([]byte(Prefix), func(k, v []byte) error {
			fmt.Fprintf(&committed, "%x=%x\n", k, v)
			return nil
		}))
		if staged.String() != committed.String() {
			w.t.Fatalf("height %d: the overlay reads differently from its committed result", h)
		}
	}
	for i := 1; i < len(changes); i++ {
		if bytes.Compare(changes[i-1].Key, changes[i].Key) >= 0 {
			w.t.Fatalf("height %d: changes not sorted", h)
		}
	}
	w.store.apply(changes)
	w.check(h, set)
}

// validators returns every validator of r by operator.
func (w *world) validators(r Reader) map[crypto.Address]Validator {
	out := map[crypto.Address]Validator{}
	must(w.t, r.Iterate([]byte(prefixVal), func(_, v []byte) error {
		val, err := DecodeValidator(v)
		out[val.Operator] = val
		return err
	}))
	return out
}

// allChanges returns the committed state as changes (to copy it).
func (w *world) allChanges() []Change {
	var cs []Change
	for _, k := range w.store.keys {
		cs = append(cs, Change{Key: []byte(k), Value: w.store.m[k]})
	}
	return cs
}

// check verifies, after a committed block, the package's invariants, the
// supply, and the active set's rules.
func (w *world) check(h uint64, set []Member) {
	if err := checkInvariants(w.store, w.p); err != nil {
		w.t.Fatalf("height %d: %v", h, err)
	}
	q := NewQuery(w.store)
	pool, err := q.Pool()
	must(w.t, err)
	var balances uint64
	for _, b := range w.balance {
		balances += b
	}
	if got := balances + pool.Bonded + pool.Unbonding + pool.Burned; got != w.supply {
		w.t.Fatalf("height %d: supply %d, want %d (balances %d, pool %+v)", h, got, w.supply, balances, pool)
	}
	if w.genesis+w.paidIn != pool.Bonded+pool.Unbonding+pool.Burned+w.paidOut {
		w.t.Fatalf("height %d: paid in %d + genesis %d != bonded %d + unbonding %d + burned %d + paid out %d",
			h, w.paidIn, w.genesis, pool.Bonded, pool.Unbonding, pool.Burned, w.paidOut)
	}
	if len(set) > int(w.p.MaxValidators) {
		w.t.Fatalf("height %d: %d members, at most %d", h, len(set), w.p.MaxValidators)
	}
	var minIn uint64 = 1<<64 - 1
	in := map[crypto.Address]bool{}
	for i, m := range set {
		v, ok, err := q.Validator(m.Operator)
		must(w.t, err)
		switch {
		case !ok || v.Jailed || v.Tombstoned || v.Power(w.p.PowerUnit) != m.Power || m.Power == 0:
			w.t.Fatalf("height %d: member %+v is not an eligible validator at its power (%+v)", h, m, v)
		case i > 0 && bytes.Compare(addrOf(set[i-1]), addrOf(m)) >= 0:
			w.t.Fatalf("height %d: set not sorted by consensus address", h)
		}
		minIn = min(minIn, m.Power)
		in[m.Operator] = true
	}
	// Every eligible validator left out has less power than every member,
	// or as much and a higher consensus address.
	vals, _, err := q.Validators(crypto.Address{}, MaxPage)
	must(w.t, err)
	for _, v := range vals {
		if in[v.Operator] || !v.eligible(w.p.PowerUnit) {
			continue
		}
		if len(set) < int(w.p.MaxValidators) || v.Power(w.p.PowerUnit) > minIn {
			w.t.Fatalf("height %d: eligible validator %s (power %d) left out of %+v", h, v.Operator, v.Power(w.p.PowerUnit), set)
		}
		if v.Power(w.p.PowerUnit) == minIn {
			cv := v.ConsAddr()
			for _, m := range set {
				if m.Power == minIn && bytes.Compare(cv[:], addrOf(m)) < 0 {
					w.t.Fatalf("height %d: tie broken against the lower consensus address %s", h, cv)
				}
			}
		}
		if rec, ok, _ := q.ConsRecord(v.ConsAddr()); ok && rec.Tombstoned && in[v.Operator] {
			w.t.Fatalf("height %d: tombstoned key in the set", h)
		}
	}
}

// shareValueKept checks that a delegation or undelegation did not lower
// the worth of the validator's other shares: Tokens/Shares did not fall,
// exactly (T'*S >= T*S' in 128 bits), so rounding went to the remaining
// holders and the one who delegated or left got at most its due.
func (w *world) shareValueKept(s *Staking, h uint64, kind string, v0 Validator) {
	v1, ok, err := s.validator(v0.Operator)
	must(w.t, err)
	if !ok {
		return
	}
	h1, l1 := mulFull(v1.Tokens, v0.Shares)
	h0, l0 := mulFull(v0.Tokens, v1.Shares)
	if h1 < h0 || (h1 == h0 && l1 < l0) {
		w.t.Fatalf("height %d: %s lowered a share's worth of %s: %d/%d -> %d/%d", h, kind, v0.Operator, v0.Tokens, v0.Shares, v1.Tokens, v1.Shares)
	}
}

// unbondingsOf returns the unbonding entries from the validator op, keyed
// by delegator and creation height.
func unbondingsOf(t testing.TB, r Reader, op crypto.Address) map[string]UnbondingEntry {
	out := map[string]UnbondingEntry{}
	q := NewQuery(r)
	must(t, r.Iterate(key(prefixUbdV, op[:]), func(k, _ []byte) error {
		_, del, err := parsePair(k, prefixUbdV)
		if err != nil {
			return err
		}
		us, _, err := q.Unbondings(del, crypto.Address{}, MaxPage)
		for _, u := range us {
			if u.Operator == op {
				for _, e := range u.Entries {
					out[fmt.Sprint(del, e.CreationHeight)] = e
				}
			}
		}
		return err
	}))
	return out
}

// checkDoubleSign checks a double sign's effect on the offender's
// unbonding entries: those created before the infraction, or matured, are
// untouched; the others lost at least the slash fraction of their initial
// balance (all of it when that is more than they held).
func (w *world) checkDoubleSign(h uint64, inf Infraction, before map[string]UnbondingEntry, after Reader) {
	rec, ok, _ := NewQuery(after).ConsRecord(inf.ConsAddr)
	if !ok || !rec.Tombstoned {
		w.t.Fatalf("height %d: double signer %s not tombstoned", h, inf.ConsAddr)
	}
	if v, ok, _ := NewQuery(after).Validator(rec.Operator); ok && (!v.Jailed || !v.Tombstoned) {
		w.t.Fatalf("height %d: double signer %+v not jailed for good", h, v)
	}
	now := unbondingsOf(w.t, after, rec.Operator)
	for k, e0 := range before {
		if e0.CompletionHeight <= h {
			continue // matured in this block
		}
		e1, ok := now[k]
		if !ok {
			w.t.Fatalf("height %d: entry %s vanished in a slash", h, k)
		}
		if e0.CreationHeight < inf.Height {
			if e1 != e0 {
				w.t.Fatalf("height %d: entry %+v created before the infraction at %d was slashed to %+v", h, e0, inf.Height, e1)
			}
			continue
		}
		want := e0.Balance - min(e0.Balance, w.p.SlashFractionDoubleSign.Of(e0.InitialBalance))
		if e1.Balance > want {
			w.t.Fatalf("height %d: entry %+v created at or after the infraction at %d kept %d, at most %d", h, e0, inf.Height, e1.Balance, want)
		}
	}
}

func addrOf(m Member) []byte { a := m.ConsKey.Address(); return a[:] }

// TestPropertyRandomOperations applies random operations and EndBlocks to
// random parameters and checks after every block: the pool equals the
// validators' tokens and the entries' balances, tokens are conserved
// against a model of the accounts (paid in == bonded + unbonding + burned +
// paid out), the active set follows its rules, a rejected operation
// stages nothing, and the overlay reads as its committed result.
// Replay a failure with -seed or LEDGERD_TEST_SEED.
func TestPropertyRandomOperations(t *testing.T) {
	r, seed := testseed.Rand(t)
	worlds, heights := 30, 150
	if testing.Short() {
		worlds = 5
	}
	total := map[string]int{}
	for i := range worlds {
		w := newWorld(t, rand.New(rand.NewPCG(r.Uint64(), r.Uint64())))
		for h := uint64(1); h <= uint64(heights); h++ {
			w.block(h)
		}
		if t.Failed() {
			t.Fatalf("world %d of seed %d", i, seed)
		}
		for k, v := range w.stats {
			total[k] += v
		}
	}
	keys := make([]string, 0, len(total))
	for k := range total {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		t.Logf("%-22s %d", k, total[k])
	}
	for _, k := range []string{"create", "delegate", "undelegate", "unjail", "payout", "set change", "double sign punished", "undelegate rejected", "downtime jail", "validator removed"} {
		if total[k] == 0 {
			t.Errorf("no %q in the run: the test does not exercise it", k)
		}
	}
}
