package sim

import (
	"encoding/binary"
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
	s := &simulation{opts: o, rng: rand.New(rand.NewPCG(o.Seed, 0xc0ffee)), chainID: simChainID,
		crng: rand.New(rand.NewPCG(o.Seed, 0xc4a2c4a2)), sigChecked: map[ledger.Vote]bool{}}
	// ExactThird, ByzantineThird and the scenarios fix their powers for
	// the whole run: their genesis has no staking records, so that
	// evidence slashes nobody and the set never changes.
	s.staked = !o.ExactThird && !o.ByzantineThird && o.Scenario == ""
	if !s.staked {
		o.Faults &^= FaultChurn
		s.opts.Faults = o.Faults
	}
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

	// Spare validator keys, after the genesis ones: their nodes follow
	// the chain from the start and join the set by create_validator.
	if o.Faults&FaultChurn != 0 {
		s.spares = 1 + s.crng.IntN(maxSpares)
	}
	s.keys = n + s.spares

	var vals []ledger.Validator
	for i := range powers {
		k := simKey("validator", i)
		vals = append(vals, ledger.Validator{PubKey: k.PubKey(), Power: powers[i], Name: fmt.Sprintf("v%d", i), Operator: operatorAddr(i)})
	}
	vs, err := ledger.NewValidatorSet(vals)
	if err != nil {
		panic(fmt.Sprintf("sim: validator set: %v", err))
	}

	var supply uint64
	fund := func(k crypto.PrivKey) {
		s.balance = append(s.balance, ledger.AccountUpdate{Address: k.PubKey().Address(), Account: ledger.Account{Balance: startBalance}})
		supply += startBalance
	}
	for i := 0; i < numAccounts; i++ {
		k := simKey("account", i)
		s.accts = append(s.accts, k)
		fund(k)
	}
	gen := &ledger.State{ChainID: simChainID, GenesisTime: genesisTime, Params: s.params, TotalSupply: supply}
	if s.staked {
		// Every validator key's operator account, and the delegators',
		// pay the churn's fees and bonds; the genesis stake is part of
		// the supply.
		for i := 0; i < s.keys; i++ {
			fund(simKey("operator", i))
		}
		for i := 0; i < numDelegators; i++ {
			fund(simKey("delegator", i))
		}
		gen.Staking = stakingParams(o.Faults&FaultChurn != 0)
		gvs := make([]staking.GenesisValidator, len(vals))
		for i, v := range vals {
			gvs[i] = staking.GenesisValidator{Operator: v.Operator, ConsKey: v.PubKey, Moniker: v.Name, Power: v.Power}
			supply += v.Power * gen.Staking.PowerUnit
		}
		changes, err := staking.InitGenesis(gen.Staking, gvs)
		if err != nil {
			panic(fmt.Sprintf("sim: staking genesis: %v", err))
		}
		for _, c := range changes {
			s.records = append(s.records, ledger.Record{Key: c.Key, Value: c.Value})
		}
		gen.TotalSupply = supply
	} else {
		gen.Staking = staking.DefaultParams()
	}
	s.genesis = gen.WithValidators(vs)

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
	for i := n; i < s.keys; i++ {
		s.addNode(fmt.Sprintf("v%d", i), simKey("validator", i), true)
	}
	for _, nd := range s.nodes {
		nd.store.early = s.planted(plantEarlySet) && nd.plantNode()
	}
	s.ref = newReference(s)
	for _, nd := range s.nodes {
		if !nd.honest || nd.disk != nil {
			s.ref.faulty[nd.addr] = true
		}
	}
	if s.opts.storeUnbudgeted && !s.disk.amnesia() && victim >= 0 {
		delete(s.ref.faulty, simKey("validator", victim).PubKey().Address())
	}
	if o.Faults&FaultChurn != 0 {
		s.churn = newChurn(s)
	}
	s.net = newNetwork(s, twin, halves)
	if s.scenario != nil {
		s.scenario.init()
	}
	s.deadline = o.FaultPhase + LivenessBound
	return s
}

// Accounts besides the transfer accounts: every validator key i has an
// operator account (simKey("operator", i)), and numDelegators accounts
// delegate to validators, in runs with staking.
const (
	numDelegators = 2
	maxSpares     = 3 // churn runs have 1 to maxSpares spare validator keys
)

func operatorAddr(i int) crypto.Address { return simKey("operator", i).PubKey().Address() }

// stakingParams are the staking parameters of a run. Churn runs scale the
// heights down to a run's few dozen, so that unbonding matures, silent
// validators are jailed for downtime and jailed ones unjail within it;
// other runs keep the defaults, under which nothing but a double sign
// (slashed, jailed and tombstoned at once) changes their set.
func stakingParams(churn bool) staking.Params {
	p := staking.DefaultParams()
	if churn {
		p.UnbondingHeights = 8
		p.SignedBlocksWindow = 8
		p.DowntimeJailHeights = 4
		p.SlashFractionDowntime = 10_000 // 0.01: a downtime slash takes a share of every unbonding entry at stake
	}
	return p
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
// exactly a third. In churn runs they hold less than a seventh: validators
// jailed for downtime leave the set without notice (churn.go says why a
// seventh is enough).
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
	// 3F < F + H, so F <= (H-1)/2; in churn runs 7F < F + H (churnMargin),
	// so F <= (H-1)/6.
	div := uint64(2)
	if s.opts.Faults&FaultChurn != 0 {
		div = churnMargin - 1
	}
	for (honest()-1)/div < uint64(need) {
		for i := range powers {
			if !faulty(i) {
				powers[i] *= 2
			}
		}
	}
	budget := (honest() - 1) / div
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
	// early plants plantEarlySet in this store.
	early bool
}

type committedBlock struct {
	block    *ledger.Block
	commit   *ledger.Commit
	proposal *ledger.Proposal
}

func newChainStore(s *simulation) *chainStore {
	return &chainStore{s: s, state: *s.genesis, State: memstate.New(s.genesis.Validators, s.balance, s.records)}
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
	_, err := c.applyResult(d)
	return err
}

// applyResult is apply, returning the block's result.
func (c *chainStore) applyResult(d consensus.EffectDecide) (*ledger.Result, error) {
	res := c.executed[d.Block.Hash()]
	if res == nil || d.Block.Height() != c.state.Height+1 {
		var err error
		if res, err = ledger.Execute(&c.state, c, d.Block); err != nil {
			return nil, err
		}
	}
	c.executed = nil
	if err := c.State.Apply(d.Block.Height(), res); err != nil {
		return nil, err
	}
	c.state = *c.state.Next(d.Block, res, appHash(c.state.AppHash, res))
	if c.early && res.NextValidators != nil {
		c.state.Validators = res.NextValidators // plantEarlySet: one height early
	}
	c.blocks = append(c.blocks, committedBlock{d.Block, d.Commit, d.Proposal})
	return res, nil
}

// appHash chains a digest of every block's effect (accounts, evidence,
// staking records, the set of height+2 when it changed): a deterministic
// stand-in for the state tree's root, which is all Validate compares. A
// node whose state went another way proposes blocks no one else accepts.
func appHash(prev crypto.Hash, res *ledger.Result) crypto.Hash {
	buf := append([]byte("sim/app/"), prev[:]...)
	for _, u := range res.Accounts {
		buf = append(buf, u.Address[:]...)
		buf = append(buf, u.Account.Encode()...)
	}
	for _, k := range res.Evidence {
		buf = append(buf, k[:]...)
	}
	for _, r := range res.Records {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(r.Key)))
		buf = append(buf, r.Key...)
		if r.Value == nil {
			buf = append(buf, 0)
		} else {
			buf = append(buf, 1)
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(r.Value)))
			buf = append(buf, r.Value...)
		}
	}
	if res.NextValidators != nil {
		h := res.NextValidators.Hash()
		buf = append(buf, h[:]...)
	}
	return crypto.Sum(buf)
}

// BuildBlock is the proposer's getValue(): up to three transfers valid on
// its state, chosen with its own randomness (so twins build different
// blocks), the churn's pending change if its state is ready for it, the
// evidence it holds, and the last commit.
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
	if n.s.churn != nil {
		if tx := n.s.churn.pending(c.Accounts); tx != nil {
			b.Txs = append(b.Txs, tx)
		}
	}
	b.Evidence = n.pool.Pending(int(st.Params.MaxEvidence), h, c)
	b.LastCommit = n.lastCommit(h - 1)
	b.FillHeader()
	return b, nil
}
