// Package clienttest builds synthetic chains whose validator set changes
// from height to height, and serves them through ledgerd's real JSON-RPC
// server, for tests of the light client (package client) and of the
// wallet. A chain is made of ledger types only: headers naming the set of
// their height and of the next, commits signed by the right keys, a state
// tree proving accounts, a transfer every few blocks. Nothing in it runs
// consensus or executes blocks. It is imported only by tests.
package clienttest

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/staking"
	"github.com/ledgerd/ledgerd/ledger/statetree"
)

// ChainID is the chain ID of synthetic chains.
const ChainID = "ledgerd-lightchain"

// GenesisTime is the genesis time of synthetic chains; block h is made h
// seconds later.
var GenesisTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Options shape a chain. Zero fields take the defaults given.
type Options struct {
	// Seed drives every random choice: a seed and options give the same
	// chain every time.
	Seed uint64
	// Heights is the number of blocks (default 1000).
	Heights int
	// Validators is the size of the genesis set, each of power 10
	// (default 4).
	Validators int
	// ChangeEvery is the mean number of heights between two changes of
	// the set (default 8): a validator joins, leaves or changes power,
	// moving at most a third of the total power.
	ChangeEvery int
	// Rotations is how many times the whole set is replaced, each over
	// four changes a few heights apart, so that no member of the set
	// before the rotation is left after it (default 2; -1 for none).
	Rotations int
	// TransferEvery puts a transfer from Accounts[0] to Accounts[1] in
	// every block whose height it divides (default 25).
	TransferEvery int
}

func (o *Options) fill() {
	if o.Heights <= 0 {
		o.Heights = 1000
	}
	if o.Validators <= 0 {
		o.Validators = 4
	}
	if o.ChangeEvery <= 0 {
		o.ChangeEvery = 8
	}
	if o.Rotations == 0 {
		o.Rotations = 2
	}
	if o.TransferEvery <= 0 {
		o.TransferEvery = 25
	}
}

// Chain is a synthetic chain: blocks 1 to Height with their commits, the
// validator set of every height from 1 to Height+2, and the state after
// every height.
type Chain struct {
	Options Options
	Doc     *genesis.Doc
	// Blocks[h] and Commits[h] for h in 1..Height; Sets[h] for h in
	// 1..Height+2 (index 0 is nil).
	Blocks  []*ledger.Block
	Commits []*ledger.Commit
	Sets    []*ledger.ValidatorSet
	// Accounts are the funded accounts' keys.
	Accounts []crypto.PrivKey
	// Changes lists the heights h >= 2 whose set differs from h-1's;
	// RotationEnds the heights from which a rotation is complete.
	Changes      []uint64
	RotationEnds []uint64

	keys  map[crypto.Address]crypto.PrivKey
	tree  *statetree.Tree
	txLoc map[crypto.Hash][2]uint64 // height, index
	fresh int                       // keys made so far
	// A forged chain proves the states below belowFrom with below's tree.
	below     *Chain
	belowFrom uint64
}

// Height is the chain's last block.
func (c *Chain) Height() uint64 { return uint64(len(c.Blocks) - 1) }

// key returns a new validator key, never used before in this chain.
func (c *Chain) key(namespace string) crypto.PrivKey {
	c.fresh++
	seed := crypto.Sum([]byte(fmt.Sprintf("clienttest/%s/%d/%d", namespace, c.Options.Seed, c.fresh)))
	k, err := crypto.PrivKeyFromSeed(seed[:])
	if err != nil {
		panic(err) // a 32-byte seed cannot fail
	}
	c.keys[k.PubKey().Address()] = k
	return k
}

// Key returns the private key of a validator the chain made (real or
// forged), for tests that sign with it.
func (c *Chain) Key(a crypto.Address) (crypto.PrivKey, bool) {
	k, ok := c.keys[a]
	return k, ok
}

// NewChain builds a chain. It fails only on a bug of the package.
func NewChain(o Options) (*Chain, error) {
	o.fill()
	c := &Chain{Options: o, keys: map[crypto.Address]crypto.PrivKey{}, txLoc: map[crypto.Hash][2]uint64{}}
	r := rand.New(rand.NewPCG(o.Seed, 0x6c69676874))
	vals := make([]ledger.Validator, o.Validators)
	for i := range vals {
		vals[i] = ledger.Validator{PubKey: c.key("validator").PubKey(), Power: 10, Name: fmt.Sprintf("v%d", i)}
	}
	for i := 0; i < 3; i++ {
		c.Accounts = append(c.Accounts, c.key("account"))
	}
	doc := &genesis.Doc{ChainID: ChainID, GenesisTime: ledger.TimestampOf(GenesisTime), Params: ledger.DefaultConsensusParams(),
		Staking: staking.DefaultParams(), Validators: vals}
	for _, k := range c.Accounts {
		doc.Balances = append(doc.Balances, genesis.Balance{Address: k.PubKey().Address(), Amount: 1_000_000_000})
	}
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	c.Doc = doc
	gs, err := doc.ValidatorSet()
	if err != nil {
		return nil, err
	}
	if err := c.buildSets(r, gs); err != nil {
		return nil, err
	}
	if err := c.buildBlocks(r); err != nil {
		return nil, err
	}
	return c, nil
}

// buildSets fills Sets[1..Heights+2]: the genesis set for heights 1 and 2
// (a change made by block h takes effect at h+2), then random changes and
// the rotations.
func (c *Chain) buildSets(r *rand.Rand, gs *ledger.ValidatorSet) error {
	n := c.Options.Heights + 2
	c.Sets = make([]*ledger.ValidatorSet, n+1)
	c.Sets[1], c.Sets[2] = gs, gs
	// Rotations start at evenly spaced heights; each makes four changes
	// three to six heights apart.
	var rotations []uint64
	for i := 1; i <= c.Options.Rotations; i++ {
		rotations = append(rotations, uint64(n*i/(c.Options.Rotations+1)))
	}
	cur := gs
	var rot []ledger.Validator // members still to replace in a running rotation
	rotStep, nextRot := 0, uint64(0)
	for h := uint64(3); h <= uint64(n); h++ {
		next := cur
		var err error
		switch {
		case len(rotations) > 0 && h >= rotations[0] && rotStep == 0:
			rotations = rotations[1:]
			rot = cur.Validators()
			rotStep, nextRot = 1, h
			fallthrough
		case rotStep > 0 && h == nextRot:
			next, rot, err = c.rotate(cur, rot, rotStep)
			if rotStep == 4 {
				rotStep = 0
				c.RotationEnds = append(c.RotationEnds, h)
			} else {
				rotStep++
				nextRot = h + 3 + uint64(r.IntN(4))
			}
		case r.IntN(c.Options.ChangeEvery) == 0:
			next, err = c.change(r, cur)
		}
		if err != nil {
			return fmt.Errorf("height %d: %w", h, err)
		}
		if next.Hash() != cur.Hash() {
			c.Changes = append(c.Changes, h)
		}
		c.Sets[h], cur = next, next
	}
	return nil
}

// rotate replaces a quarter of the members present when the rotation
// began (all that are left at the fourth step) by new validators of the
// same power.
func (c *Chain) rotate(cur *ledger.ValidatorSet, left []ledger.Validator, step int) (*ledger.ValidatorSet, []ledger.Validator, error) {
	k := (len(left) + (4 - step)) / (5 - step) // a share of what is left, all at step 4
	out, gone := left[:k], left[k:]
	drop := map[crypto.Address]bool{}
	var power uint64
	for _, v := range out {
		drop[v.Address()] = true
		power += v.Power
	}
	var vals []ledger.Validator
	for _, v := range cur.Validators() {
		if !drop[v.Address()] {
			vals = append(vals, v)
		}
	}
	// As many newcomers as leavers, sharing their power.
	for i := range out {
		p := power / uint64(len(out))
		if i == 0 {
			p += power % uint64(len(out))
		}
		if p > 0 {
			vals = append(vals, ledger.Validator{PubKey: c.key("validator").PubKey(), Power: p, Name: "rotated"})
		}
	}
	vs, err := ledger.NewValidatorSet(vals)
	return vs, gone, err
}

// change makes one random change to cur: a join, a leave or a change of
// power, moving at most a third of the total power.
func (c *Chain) change(r *rand.Rand, cur *ledger.ValidatorSet) (*ledger.ValidatorSet, error) {
	vals := cur.Validators()
	total := cur.TotalPower()
	limit := max(total/3, 1)
	kind := r.IntN(3)
	switch {
	case len(vals) <= 3:
		kind = 0
	case len(vals) >= 30 || total > 1_000_000:
		kind = 1
	}
	switch kind {
	case 0:
		vals = append(vals, ledger.Validator{PubKey: c.key("validator").PubKey(), Power: 1 + r.Uint64N(limit), Name: "joined"})
	case 1:
		// Leave: a member whose power is at most a third.
		i := r.IntN(len(vals))
		if vals[i].Power > limit {
			vals[i].Power -= limit
		} else {
			vals = append(vals[:i], vals[i+1:]...)
		}
	default:
		i := r.IntN(len(vals))
		delta := 1 + r.Uint64N(limit)
		if r.IntN(2) == 0 || vals[i].Power <= delta {
			vals[i].Power += delta
		} else {
			vals[i].Power -= delta
		}
	}
	return ledger.NewValidatorSet(vals)
}

// buildBlocks makes blocks 1..Heights with their commits and the state
// after each.
func (c *Chain) buildBlocks(r *rand.Rand) error {
	n := c.Options.Heights
	c.Blocks = make([]*ledger.Block, n+1)
	c.Commits = make([]*ledger.Commit, n+1)
	db := kv.NewMem()
	c.tree = statetree.New(db, []byte("s/"), statetree.WithCacheBytes(0))
	balances := map[crypto.Address]ledger.Account{}
	var changes []statetree.Change
	for _, b := range c.Doc.Balances {
		a := ledger.Account{Balance: b.Amount}
		balances[b.Address] = a
		changes = append(changes, statetree.Change{Key: ledger.AccountKey(b.Address), Value: a.Encode()})
	}
	// Version h+1 is the state after height h.
	if err := c.commitState(db, 0, 1, changes); err != nil {
		return err
	}
	var lastHash crypto.Hash
	var lastCommit *ledger.Commit
	from, to := c.Accounts[0], c.Accounts[1].PubKey().Address()
	var nonce uint64
	for h := uint64(1); h <= uint64(n); h++ {
		appHash, err := c.tree.Root(h)
		if err != nil {
			return err
		}
		vs := c.Sets[h]
		b := &ledger.Block{
			Header: ledger.Header{
				ChainID: ChainID, Height: h, Time: ledger.TimestampOf(GenesisTime.Add(time.Duration(h) * time.Second)),
				LastBlockHash: lastHash, AppHash: appHash,
				ValidatorsHash: vs.Hash(), NextValidatorsHash: c.Sets[h+1].Hash(),
				Proposer: vs.Get(int(h) % vs.Size()).Address(),
			},
			LastCommit: lastCommit,
		}
		changes = changes[:0]
		if h%uint64(c.Options.TransferEvery) == 0 {
			tx := &ledger.Tx{ChainID: ChainID, To: to, Amount: 1 + h, Fee: 0, Nonce: nonce}
			tx.Sign(from)
			nonce++
			b.Txs = []*ledger.Tx{tx}
			c.txLoc[tx.Hash()] = [2]uint64{h, 0}
			sa, ra := balances[tx.Sender()], balances[to]
			sa.Balance -= tx.Amount
			sa.Nonce++
			ra.Balance += tx.Amount
			balances[tx.Sender()], balances[to] = sa, ra
			changes = append(changes,
				statetree.Change{Key: ledger.AccountKey(tx.Sender()), Value: sa.Encode()},
				statetree.Change{Key: ledger.AccountKey(to), Value: ra.Encode()})
		}
		b.FillHeader()
		if err := c.commitState(db, h, h+1, changes); err != nil {
			return err
		}
		cm, err := c.sign(r, vs, h, b.Hash())
		if err != nil {
			return err
		}
		c.Blocks[h], c.Commits[h] = b, cm
		lastHash, lastCommit = b.Hash(), cm
	}
	return nil
}

func (c *Chain) commitState(db *kv.Mem, base, next uint64, changes []statetree.Change) error {
	batch := db.NewBatch()
	if _, err := c.tree.Commit(batch, base, next, changes); err != nil {
		return err
	}
	return db.Write(batch, false)
}

// sign returns a commit of block id at height h by members of vs holding
// more than two thirds of its power: a random selection, sometimes all.
func (c *Chain) sign(r *rand.Rand, vs *ledger.ValidatorSet, h uint64, id crypto.Hash) (*ledger.Commit, error) {
	order := r.Perm(vs.Size())
	var power uint64
	var idx []int
	for _, i := range order {
		if power >= vs.Quorum() && r.IntN(2) == 0 {
			continue
		}
		idx = append(idx, i)
		power += vs.Get(i).Power
	}
	return c.signBy(vs, h, id, idx)
}

// signBy returns a commit of block id at height h signed by the members
// of vs at the indices given.
func (c *Chain) signBy(vs *ledger.ValidatorSet, h uint64, id crypto.Hash, idx []int) (*ledger.Commit, error) {
	sort.Ints(idx)
	msg := ledger.VoteSignBytes(ChainID, ledger.Precommit, h, 0, id)
	cm := &ledger.Commit{Height: h, BlockID: id}
	for _, i := range idx {
		k, ok := c.keys[vs.Get(i).Address()]
		if !ok {
			return nil, fmt.Errorf("no key for validator %s", vs.Get(i).Address())
		}
		cm.Sigs = append(cm.Sigs, ledger.CommitSig{ValidatorIndex: uint32(i), Sig: k.Sign(msg)})
	}
	return cm, nil
}

// Account returns addr's account after height h with a proof against the
// app hash of header h+1.
func (c *Chain) Account(h uint64, addr crypto.Address) (ledger.Account, *statetree.Proof, error) {
	if c.below != nil && h+1 < c.belowFrom {
		return c.below.Account(h, addr)
	}
	v, p, err := c.tree.Prove(h+1, ledger.AccountKey(addr))
	if err != nil || v == nil {
		return ledger.Account{}, p, err
	}
	a, err := ledger.DecodeAccount(v)
	return a, p, err
}

// AppHash is the state commitment after height h.
func (c *Chain) AppHash(h uint64) (crypto.Hash, error) {
	if c.below != nil && h+1 < c.belowFrom {
		return c.below.AppHash(h)
	}
	r, err := c.tree.Root(h + 1)
	return crypto.Hash(r), err
}

// Forge returns a chain that is c below height from and a forgery from
// there to c's last height: each forged block names a validator set made
// of the colluders (members of c's set at height from, with their power
// there) and of as many keys that never were validators, with three times
// the colluders' power (10 when there are none), so that every forged
// commit carries all of that set. Block from links to c's block from-1.
// The forged blocks prove a state in which Accounts[2] holds 777777777.
func (c *Chain) Forge(from uint64, colluders ...crypto.Address) (*Chain, error) {
	if from < 1 || from > c.Height() {
		return nil, fmt.Errorf("forge from %d: the chain has heights 1 to %d", from, c.Height())
	}
	f := &Chain{Options: c.Options, Doc: c.Doc, Accounts: c.Accounts, keys: map[crypto.Address]crypto.PrivKey{},
		txLoc: map[crypto.Hash][2]uint64{}, fresh: c.fresh + 1000}
	for a, k := range c.keys {
		f.keys[a] = k
	}
	real := c.Sets[from]
	var vals []ledger.Validator
	var power uint64
	for _, a := range colluders {
		i, ok := real.ByAddress(a)
		if !ok {
			return nil, fmt.Errorf("colluder %s is not in the set of height %d", a, from)
		}
		vals = append(vals, *real.Get(i))
		power += real.Get(i).Power
	}
	fake := max(3*power, 10)
	for fake > 0 {
		p := min(fake, 10)
		vals = append(vals, ledger.Validator{PubKey: f.key("forger").PubKey(), Power: p, Name: "forger"})
		fake -= p
	}
	forged, err := ledger.NewValidatorSet(vals)
	if err != nil {
		return nil, err
	}
	n := c.Height()
	f.Blocks = append([]*ledger.Block(nil), c.Blocks[:from]...)
	f.Commits = append([]*ledger.Commit(nil), c.Commits[:from]...)
	f.Sets = append([]*ledger.ValidatorSet(nil), c.Sets[:from]...)
	for h := from; h <= n+2; h++ {
		f.Sets = append(f.Sets, forged)
	}
	// The forged state: c's state after from-1, with Accounts[2] rich.
	db := kv.NewMem()
	f.tree = statetree.New(db, []byte("s/"), statetree.WithCacheBytes(0))
	var changes []statetree.Change
	for _, b := range c.Doc.Balances {
		a, _, err := c.Account(from-1, b.Address)
		if err != nil {
			return nil, err
		}
		if b.Address == c.Accounts[2].PubKey().Address() {
			a.Balance = 777777777
		}
		changes = append(changes, statetree.Change{Key: ledger.AccountKey(b.Address), Value: a.Encode()})
	}
	if err := f.commitState(db, 0, from, changes); err != nil {
		return nil, err
	}
	all := make([]int, forged.Size())
	for i := range all {
		all[i] = i
	}
	var lastHash crypto.Hash
	if from > 1 {
		lastHash = c.Blocks[from-1].Hash()
	}
	lastCommit := c.Commits[from-1]
	for h := from; h <= n; h++ {
		if err := f.commitState(db, h, h+1, nil); err != nil {
			return nil, err
		}
		appHash, _ := f.tree.Root(h)
		b := &ledger.Block{
			Header: ledger.Header{
				ChainID: ChainID, Height: h, Time: c.Blocks[h].Header.Time,
				LastBlockHash: lastHash, AppHash: appHash,
				ValidatorsHash: forged.Hash(), NextValidatorsHash: forged.Hash(),
				Proposer: forged.Get(0).Address(),
			},
			LastCommit: lastCommit,
		}
		b.FillHeader()
		cm, err := f.signBy(forged, h, b.Hash(), all)
		if err != nil {
			return nil, err
		}
		f.Blocks = append(f.Blocks, b)
		f.Commits = append(f.Commits, cm)
		lastHash, lastCommit = b.Hash(), cm
	}
	// Below from, f proves c's states.
	f.below, f.belowFrom = c, from
	return f, nil
}
