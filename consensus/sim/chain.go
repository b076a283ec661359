package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/consensus/evidence"
	"github.com/ledgerd/ledgerd/consensus/wal"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/memstate"
	"github.com/ledgerd/ledgerd/ledger/staking"
	"github.com/ledgerd/ledgerd/privval"
)

const (
	simChainID   = "ledgerd-sim"
	numAccounts  = 8
	startBalance = 1_000_000_000
)

var genesisTime = ledger.TimestampOf(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))

// Keys and signed transfers are pure functions of their indices; runs
// share them to save signing time.
var (
	keyCache sync.Map // string -> crypto.PrivKey
	txCache  sync.Map // txKey -> *ledger.Tx
)

func simKey(kind string, i int) crypto.PrivKey {
	name := fmt.Sprintf("sim/%s/%d", kind, i)
	if k, ok := keyCache.Load(name); ok {
		return k.(crypto.PrivKey)
	}
	seed := crypto.Sum([]byte(name))
	k, err := crypto.PrivKeyFromSeed(seed[:])
	if err != nil {
		panic(err) // a 32-byte seed cannot fail
	}
	keyCache.Store(name, k)
	return k
}

type txKey struct {
	from  int
	nonce uint64
}

// transfer returns account from's transfer with nonce: a fixed recipient,
// amount and fee derived from the nonce, so it can be cached.
func transfer(from int, nonce uint64) *ledger.Tx {
	k := txKey{from, nonce}
	if tx, ok := txCache.Load(k); ok {
		return tx.(*ledger.Tx)
	}
	to := (from + 1 + int(nonce%(numAccounts-1))) % numAccounts
	tx := &ledger.Tx{ChainID: simChainID, To: simKey("account", to).PubKey().Address(), Amount: 1 + nonce%97, Fee: nonce % 3, Nonce: nonce}
	tx.Sign(simKey("account", from))
	txCache.Store(k, tx)
	return tx
}

// newSimulation builds the validators, the genesis state and the nodes.
func newSimulation(o Options) *simulation {
	if o.Validators < 1 {
		o.Validators = 4
	}
	if o.ExactThird {
		o.Faults |= FaultByzantine
	}
	if o.Scenario != "" {
		o.Validators, o.Faults = 4, FaultByzantine
	}
	s := &simulation{opts: o, rng: rand.New(rand.NewPCG(o.Seed, 0xc0ffee)), chainID: simChainID}
	s.check = newChecker(s)
	s.params = ledger.DefaultConsensusParams()
	s.params.TimeoutCommit = ledger.Duration(timeoutCommit)
	// The default timeouts, scaled to the simulated network so that
	// rounds fail often enough to exercise locking.
	for _, t := range []*ledger.TimeoutParams{&s.params.TimeoutPropose, &s.params.TimeoutPrevote, &s.params.TimeoutPrecommit} {
		t.Base, t.Delta = t.Base*3/10, t.Delta*3/10
	}

	// Unequal powers; with twins, the twin key holds less than a third
	// (or, for ByzantineThird, enough to make both halves a quorum).
	n := o.Validators
	twins := (o.Faults&FaultTwins != 0 && !o.ExactThird) || o.ByzantineThird
	powers := make([]uint64, n)
	var total uint64
	for i := range powers {
		powers[i] = 1 + s.rng.Uint64N(10)
		total += powers[i]
	}
	twin := -1
	var halves [2][]int
	if twins {
		twin = s.rng.IntN(n)
		if o.ByzantineThird {
			// Split the honest validators in two halves X, Y and give the
			// twin the least power T with T+min(X,Y) a quorum of the total.
			for i := range powers {
				if i != twin {
					h := len(halves[0]) > len(halves[1])
					if h {
						halves[1] = append(halves[1], i)
					} else {
						halves[0] = append(halves[0], i)
					}
				}
			}
			var x, y uint64
			for _, i := range halves[0] {
				x += powers[i]
			}
			for _, i := range halves[1] {
				y += powers[i]
			}
			t := uint64(1)
			for t+min(x, y) < (t+x+y)*2/3+1 {
				t++
			}
			powers[twin] = t
		}
	}
	// The byzantine validator and the disk-fault node are drawn from a
	// stream of their own, so that runs without them are the runs they
	// were before these kinds existed.
	s.frng = rand.New(rand.NewPCG(o.Seed, 0xfa17))
	pick := func(not ...int) int {
		var c []int
		for i := 0; i < n; i++ {
			if !slices.Contains(not, i) {
				c = append(c, i)
			}
		}
		return c[s.frng.IntN(len(c))]
	}
	byz, victim := -1, -1
	if o.Faults&FaultByzantine != 0 && !o.ByzantineThird {
		byz = pick(twin)
	}
	if o.Faults&FaultDisk != 0 && !o.ByzantineThird && !o.ExactThird {
		victim = pick(twin, byz)
	}
	s.disk = o.Disk
	switch {
	case o.Scenario != "":
		s.scenario = newScenario(s, o.Scenario)
		powers, byz = s.scenario.powers(), s.scenario.byzKey
	case !o.ByzantineThird:
		s.sharePower(powers, twin, byz, victim)
	}

	var vals []ledger.Validator
	keyOf := map[crypto.Address]int{}
	for i := range powers {
		k := simKey("validator", i)
		vals = append(vals, ledger.Validator{PubKey: k.PubKey(), Power: powers[i], Name: fmt.Sprintf("v%d", i)})
		keyOf[k.PubKey().Address()] = i
	}
	vs, err := ledger.NewValidatorSet(vals)
	if err != nil {
		panic(fmt.Sprintf("sim: validator set: %v", err))
	}
	s.vals = vs

	var supply uint64
	for i := 0; i < numAccounts; i++ {
		k := simKey("account", i)
		s.accts = append(s.accts, k)
		s.balance = append(s.balance, ledger.AccountUpdate{Address: k.PubKey().Address(), Account: ledger.Account{Balance: startBalance}})
		supply += startBalance
	}
	s.genesis = (&ledger.State{ChainID: simChainID, GenesisTime: genesisTime, Params: s.params, Staking: staking.DefaultParams(), TotalSupply: supply}).WithValidators(vs)

	// Nodes: one per key, two for the twin key. Names are the key's
	// index in creation order (v0, v1, ...), twins v<i>a and v<i>b.
	for i := range powers {
		k := simKey("validator", i)
		switch i {
		case twin:
			s.twinAddr = k.PubKey().Address()
			s.addNode(fmt.Sprintf("v%da", i), k, false).twin = true
			s.addNode(fmt.Sprintf("v%db", i), k, false).twin = true
		case byz:
			nd := s.addNode(fmt.Sprintf("v%dx", i), k, false)
			nd.byz = newByzantine(nd, o.Byzantine)
			if s.scenario != nil {
				nd.byz.script = s.scenario
			}
			if o.ExactThird {
				// Silent from the heal on, for good.
				nd.byz.plan |= ByzSilent
				nd.byz.silentFrom, nd.byz.silentUntil = o.FaultPhase, 0
			}
		default:
			nd := s.addNode(fmt.Sprintf("v%d", i), k, true)
			if i == victim {
				nd.disk = &diskNode{faults: o.Disk}
			}
		}
	}
	for _, p := range powers {
		s.totalPower += p
	}
	s.net = newNetwork(s, twin, halves)
	if s.scenario != nil {
		s.scenario.init()
	}
	s.deadline = o.FaultPhase + LivenessBound
	return s
}

// sharePower gives the faulty validators their power: the twin key, the
// byzantine validator and the disk-fault node together hold as much power
// as stays below a third. The disk-fault node counts because it can
// forget what it signed, and its locks, which is as good as byzantine for
// safety (DiskWAL, DiskRollback), and because a store that lost blocks
// keeps it out of consensus until it has them again, which it may never
// (DiskStore: the blocks may exist nowhere else, with its precommits for
// them, when the WAL no longer holds them either; TestStoreLossBeyondTheWAL
// and docs/testing.md, "Store loss beyond the WAL"). It keeps its own
// power when that leaves room; with the twins and the byzantine validator,
// the rest is shared at random. ExactThird gives the byzantine validator
// exactly a third.
func (s *simulation) sharePower(powers []uint64, twin, byz, victim int) {
	if s.opts.storeUnbudgeted && !s.disk.amnesia() {
		victim = -1
	}
	faulty := func(i int) bool { return i == twin || i == byz || i == victim }
	honest := func() (h uint64) {
		for i, p := range powers {
			if !faulty(i) {
				h += p
			}
		}
		return h
	}
	if s.opts.ExactThird {
		// 3F = F + H, so F = H/2: an even honest power.
		if honest()%2 == 1 {
			for i := range powers {
				if !faulty(i) {
					powers[i] *= 2
				}
			}
		}
		powers[byz] = honest() / 2
		return
	}
	need := 0
	for _, i := range []int{twin, byz, victim} {
		if i >= 0 {
			need++
		}
	}
	if need == 0 {
		return
	}
	// 3F < F + H, so F <= (H-1)/2.
	for (honest()-1)/2 < uint64(need) {
		for i := range powers {
			if !faulty(i) {
				powers[i] *= 2
			}
		}
	}
	budget := (honest() - 1) / 2
	if victim >= 0 {
		keys := uint64(need - 1) // the twin and byzantine keys need 1 each
		powers[victim] = max(1, min(powers[victim], budget-keys))
		budget -= powers[victim]
	}
	switch {
	case twin >= 0 && byz >= 0:
		powers[byz] = max(1, budget*uint64(1+s.frng.IntN(3))/4)
		powers[twin] = max(1, budget-powers[byz])
	case twin >= 0:
		powers[twin] = max(1, budget)
	case byz >= 0:
		powers[byz] = max(1, budget)
	}
}

func (s *simulation) addNode(name string, key crypto.PrivKey, honest bool) *node {
	n := &node{
		s: s, idx: len(s.nodes), name: name, key: key, addr: key.PubKey().Address(), honest: honest,
		rng:     rand.New(rand.NewPCG(s.opts.Seed, uint64(len(s.nodes))+1)),
		skew:    time.Duration(s.rng.IntN(100_000)) * time.Microsecond,
		log:     wal.NewMem(),
		pvStore: privval.NewMemStateStore(),
		store:   newChainStore(s),
		pool:    evidence.NewPool(),
	}
	n.oracle = newOracle(n)
	s.nodes = append(s.nodes, n)
	return n
}

// chainStore is a node's durable ledger: committed blocks with their
// commits and proposals, the state after the last one and its accounts.
// It implements ledger.StateReader.
type chainStore struct {
	s     *simulation
	state ledger.State
	*memstate.State
	blocks []committedBlock // blocks[h-1]
	// executed caches ledger.Execute of the blocks validated for the
	// next height, so that storing the decided one does not verify its
	// signatures again. It is not part of the disk.
	executed map[crypto.Hash]*ledger.Result
}

type committedBlock struct {
	block    *ledger.Block
	commit   *ledger.Commit
	proposal *ledger.Proposal
}

func newChainStore(s *simulation) *chainStore {
	return &chainStore{s: s, state: *s.genesis, State: memstate.New(s.genesis.Validators, s.balance, nil)}
}

func (c *chainStore) height() uint64 { return c.state.Height }

func (c *chainStore) get(h uint64) *committedBlock {
	if h == 0 || h > uint64(len(c.blocks)) {
		return nil
	}
	return &c.blocks[h-1]
}

// validate is the machine's valid(v): the ledger's own validation of b as
// the next block on the committed state (ledger.Validate, which is
// ledger.Execute without keeping the result; we keep it).
func (c *chainStore) validate(b *ledger.Block) error {
	res, err := ledger.Execute(&c.state, c, b)
	if err == nil {
		if c.executed == nil {
			c.executed = map[crypto.Hash]*ledger.Result{}
		}
		c.executed[b.Hash()] = res
	}
	return err
}

// apply executes and stores a decided block, atomically.
func (c *chainStore) apply(d consensus.EffectDecide) error {
	res := c.executed[d.Block.Hash()]
	if res == nil || d.Block.Height() != c.state.Height+1 {
		var err error
		if res, err = ledger.Execute(&c.state, c, d.Block); err != nil {
			return err
		}
	}
	c.executed = nil
	if err := c.State.Apply(d.Block.Height(), res); err != nil {
		return err
	}
	c.state = *c.state.Next(d.Block, res, appHash(c.state.AppHash, res))
	c.blocks = append(c.blocks, committedBlock{d.Block, d.Commit, d.Proposal})
	return nil
}

// appHash chains a digest of every block's effect: a deterministic
// stand-in for the state tree's root, which is all Validate compares.
func appHash(prev crypto.Hash, res *ledger.Result) crypto.Hash {
	buf := append([]byte("sim/app/"), prev[:]...)
	for _, u := range res.Accounts {
		buf = append(buf, u.Address[:]...)
		buf = append(buf, u.Account.Encode()...)
	}
	for _, k := range res.Evidence {
		buf = append(buf, k[:]...)
	}
	return crypto.Sum(buf)
}

// BuildBlock is the proposer's getValue(): up to three transfers valid on
// its state, chosen with its own randomness (so twins build different
// blocks), the evidence it holds, and the last commit.
func (n *node) BuildBlock(h uint64, _ uint32) (*ledger.Block, error) {
	c := n.store
	st := &c.state
	t := genesisTime + ledger.Timestamp(n.s.now+n.skew)
	if st.Height > 0 && t <= st.LastBlockTime {
		t = st.LastBlockTime + ledger.Timestamp(time.Millisecond)
	}
	b := &ledger.Block{Header: ledger.Header{
		ChainID: st.ChainID, Height: h, Time: t, LastBlockHash: st.LastBlockHash, AppHash: st.AppHash,
		ValidatorsHash: st.Validators.Hash(), NextValidatorsHash: st.NextValidators.Hash(), Proposer: n.addr,
	}}
	for _, a := range n.rng.Perm(numAccounts)[:n.rng.IntN(4)] {
		acc := c.Accounts[n.s.accts[a].PubKey().Address()]
		tx := transfer(a, acc.Nonce)
		if acc.Balance >= tx.Amount+tx.Fee {
			b.Txs = append(b.Txs, tx)
		}
	}
	b.Evidence = n.pool.Pending(int(st.Params.MaxEvidence), h, c)
	if prev := c.get(h - 1); prev != nil {
		b.LastCommit = prev.commit
	}
	b.FillHeader()
	return b, nil
}
