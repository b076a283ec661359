package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/staking"
)

// churn plans the validator-set changes of a FaultChurn run. Every few
// heights of the reference chain it draws one change and signs the
// staking transaction that makes it; every proposer puts the transaction
// in its blocks (BuildBlock) until one of them is committed, and the next
// change waits for that. The changes:
//
//   - join: a spare validator key, whose node has followed the chain from
//     the start, is created by its operator (create_validator) with a
//     power of up to a third of the total;
//   - leave: an operator undelegates its whole self-bond (the validator is
//     jailed below one power unit of self-bond, and leaves the set); its
//     node goes on as a follower;
//   - power up or down: the operator, or one of the delegators, delegates
//     or undelegates up to a third of the total power;
//   - unjail: the operator of a validator jailed for downtime, once its
//     jail time is over.
//
// A change is drawn only if the set it leads to keeps two members and the
// faulty validators below a seventh of its power (churnMargin), or, when
// they hold more already, does not raise their share; and below a third
// in any case. The plan is tried on a staking overlay over the reference
// chain's state, whose ActiveSet is what the block's end will compute.
//
// Why a seventh: validators are also jailed for downtime, by the block's
// end, without notice, and the faulty validators must stay below a third
// of the set that is left. A validator is jailed when it misses more than
// maxMissed (4) of the last SignedBlocksWindow (8) last commits; every
// commit carries more than two thirds of the power, so the power missing
// from the commits of a window adds up to less than 8T/3, and the power
// jailed for missing 5 of them to less than 8T/15. With F < T/7, the
// faulty validators then hold less than (T/7)/(7T/15) = 15/49 of what is
// left: still below a third. (Jailed validators come back by unjail; the
// planner tries unjailing first.) A third of the
// changes are tried first on a faulty validator's power, downward, so
// that its unbonding entries are at stake when its double sign is
// slashed. Everything is drawn from the run's churn stream at the
// reference chain's heights, so the plan is a function of the seed.
type churn struct {
	s   *simulation
	rng *rand.Rand
	// inflight is the change waiting to be committed, and from is the
	// key that signed it.
	inflight *ledger.Tx
	what     string
	kind     churnKind
	// next is the reference height from which the next change may be
	// planned.
	next uint64
}

func newChurn(s *simulation) *churn {
	c := &churn{s: s, rng: s.crng}
	c.next = uint64(c.rng.IntN(3))
	return c
}

// churnMargin: the churn keeps the faulty validators below a
// 1/churnMargin share of every set it plans (see churn), and sharePower
// starts them there.
const churnMargin = 7

// churnHeights is how many heights a churn run decides at least: the run
// does not end (liveness met, evidence committed) before the reference
// chain has this many, so that changes land after the heal too, unbonding
// matures and silent validators are jailed.
const churnHeights = 20

// pending returns the change to put in a block built on st, if its
// sender's account on st is ready for it.
func (c *churn) pending(accts map[crypto.Address]ledger.Account) *ledger.Tx {
	tx := c.inflight
	if tx == nil {
		return nil
	}
	if acc := accts[tx.Sender()]; acc.Nonce != tx.Nonce || acc.Balance < tx.Cost() {
		return nil
	}
	return tx
}

// advance runs after the reference chain executed block b: it notes a
// committed change and plans the next one when its height has come.
func (c *churn) advance(b *ledger.Block, res *ledger.Result) {
	s := c.s
	h := b.Height()
	for i, tx := range b.Txs {
		if tx.Kind == ledger.TxTransfer {
			continue
		}
		if c.inflight != nil && tx.Hash() == c.inflight.Hash() {
			s.stats.ChurnTxs++
			s.stats.ChurnKinds[c.kind]++
			if e := res.Receipts[i].Error; e != "" {
				s.stats.ChurnFailed++
				s.tracef(nil, "churn: %s committed at h=%d and failed: %s", c.what, h, e)
			} else {
				s.tracef(nil, "churn: %s committed at h=%d", c.what, h)
			}
			c.inflight = nil
			c.next = h + 1 + uint64(c.rng.IntN(3))
		}
	}
	if c.inflight == nil && h >= c.next {
		c.plan(h)
	}
}

// start plans the first change before any block, if its height is 0.
func (c *churn) start() {
	if c.next == 0 {
		c.plan(0)
	}
}

// churnKind is what a change does.
type churnKind uint8

const (
	churnJoin churnKind = iota
	churnLeave
	churnUp
	churnDown
	churnUnjail
	numChurnKinds
)

var churnKindNames = [numChurnKinds]string{"join", "leave", "power up", "power down", "unjail"}

// change is one candidate: the transaction and what it does.
type change struct {
	kind churnKind
	key  crypto.PrivKey
	tx   ledger.Tx
	what string
	// try applies it to a staking overlay.
	try func(stk *staking.Staking, h uint64) error
}

// plan draws the next change on the reference chain at height h: tries
// candidates in a drawn order and keeps the first whose set keeps the
// budget.
func (c *churn) plan(h uint64) {
	s := c.s
	ref := s.ref
	view := stakeView{ref.store.State}
	q := staking.NewQuery(view)
	p := ref.store.state.Staking
	cur, _ := ref.setAt(h + 2)
	total := totalOf(cur)
	third := max(1, total/3)

	var joins, leaves, ups, downs, unjails, faultyDown []change
	for i := 0; i < s.keys; i++ {
		cons := simKey("validator", i).PubKey()
		op := simKey("operator", i)
		opAddr := op.PubKey().Address()
		v, exists, err := q.Validator(opAddr)
		if err != nil {
			panic(fmt.Sprintf("sim: churn: %v", err))
		}
		name := fmt.Sprintf("v%d", i)
		if !exists {
			if _, used, _ := q.ConsRecord(cons.Address()); used {
				continue // it served once: a key serves one validator
			}
			amount := (1 + c.rng.Uint64N(third)) * p.PowerUnit
			joins = append(joins, change{kind: churnJoin, key: op, what: fmt.Sprintf("%s joins with power %d", name, amount/p.PowerUnit),
				tx: ledger.Tx{Kind: ledger.TxCreateValidator, ConsKey: cons, Moniker: name, Amount: amount},
				try: func(stk *staking.Staking, h uint64) error {
					return stk.CreateValidator(h, opAddr, cons, name, amount)
				}})
			continue
		}
		if v.Tombstoned {
			continue
		}
		self, _, err := q.Delegation(opAddr, opAddr)
		if err != nil {
			panic(fmt.Sprintf("sim: churn: %v", err))
		}
		if v.Jailed {
			if v.JailedUntil <= h+1 && self.Tokens >= p.PowerUnit {
				unjails = append(unjails, change{kind: churnUnjail, key: op, what: name + " unjails",
					tx:  ledger.Tx{Kind: ledger.TxUnjail},
					try: func(stk *staking.Staking, h uint64) error { return stk.Unjail(h, opAddr) }})
			}
			continue
		}
		power := v.Power(p.PowerUnit)
		if _, active := cur.ByAddress(cons.Address()); !active || power == 0 {
			continue
		}
		if power <= third && self.Tokens > 0 {
			amount := self.Tokens
			leaves = append(leaves, change{kind: churnLeave, key: op, what: fmt.Sprintf("%s leaves (undelegates its self-bond of %d)", name, amount),
				tx: ledger.Tx{Kind: ledger.TxUndelegate, To: opAddr, Amount: amount},
				try: func(stk *staking.Staking, h uint64) error {
					_, err := stk.Undelegate(h, opAddr, opAddr, amount)
					return err
				}})
		}
		// Power up, from the operator or a delegator.
		from := op
		if c.rng.IntN(2) == 0 {
			from = simKey("delegator", c.rng.IntN(numDelegators))
		}
		fromAddr := from.PubKey().Address()
		up := (1 + c.rng.Uint64N(third)) * p.PowerUnit
		ups = append(ups, change{kind: churnUp, key: from, what: fmt.Sprintf("%s's power +%d", name, up/p.PowerUnit),
			tx:  ledger.Tx{Kind: ledger.TxDelegate, To: opAddr, Amount: up},
			try: func(stk *staking.Staking, h uint64) error { return stk.Delegate(h, fromAddr, opAddr, up) }})
		// Power down, from a delegation that keeps the operator's
		// self-bond at one power unit at least.
		for _, del := range []crypto.PrivKey{op, simKey("delegator", 0), simKey("delegator", 1)} {
			delAddr := del.PubKey().Address()
			d, ok, err := q.Delegation(delAddr, opAddr)
			if err != nil {
				panic(fmt.Sprintf("sim: churn: %v", err))
			}
			if !ok {
				continue
			}
			room := d.Tokens
			if delAddr == opAddr {
				room = d.Tokens - min(d.Tokens, p.PowerUnit)
			}
			if room = min(room, (power-1)*p.PowerUnit, third*p.PowerUnit); room == 0 {
				continue
			}
			down := 1 + c.rng.Uint64N(room)
			ch := change{kind: churnDown, key: del, what: fmt.Sprintf("%s's power down by %d tokens", name, down),
				tx: ledger.Tx{Kind: ledger.TxUndelegate, To: opAddr, Amount: down},
				try: func(stk *staking.Staking, h uint64) error {
					_, err := stk.Undelegate(h, delAddr, opAddr, down)
					return err
				}}
			if ref.faulty[cons.Address()] {
				faultyDown = append(faultyDown, ch)
			} else {
				downs = append(downs, ch)
			}
		}
	}
	// Unjailing comes first (it gives honest power back); then, a third
	// of the time, a faulty validator's power down; then the kinds in a
	// drawn order, each kind's candidates in a drawn order.
	kinds := [][]change{joins, leaves, ups, append(downs, faultyDown...)}
	c.rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	order := unjails
	if c.rng.IntN(3) == 0 {
		order = append(order, faultyDown...)
	}
	for _, k := range kinds {
		c.rng.Shuffle(len(k), func(i, j int) { k[i], k[j] = k[j], k[i] })
		order = append(order, k...)
	}
	for _, ch := range order {
		if !c.keepsBudget(ch, h+1) {
			continue
		}
		acc := ref.store.Accounts[ch.key.PubKey().Address()]
		tx := ch.tx
		tx.ChainID, tx.Fee, tx.Nonce = s.chainID, 1, acc.Nonce
		tx.Sign(ch.key)
		c.inflight, c.what, c.kind = &tx, ch.what, ch.kind
		s.tracef(nil, "churn: planned at h=%d: %s", h, ch.what)
		return
	}
	c.next = h + 1 // nothing fits now: try again at the next height
}

// keepsBudget applies ch to a staking overlay over the reference state as
// of block h and reports whether the active set it leads to keeps the
// faulty power below a third and has two members at least.
func (c *churn) keepsBudget(ch change, h uint64) bool {
	s := c.s
	ref := s.ref
	stk := staking.New(stakeView{ref.store.State}, ref.store.state.Staking)
	if err := ch.try(stk, h); errors.Is(err, staking.ErrRejected) {
		return false
	} else if err != nil {
		panic(fmt.Sprintf("sim: churn: %s: %v", ch.what, err))
	}
	members, _, err := stk.ActiveSet()
	if err != nil {
		panic(fmt.Sprintf("sim: churn: active set: %v", err))
	}
	if len(members) < 2 {
		return false
	}
	var f, t uint64
	for _, m := range members {
		t += m.Power
		if ref.faulty[m.ConsKey.Address()] {
			f += m.Power
		}
	}
	cur, _ := ref.setAt(ref.height() + 2)
	var f0 uint64
	for i := 0; i < cur.Size(); i++ {
		if ref.faulty[cur.Get(i).Address()] {
			f0 += cur.Get(i).Power
		}
	}
	t0 := totalOf(cur)
	return 3*f < t && (churnMargin*f < t || f*t0 <= f0*t)
}
