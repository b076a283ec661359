package ledger_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/ledgerd/ledgerd/ledger/staking"
)

// stakeChain runs blocks on an in-memory state with the validator set of
// each height signing, so that set changes can be followed end to end.
type stakeChain struct {
	t    *testing.T
	c    *ledgertest.Chain
	ms   *ledgertest.MapState
	st   *ledger.State
	keys map[crypto.Address]crypto.PrivKey // every consensus key, by address
	last *ledger.Block
	// absent validators do not sign commits.
	absent map[crypto.Address]bool
}

func newStakeChain(t *testing.T, adjust func(*staking.Params)) *stakeChain {
	c := ledgertest.NewChain(4, 4, 1_000_000)
	if adjust != nil {
		adjust(&c.Genesis.Staking)
	}
	sc := &stakeChain{t: t, c: c, ms: c.NewMapState(), st: c.Genesis, keys: map[crypto.Address]crypto.PrivKey{}, absent: map[crypto.Address]bool{}}
	for _, k := range c.ValKeys {
		sc.keys[k.PubKey().Address()] = k
	}
	return sc
}

// commit signs b with the members of vals that are not absent.
func (sc *stakeChain) commit(b *ledger.Block, vals *ledger.ValidatorSet) *ledger.Commit {
	id := b.Hash()
	msg := ledger.VoteSignBytes(ledgertest.ChainID, ledger.Precommit, b.Height(), 0, id)
	cm := &ledger.Commit{Height: b.Height(), BlockID: id}
	for i := 0; i < vals.Size(); i++ {
		a := vals.Get(i).Address()
		if sc.absent[a] {
			continue
		}
		cm.Sigs = append(cm.Sigs, ledger.CommitSig{ValidatorIndex: uint32(i), Sig: sc.keys[a].Sign(msg)})
	}
	return cm
}

// block executes the next block with txs and evidence and applies it.
func (sc *stakeChain) block(txs []*ledger.Tx, evs ...*ledger.Evidence) *ledger.Result {
	sc.t.Helper()
	var lc *ledger.Commit
	if sc.last != nil {
		lc = sc.commit(sc.last, sc.st.LastValidators)
	}
	b := sc.c.NextBlock(sc.st, txs, lc, 0)
	b.Header.Proposer = sc.st.Validators.Get(0).Address()
	b.Evidence = evs
	b.FillHeader()
	res, err := ledger.Execute(sc.st, sc.ms, b)
	if err != nil {
		sc.t.Fatalf("block %d: %v", b.Height(), err)
	}
	if err := sc.ms.Apply(b.Height(), res); err != nil {
		sc.t.Fatal(err)
	}
	sc.st = sc.st.Next(b, res, crypto.Sum(b.Encode()))
	sc.last = b
	sc.checkSupply()
	return res
}

func (sc *stakeChain) checkSupply() {
	sc.t.Helper()
	sum, err := ledger.StakeHeld(sc.ms)
	if err != nil {
		sc.t.Fatal(err)
	}
	for _, a := range sc.ms.Accounts {
		sum += a.Balance
	}
	if sum != sc.st.TotalSupply {
		sc.t.Fatalf("after block %d: balances and stake %d, supply %d", sc.st.Height, sum, sc.st.TotalSupply)
	}
}

func (sc *stakeChain) account(i int) (crypto.PrivKey, crypto.Address) {
	k := sc.c.Accounts[i]
	return k, k.PubKey().Address()
}

func (sc *stakeChain) tx(from int, kind ledger.TxKind, to crypto.Address, amount uint64, mod func(*ledger.Tx)) *ledger.Tx {
	k, a := sc.account(from)
	tx := &ledger.Tx{ChainID: ledgertest.ChainID, Kind: kind, To: to, Amount: amount, Fee: 3, Nonce: sc.ms.Accounts[a].Nonce}
	if mod != nil {
		mod(tx)
	}
	tx.Sign(k)
	return tx
}

func members(vals *ledger.ValidatorSet) string {
	var names []string
	for _, v := range vals.Validators() {
		names = append(names, v.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// TestStakingChangesTheSetTwoHeightsLater follows a validator from its
// creation through delegation and undelegation to its exit, checking the
// set of every height and the supply after every block.
func TestStakingChangesTheSetTwoHeightsLater(t *testing.T) {
	sc := newStakeChain(t, func(p *staking.Params) { p.UnbondingHeights = 3 })
	cons := ledgertest.Key("new-validator", 0)
	sc.keys[cons.PubKey().Address()] = cons
	_, op := sc.account(0)
	unit := sc.st.Staking.PowerUnit

	res := sc.block([]*ledger.Tx{sc.tx(0, ledger.TxCreateValidator, crypto.Address{}, 20*unit, func(tx *ledger.Tx) {
		tx.ConsKey, tx.Moniker = cons.PubKey(), "newcomer"
	})}) // block 1
	if res.Receipts[0].Error != "" || res.NextValidators == nil {
		t.Fatalf("create-validator: receipt %+v, next set %v", res.Receipts[0], res.NextValidators)
	}
	if got := members(sc.st.Validators); got != "val0,val1,val2,val3" {
		t.Fatalf("set of height 2 = %s, want the genesis set", got)
	}
	if got := members(sc.st.NextValidators); got != "newcomer,val0,val1,val2,val3" {
		t.Fatalf("set of height 3 = %s, want the newcomer in it", got)
	}
	if i, ok := sc.st.NextValidators.ByAddress(cons.PubKey().Address()); !ok || sc.st.NextValidators.Get(i).Power != 20 || sc.st.NextValidators.Get(i).Operator != op {
		t.Fatalf("newcomer in the set of height 3: %v", sc.st.NextValidators.Validators())
	}
	sc.block(nil) // block 2: the newcomer signs block 2's commit from height 3 on
	if got := members(sc.st.Validators); got != "newcomer,val0,val1,val2,val3" {
		t.Fatalf("set of height 3 = %s", got)
	}

	// Account 1 delegates to it: power 20 -> 30 from two heights on.
	sc.block([]*ledger.Tx{sc.tx(1, ledger.TxDelegate, op, 10*unit, nil)}) // block 3
	i, _ := sc.st.NextValidators.ByAddress(cons.PubKey().Address())
	if p := sc.st.NextValidators.Get(i).Power; p != 30 {
		t.Fatalf("newcomer's power after the delegation = %d, want 30", p)
	}

	// A delegation to nobody fails, but pays its fee and uses its nonce.
	_, a2 := sc.account(2)
	before := sc.ms.Accounts[a2]
	res = sc.block([]*ledger.Tx{sc.tx(2, ledger.TxDelegate, crypto.Address{9}, 5*unit, nil)}) // block 4
	after := sc.ms.Accounts[a2]
	if !strings.Contains(res.Receipts[0].Error, "no validator") || after.Balance != before.Balance-3 || after.Nonce != before.Nonce+1 {
		t.Fatalf("failed delegation: receipt %q, account %+v -> %+v", res.Receipts[0].Error, before, after)
	}

	// The operator takes everything back: the validator leaves the set,
	// and the tokens return after the unbonding period.
	_, a0 := sc.account(0)
	bal := sc.ms.Accounts[a0].Balance
	res = sc.block([]*ledger.Tx{sc.tx(0, ledger.TxUndelegate, op, 20*unit, nil)}) // block 5, pays at 8
	if res.Receipts[0].Error != "" {
		t.Fatalf("undelegate: %s", res.Receipts[0].Error)
	}
	if got := members(sc.st.NextValidators); got != "val0,val1,val2,val3" {
		t.Fatalf("set of height 7 = %s, want the newcomer gone (its self-bond is below a power unit)", got)
	}
	for sc.st.Height < 7 {
		sc.block(nil)
	}
	if got := sc.ms.Accounts[a0].Balance; got != bal-3 {
		t.Fatalf("balance %d before maturity, want %d", got, bal-3)
	}
	sc.block(nil) // block 8: matures
	if got := sc.ms.Accounts[a0].Balance; got != bal-3+20*unit {
		t.Fatalf("balance %d after maturity, want %d", got, bal-3+20*unit)
	}
}

// TestDoubleSignSlashesAndTombstones commits evidence of an equivocation
// and checks that the signer loses stake and its place for good.
func TestDoubleSignSlashesAndTombstones(t *testing.T) {
	sc := newStakeChain(t, nil)
	sc.block(nil)
	sc.block(nil)
	bad := sc.c.ValKeys[1]
	vote := func(id crypto.Hash) *ledger.Vote {
		v := &ledger.Vote{Type: ledger.Prevote, Height: 2, Round: 0, BlockID: id, Validator: bad.PubKey().Address()}
		v.Sign(ledgertest.ChainID, bad)
		return v
	}
	ev := ledger.NewEvidence(vote(crypto.Sum([]byte("a"))), vote(crypto.Sum([]byte("b"))))
	held, _ := ledger.StakeHeld(sc.ms)
	res := sc.block(nil, ev) // block 3
	if res.NextValidators == nil {
		t.Fatal("the double signer stays in the set")
	}
	if _, ok := res.NextValidators.ByAddress(bad.PubKey().Address()); ok {
		t.Fatal("the double signer is in the set of height 5")
	}
	pool, err := staking.NewQuery(stakeRecords{sc.ms}).Pool()
	if err != nil {
		t.Fatal(err)
	}
	if want := sc.st.Staking.SlashFractionDoubleSign.Of(10 * sc.st.Staking.PowerUnit); pool.Burned != want {
		t.Fatalf("burned %d, want %d", pool.Burned, want)
	}
	if after, _ := ledger.StakeHeld(sc.ms); after != held {
		t.Fatalf("stake held %d -> %d: slashing must move tokens to Burned, not lose them", held, after)
	}
	// Unjailing a tombstoned validator fails.
	opKey := bad // genesis operators are their consensus keys' accounts
	sc.ms.Accounts[opKey.PubKey().Address()] = ledger.Account{Balance: 100}
	sc.st.TotalSupply += 100 // funded by the test
	tx := &ledger.Tx{ChainID: ledgertest.ChainID, Kind: ledger.TxUnjail, Fee: 1}
	tx.Sign(opKey)
	res = sc.block([]*ledger.Tx{tx})
	if !strings.Contains(res.Receipts[0].Error, "tombstone") {
		t.Fatalf("unjail of a tombstoned validator: %q", res.Receipts[0].Error)
	}
}

// TestDowntimeJails leaves one validator out of every commit and checks it
// is jailed (and leaves the set) once it missed more than the window allows.
func TestDowntimeJails(t *testing.T) {
	sc := newStakeChain(t, func(p *staking.Params) { p.SignedBlocksWindow = 10; p.MinSignedPerWindow = 500_000 })
	lazy := sc.c.ValKeys[2].PubKey().Address()
	sc.absent[lazy] = true
	jailedAt := uint64(0)
	for sc.st.Height < 30 && jailedAt == 0 {
		res := sc.block(nil)
		if res.NextValidators != nil {
			if _, ok := res.NextValidators.ByAddress(lazy); ok {
				t.Fatalf("block %d changed the set but kept the absent validator", sc.st.Height)
			}
			jailedAt = sc.st.Height
		}
	}
	// It signs from block 2's commit (in block 3) on; more than 5 of 10
	// missed after a full window of 10 takes at least 11 heights.
	if jailedAt == 0 || jailedAt < 11 {
		t.Fatalf("jailed at height %d, want between 11 and 30", jailedAt)
	}
}

type stakeRecords struct{ r ledger.StateReader }

func (s stakeRecords) Get(k []byte) ([]byte, error) { return s.r.Record(k) }
func (s stakeRecords) Iterate(p []byte, fn func(k, v []byte) error) error {
	return s.r.IterateRecords(p, fn)
}
