package sim

import (
	"bytes"
	"fmt"
	"maps"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/memstate"
	"github.com/ledgerd/ledgerd/ledger/staking"
)

// reference is the chain as the honest nodes decided it (the first
// honest decision of each height), executed once more, block after
// block, on a store of the simulator's own. It is where the checks take
// every height's validator set from (heights 1 to its height + 2), and
// where the staking state is checked block by block:
//
//   - sets: block H leaves the set of H+1 as it was and makes the staking
//     module's active set after H the set of H+2 (the ledger keeps the old
//     one when no validator is left); the store's history says the same;
//   - budget: the faulty validators (the twins' key, the byzantine
//     validator, the disk-fault node) hold less than a third of the power
//     of every height's set;
//   - stake: balances plus the stake held equal the supply, the pool's
//     bonded and unbonding tokens are the validators' and the entries'
//     sums, and every slash (double sign or downtime) takes its share of
//     each unbonding entry at stake and the rest from the validator's
//     tokens, recomputed here from the state before the block.
type reference struct {
	s     *simulation
	store *chainStore
	// faulty are the consensus addresses whose power counts against the
	// third: the twins' key, the byzantine validator and the disk-fault
	// node (see sharePower).
	faulty map[crypto.Address]bool
	// budgeted is the highest height whose set's faulty power was checked.
	budgeted uint64
}

func newReference(s *simulation) *reference {
	return &reference{s: s, store: newChainStore(s), faulty: map[crypto.Address]bool{}}
}

// height is the last height the reference executed.
func (r *reference) height() uint64 { return r.store.height() }

// setAt returns the validator set of height h if the reference knows it
// (heights 1 to its height + 2).
func (r *reference) setAt(h uint64) (*ledger.ValidatorSet, bool) {
	if h == 0 || h > r.height()+2 {
		return nil, false
	}
	vs, err := r.store.State.ValidatorsAt(h)
	return vs, err == nil
}

// setOf returns the set of height h the checks use on node n: the
// reference's, or, for a height the reference does not know yet (a
// faulty node ahead of every honest one), the node's own.
func (n *node) setOf(h uint64) *ledger.ValidatorSet {
	if vs, ok := n.s.ref.setAt(h); ok {
		return vs
	}
	vs, err := nodeSets{n}.ValidatorsAt(h)
	if err != nil {
		return n.s.genesis.Validators
	}
	return vs
}

// stakeView reads a memstate's staking records as the staking module's
// Reader.
type stakeView struct{ m *memstate.State }

func (v stakeView) Get(k []byte) ([]byte, error) { return v.m.Record(k) }
func (v stakeView) Iterate(prefix []byte, fn func(k, v []byte) error) error {
	return v.m.IterateRecords(prefix, fn)
}

// advance executes the block an honest node decided first at its height,
// d.Height, which must be the reference's next, and checks what the block
// did.
func (r *reference) advance(n *node, d consensus.EffectDecide) {
	s := r.s
	c := r.store
	if d.Height != c.height()+1 {
		s.check.fail(InvValidity, n, "first honest decision of h=%d, the reference chain is at %d", d.Height, c.height())
		return
	}
	before := c.state
	pre := &memstate.State{Accounts: c.Accounts, Records: maps.Clone(c.Records), Sets: c.Sets}
	res, err := c.applyResult(d)
	if err != nil {
		s.check.fail(InvValidity, n, "the reference chain cannot execute block %s of h=%d: %v", consensus.ShortID(d.Block.Hash()), d.Height, err)
		return
	}
	r.checkSets(n, &before, d.Height)
	if s.staked {
		r.checkStake(n, d.Block, pre, &before)
	}
	r.checkBudget(n)
	if s.churn != nil {
		s.churn.advance(d.Block, res)
	}
}

// checkSets checks the rule of set changes on the reference's block h:
// the set of h+1 is the one the state before it named, the set of h+2 is
// the staking module's active set after it (or the set of h+1 when the
// active set is empty), and the store's history agrees with the state.
func (r *reference) checkSets(n *node, before *ledger.State, h uint64) {
	s, c := r.s, r.store
	s.stats.Checks[InvSets]++
	after := &c.state
	if after.Validators.Hash() != before.NextValidators.Hash() {
		s.check.fail(InvSets, n, "block %d changed the set of height %d, which the block before it fixed", h, h+1)
		return
	}
	if vs, _ := c.State.ValidatorsAt(h + 1); vs.Hash() != after.Validators.Hash() {
		s.check.fail(InvSets, n, "the store's history names another set for height %d than the state", h+1)
		return
	}
	if vs, _ := c.State.ValidatorsAt(h + 2); vs.Hash() != after.NextValidators.Hash() {
		s.check.fail(InvSets, n, "the store's history names another set for height %d than the state", h+2)
		return
	}
	if !s.staked {
		if after.NextValidators.Hash() != s.genesis.Validators.Hash() {
			s.check.fail(InvSets, n, "the set of height %d changed in a run without staking", h+2)
		}
		return
	}
	active, err := staking.NewQuery(stakeView{c.State}).Active()
	if err != nil {
		s.check.fail(InvStake, n, "after block %d: active set: %v", h, err)
		return
	}
	want := after.Validators
	if len(active) > 0 {
		vals := make([]ledger.Validator, len(active))
		for i, m := range active {
			vals[i] = ledger.Validator{PubKey: m.ConsKey, Power: m.Power}
		}
		vs, err := ledger.NewValidatorSet(vals)
		if err != nil {
			s.check.fail(InvSets, n, "after block %d: the staking module's active set is no validator set: %v", h, err)
			return
		}
		want = vs
	}
	if want.Hash() != after.NextValidators.Hash() {
		s.check.fail(InvSets, n, "after block %d the set of height %d is %s, the staking module's active set %s",
			h, h+2, setString(after.NextValidators), setString(want))
		return
	}
	if before.NextValidators.Hash() != after.NextValidators.Hash() {
		s.stats.SetChanges++
		s.tracef(n, "reference: block %d makes the set of height %d %s", h, h+2, setString(after.NextValidators))
	}
}

// checkBudget checks the faulty power of every set the reference learned:
// below a third of the set's power (but in the runs made to break that).
func (r *reference) checkBudget(n *node) {
	s := r.s
	if s.opts.ByzantineThird || s.opts.ExactThird {
		return
	}
	for h := r.budgeted + 1; h <= r.height()+2; h++ {
		vs, _ := r.setAt(h)
		var f uint64
		for i := 0; i < vs.Size(); i++ {
			if r.faulty[vs.Get(i).Address()] {
				f += vs.Get(i).Power
			}
		}
		s.stats.Checks[InvBudget]++
		if t := totalOf(vs); 3*f >= t {
			s.check.fail(InvBudget, n, "the faulty validators hold %d of the %d power of height %d's set %s", f, t, h, setString(vs))
			return
		}
		r.budgeted = h
	}
}

// setString renders a set as its members' names (or short addresses) and
// powers, in set order.
func setString(vs *ledger.ValidatorSet) string {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := 0; i < vs.Size(); i++ {
		v := vs.Get(i)
		if i > 0 {
			b.WriteByte(' ')
		}
		name := v.Name
		if name == "" {
			name = consensus.ShortAddr(v.Address())
		}
		fmt.Fprintf(&b, "%s:%d", name, v.Power)
	}
	b.WriteByte('}')
	return b.String()
}

// who names an address of the run: a validator key (v3), its operator
// (op3), a delegator (d0), or the address's short form.
func (s *simulation) who(a crypto.Address) string {
	for i := 0; i < max(s.keys, s.genesis.Validators.Size()); i++ {
		switch a {
		case simKey("validator", i).PubKey().Address():
			return fmt.Sprintf("v%d", i)
		case operatorAddr(i):
			return fmt.Sprintf("op%d", i)
		}
	}
	for i := 0; i < numDelegators; i++ {
		if a == simKey("delegator", i).PubKey().Address() {
			return fmt.Sprintf("d%d", i)
		}
	}
	return consensus.ShortAddr(a)
}

// stakers are the accounts that can hold delegations and unbonding
// entries in a run: every validator key's operator and the delegators.
func (s *simulation) stakers() []crypto.Address {
	out := make([]crypto.Address, 0, s.keys+numDelegators)
	for i := 0; i < s.keys; i++ {
		out = append(out, operatorAddr(i))
	}
	for i := 0; i < numDelegators; i++ {
		out = append(out, simKey("delegator", i).PubKey().Address())
	}
	return out
}

// checkSupply checks a node's state: balances and the stake held (bonded,
// unbonding, burned) add up to the genesis supply.
func (s *simulation) checkSupply(n *node, st *chainStore) {
	s.stats.Checks[InvStake]++
	held, err := ledger.StakeHeld(st.State)
	if err != nil {
		s.check.fail(InvStake, n, "after block %d: stake held: %v", st.height(), err)
		return
	}
	sum := held
	for _, a := range st.Accounts {
		sum += a.Balance
	}
	if sum != st.state.TotalSupply {
		s.check.fail(InvStake, n, "after block %d: balances and stake add up to %d, the supply is %d", st.height(), sum, st.state.TotalSupply)
	}
}

// checkStake checks the reference's state after block b, whose state
// before was pre (records) and before (the ledger state): the supply, the
// pool's sums, and every slash the block made.
func (r *reference) checkStake(n *node, b *ledger.Block, pre *memstate.State, before *ledger.State) {
	s, c := r.s, r.store
	s.checkSupply(n, c)
	q := staking.NewQuery(stakeView{c.State})
	pool, err := q.Pool()
	if err != nil {
		s.check.fail(InvStake, n, "after block %d: pool: %v", b.Height(), err)
		return
	}
	var bonded, unbonding uint64
	vals, err := r.validators(q)
	if err != nil {
		s.check.fail(InvStake, n, "after block %d: validators: %v", b.Height(), err)
		return
	}
	for _, v := range vals {
		bonded += v.Tokens
	}
	for _, del := range s.stakers() {
		for i := 0; i < s.keys; i++ {
			for _, e := range r.entries(c.State, del, operatorAddr(i)) {
				unbonding += e.Balance
			}
			for _, e := range r.entries(pre, del, operatorAddr(i)) {
				if e.CompletionHeight <= b.Height() {
					s.stats.Matured++
				}
			}
		}
	}
	if bonded != pool.Bonded || unbonding != pool.Unbonding {
		s.check.fail(InvStake, n, "after block %d: the pool holds %d bonded and %d unbonding tokens; the validators hold %d, the entries %d",
			b.Height(), pool.Bonded, pool.Unbonding, bonded, unbonding)
		return
	}
	r.checkSlashes(n, b, pre, before, vals)
}

// validators lists every validator record.
func (r *reference) validators(q staking.Query) ([]staking.Validator, error) {
	var out []staking.Validator
	var after crypto.Address
	for {
		page, more, err := q.Validators(after, staking.MaxPage)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if !more || len(page) == 0 {
			return out, nil
		}
		after = page[len(page)-1].Operator
	}
}

// entries returns del's unbonding entries from the validator op in m.
func (r *reference) entries(m *memstate.State, del, op crypto.Address) []staking.UnbondingEntry {
	b, _ := m.Record(staking.UnbondingKey(del, op))
	if b == nil {
		return nil
	}
	u, err := staking.DecodeUnbonding(b)
	if err != nil {
		return nil // the pool check fails on it
	}
	return u.Entries
}

// slashCase is a slash block h made: of the validator op, for an
// infraction at height infraction when its power was power.
type slashCase struct {
	op, cons   crypto.Address
	infraction uint64
	power      uint64
	fraction   staking.Fraction
	kind       string
}

// checkSlashes recomputes every slash block b made, from the state before
// it: a double sign the block's evidence proves (of a key not yet
// tombstoned, whose validator exists), and a downtime jailing (a validator
// jailed by the block until height + DowntimeJailHeights). Every unbonding
// entry of the validator created at or after the infraction that has not
// matured loses the fraction of its initial balance (capped by its
// balance); the validator's tokens lose the rest of fraction * power *
// PowerUnit (capped by them), checked when no transaction of the block
// touched the validator.
func (r *reference) checkSlashes(n *node, b *ledger.Block, pre *memstate.State, before *ledger.State, vals []staking.Validator) {
	s, c := r.s, r.store
	h := b.Height()
	p := before.Staking
	preQ := staking.NewQuery(stakeView{pre})
	var cases []slashCase
	seen := map[crypto.Address]bool{}
	for _, ev := range b.Evidence {
		cons := ev.VoteA.Validator
		if seen[cons] {
			continue
		}
		seen[cons] = true
		rec, ok, err := preQ.ConsRecord(cons)
		if err != nil || !ok || rec.Tombstoned {
			continue
		}
		if _, ok, _ := preQ.Validator(rec.Operator); !ok {
			continue
		}
		vs, _ := r.setAt(ev.VoteA.Height)
		i, ok := vs.ByAddress(cons)
		if !ok {
			continue
		}
		cases = append(cases, slashCase{op: rec.Operator, cons: cons, infraction: ev.VoteA.Height, power: vs.Get(i).Power,
			fraction: p.SlashFractionDoubleSign, kind: "double sign"})
		s.stats.Tombstoned++
	}
	for _, v := range vals {
		if !v.Jailed || v.Tombstoned || v.JailedUntil != h+p.DowntimeJailHeights {
			continue
		}
		old, ok, _ := preQ.Validator(v.Operator)
		if !ok || old.Jailed {
			continue
		}
		i, ok := before.LastValidators.ByAddress(v.ConsAddr())
		if !ok {
			continue
		}
		cases = append(cases, slashCase{op: v.Operator, cons: v.ConsAddr(), infraction: max(h, staking.DowntimeDelay) - staking.DowntimeDelay,
			power: before.LastValidators.Get(i).Power, fraction: p.SlashFractionDowntime, kind: "downtime"})
		s.stats.Jailed++
		if !r.faulty[v.ConsAddr()] {
			s.stats.HonestJailed++
		}
		s.tracef(n, "reference: block %d jails %s for downtime until %d", h, v.Moniker, v.JailedUntil)
	}
	if len(cases) == 0 {
		return
	}
	touched := map[crypto.Address]bool{}
	for _, tx := range b.Txs {
		if tx.Kind != ledger.TxTransfer {
			touched[tx.To] = true
			touched[tx.Sender()] = true
		}
	}
	q := staking.NewQuery(stakeView{c.State})
	for _, sc := range cases {
		s.stats.Checks[InvStake]++
		s.stats.Slashes++
		remaining := sc.fraction.Of(sc.power * p.PowerUnit)
		for _, del := range s.stakers() {
			preBal := map[uint64]uint64{}
			for _, e := range r.entries(pre, del, sc.op) {
				preBal[e.CreationHeight] = e.Balance
			}
			for _, e := range r.entries(c.State, del, sc.op) {
				if e.CreationHeight < sc.infraction || e.CompletionHeight <= h {
					continue
				}
				bal, ok := preBal[e.CreationHeight]
				if !ok {
					bal = e.InitialBalance // created by this block
				}
				share := sc.fraction.Of(e.InitialBalance)
				remaining -= min(share, remaining)
				s.stats.SlashedEntries++
				if want := bal - min(share, bal); e.Balance != want {
					s.check.fail(InvStake, n, "block %d slashes %s (%s at height %d, power %d): %s's unbonding entry of height %d holds %d, want %d (%d before, %s of its initial %d)",
						h, s.who(sc.cons), sc.kind, sc.infraction, sc.power, s.who(del), e.CreationHeight, e.Balance, want, bal, sc.fraction, e.InitialBalance)
					return
				}
			}
		}
		if touched[sc.op] {
			continue
		}
		old, ok1, _ := preQ.Validator(sc.op)
		now, ok2, _ := q.Validator(sc.op)
		if !ok1 || !ok2 {
			continue
		}
		if want := old.Tokens - min(remaining, old.Tokens); now.Tokens != want {
			s.check.fail(InvStake, n, "block %d slashes %s (%s at height %d, power %d): its tokens went from %d to %d, want %d",
				h, s.who(sc.cons), sc.kind, sc.infraction, sc.power, old.Tokens, now.Tokens, want)
			return
		}
	}
}

// checkNodeSets checks the sets node n's machine holds when it starts
// height h: those of h and h+1 are the reference's.
func (n *node) checkNodeSets(h uint64) {
	s := n.s
	m := n.core.Machine()
	for _, k := range []uint64{h, h + 1} {
		want, ok := s.ref.setAt(k)
		got := m.ValidatorsAt(k)
		if !ok || got == nil {
			continue
		}
		s.stats.Checks[InvSets]++
		if got.Hash() != want.Hash() {
			s.check.fail(InvSets, n, "its machine at height %d holds %s as the set of height %d, the chain's is %s", h, setString(got), k, setString(want))
			return
		}
	}
}

// checkStoreSets checks node n's ledger state after it stored a block:
// the sets of the next two heights are the reference's.
func (n *node) checkStoreSets() {
	s, st := n.s, &n.store.state
	for _, k := range []uint64{st.Height + 1, st.Height + 2} {
		want, ok := s.ref.setAt(k)
		if !ok {
			continue
		}
		got, _ := st.ValidatorsAt(k)
		s.stats.Checks[InvSets]++
		if got.Hash() != want.Hash() {
			s.check.fail(InvSets, n, "after block %d its state names %s as the set of height %d, the chain's is %s", st.Height, setString(got), k, setString(want))
			return
		}
	}
}
