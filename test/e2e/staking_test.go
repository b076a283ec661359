package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/internal/harness/localnet"
	"github.com/ledgerd/ledgerd/internal/testkit/netports"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/staking"
	"github.com/ledgerd/ledgerd/node"
	"github.com/ledgerd/ledgerd/privval"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// Slots of the staking story's network.
const (
	stakeValidators = 4 // node0..node3, genesis validators of equal power
	stakeJoiner     = 4 // node4: a full node that becomes a validator
	stakeTwin       = 5 // node5: a second process holding node2's key
	stakeLeaver     = 1 // unbonds its self-bond and leaves the set
	stakeSlashed    = 2 // its twin double-signs
	stakeJailed     = 3 // killed; jailed for downtime
)

// stakingParams judge downtime over 40 heights: a validator that misses
// more than 20 of them (a few seconds at 100 ms per block) is jailed.
func stakingParams() staking.Params {
	p := staking.DefaultParams()
	p.SignedBlocksWindow = 40
	p.MinSignedPerWindow = 500_000 // 0.5
	p.DowntimeJailHeights = 20
	p.SlashFractionDowntime = 10_000 // 0.01
	p.UnbondingHeights = 50
	return p
}

// stakeNet is the staking story's network: the e2e network plus the
// genesis, the validators' and the full node's keys.
type stakeNet struct {
	*network
	doc      *genesis.Doc
	consKeys []crypto.PrivKey // slot i's validator key (the joiner's included)
	base     int
}

func startStakeNet(t *testing.T) *stakeNet {
	t.Helper()
	bin := ledgerdBinary(t)
	base, err := netports.Range(2 * (stakeTwin + 1))
	if err != nil {
		t.Fatal(err)
	}
	params := ledger.DefaultConsensusParams()
	params.TimeoutCommit = ledger.Duration(100 * time.Millisecond)
	sp := stakingParams()
	dir := t.TempDir()
	ln, err := localnet.Generate(dir, bin, node.TestnetOptions{ChainID: "e2e", Validators: stakeValidators, FullNodes: 1,
		FundedAccounts: 3, Balance: 1_000_000_000, BasePort: base, Params: &params, Staking: &sp})
	if err != nil {
		t.Fatal(err)
	}
	w := &stakeNet{network: &network{t: t, net: ln, chainID: "e2e"}, base: base}
	for i := 0; i < 3; i++ {
		k, err := privval.LoadKeyFile(filepath.Join(dir, "accounts", fmt.Sprintf("account%d.json", i)))
		if err != nil {
			t.Fatal(err)
		}
		w.accounts = append(w.accounts, k)
	}
	if w.doc, err = genesis.Load(node.DefaultConfig(ln.Info.Nodes[0].Home).GenesisFile()); err != nil {
		t.Fatal(err)
	}
	for i := range ln.Info.Nodes {
		k, err := privval.LoadKeyFile(node.DefaultConfig(ln.Info.Nodes[i].Home).ValidatorKeyFile())
		if err != nil {
			t.Fatal(err)
		}
		w.consKeys = append(w.consKeys, k)
		c, err := client.New(ln.RPCURL(i))
		if err != nil {
			t.Fatal(err)
		}
		w.clients = append(w.clients, c)
	}
	// The twin's client, made now so its slot is known from the start.
	twinRPC := fmt.Sprintf("127.0.0.1:%d", base+2*stakeTwin+1)
	c, err := client.New("http://" + twinRPC)
	if err != nil {
		t.Fatal(err)
	}
	w.clients = append(w.clients, c)
	t.Cleanup(func() {
		ln.StopAll()
		if t.Failed() {
			for i := range ln.Info.Nodes {
				t.Logf("--- node%d log tail ---\n%s", i, ln.Logs(i, 3000))
			}
		}
	})
	for i := 0; i < stakeValidators; i++ {
		w.start(i)
	}
	return w
}

// operator is the operator of genesis validator i (its consensus address).
func (w *stakeNet) operator(i int) crypto.Address {
	if op := w.doc.Validators[i].Operator; !op.IsZero() {
		return op
	}
	return w.doc.Validators[i].PubKey.Address()
}

// send signs tx with key at the key's committed nonce, submits it to
// node0 and waits for its commit.
func (w *stakeNet) send(ctx context.Context, key crypto.PrivKey, tx *ledger.Tx) *api.Transaction {
	w.t.Helper()
	acc, err := w.clients[0].Account(ctx, key.PubKey().Address())
	if err != nil {
		w.t.Fatal(err)
	}
	tx.ChainID, tx.Fee, tx.Nonce = w.chainID, 1, uint64(acc.Nonce)
	tx.Sign(key)
	got, err := w.clients[0].SendTxAndWait(ctx, tx, 30*time.Second)
	if err != nil {
		w.t.Fatalf("%s: %v", tx.Kind, err)
	}
	if got.Status != api.TxCommitted {
		w.t.Fatalf("%s: status %v", tx.Kind, got.Status)
	}
	return got
}

// validator asks node0 for the validator operated by op, latest state.
func (w *stakeNet) validator(ctx context.Context, op crypto.Address) *api.ValidatorStatus {
	w.t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := w.clients[0].StakingValidator(cctx, op, api.Latest, false)
	if err != nil {
		w.t.Fatalf("validator %s: %v", op, err)
	}
	return v
}

// waitValidator polls node0 (each new height is a new answer) until the
// validator operated by op satisfies ok, and returns it.
func (w *stakeNet) waitValidator(ctx context.Context, what string, op crypto.Address, timeout time.Duration, ok func(*api.ValidatorStatus) bool) *api.ValidatorStatus {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := w.validator(ctx, op)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: not within %s; validator after height %d: %+v", what, timeout, v.Height, v.StakingValidator)
		}
		h, _ := w.height(ctx, 0)
		w.waitHeight(0, h+1, 30*time.Second)
	}
}

// signedBy reports whether some commit of a height in [from, to] carries
// a signature of the validator whose consensus address is cons.
func (w *stakeNet) signedBy(ctx context.Context, from, to uint64, cons crypto.Address) bool {
	w.t.Helper()
	for h := from; h <= to; h++ {
		cm, err := w.clients[0].Commit(ctx, api.At(h))
		if err != nil {
			w.t.Fatal(err)
		}
		vals, err := w.clients[0].Validators(ctx, api.At(h))
		if err != nil {
			w.t.Fatal(err)
		}
		idx := slices.IndexFunc(vals.Validators, func(v api.Validator) bool { return v.Address == cons })
		if idx < 0 {
			continue
		}
		for _, s := range cm.Commit.Sigs {
			if s.ValidatorIndex == uint32(idx) {
				return true
			}
		}
	}
	return false
}

// startTwin writes a home for a second process holding validator of's
// key (fresh data, so a fresh last-signed state, and the double-sign
// check off, as the chaos twin fault does) and starts it.
func (w *stakeNet) startTwin(of int) {
	w.t.Helper()
	home := filepath.Join(w.net.Dir, "twin")
	cfg := node.DefaultConfig(home)
	cfg.Moniker = fmt.Sprintf("twin-of-node%d", of)
	cfg.P2P.ListenAddrs = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", w.base+2*stakeTwin)}
	cfg.RPC.ListenAddr = fmt.Sprintf("127.0.0.1:%d", w.base+2*stakeTwin+1)
	cfg.Consensus.DoubleSignCheckHeight = 0
	cfg.P2P.PersistentPeers = nil
	for j := 0; j <= stakeJoiner; j++ {
		cfg.P2P.PersistentPeers = append(cfg.P2P.PersistentPeers, w.net.Info.Nodes[j].P2PAddr)
	}
	key := w.consKeys[of]
	if _, err := node.InitHome(home, node.InitOptions{Genesis: w.doc, ValidatorKey: &key, Config: cfg}); err != nil {
		w.t.Fatal(err)
	}
	w.net.Info.Nodes = append(w.net.Info.Nodes, node.TestnetNode{Home: home, Moniker: cfg.Moniker, RPCAddr: cfg.RPC.ListenAddr})
	if err := w.net.Start(stakeTwin); err != nil {
		w.t.Fatal(err)
	}
}

// waitEvidence follows node0's blocks from height from+1 until one
// carries evidence against cons, and returns that block's height.
func (w *stakeNet) waitEvidence(ctx context.Context, cons crypto.Address, from uint64, timeout time.Duration) uint64 {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for h := from + 1; ; h++ {
		left := time.Until(deadline)
		if left <= 0 {
			w.t.Fatalf("no evidence against %s committed within %s (heights %d to %d)", cons, timeout, from+1, h-1)
		}
		w.waitHeight(0, h, left)
		b, err := w.clients[0].Block(ctx, api.At(h))
		if err != nil {
			w.t.Fatal(err)
		}
		for _, ev := range b.Block.Evidence {
			if ev.VoteA.Validator == cons {
				return h
			}
		}
	}
}

// stakeLoad sends transfers from one account through one node, one at a
// time, and records those it saw committed. Errors (a node busy, a
// commit not seen within the wait) are counted and the loop goes on from
// the committed nonce.
type stakeLoad struct {
	c       *client.Client
	chainID string
	key     crypto.PrivKey
	to      crypto.Address

	mu     sync.Mutex
	acked  []acked
	errors int
}

func (l *stakeLoad) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := l.one(ctx); err != nil {
			l.mu.Lock()
			l.errors++
			l.mu.Unlock()
			select { // back off before asking the node again
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

func (l *stakeLoad) one(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	acc, err := l.c.Account(cctx, l.key.PubKey().Address())
	if err != nil {
		return err
	}
	tx := &ledger.Tx{ChainID: l.chainID, To: l.to, Amount: 1 + uint64(acc.Nonce)%7, Fee: 1, Nonce: uint64(acc.Nonce)}
	tx.Sign(l.key)
	got, err := l.c.SendTxAndWait(cctx, tx, 5*time.Second)
	if err != nil {
		return err
	}
	if got.Status != api.TxCommitted || got.Height == nil {
		return fmt.Errorf("transfer %s: %v", tx.Hash(), got.Status)
	}
	l.mu.Lock()
	l.acked = append(l.acked, acked{tx: tx, height: uint64(*got.Height)})
	l.mu.Unlock()
	return nil
}

func (l *stakeLoad) snapshot() ([]acked, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acked), l.errors
}

// TestStakingChurn is issue 11's story with real processes. Four
// validators of equal power commit under a transfer load the whole time.
// A fifth node starts late as a full node, syncs, and becomes a validator
// by create-validator with its consensus key. node3 is then killed: the
// three validators left hold 30 of 50, no quorum, so the chain goes on only
// because the newcomer signs (its signatures are in the commits), and
// node3, missing more than half of a 40-height window, is jailed for
// downtime. node1's operator undelegates its whole self-bond and node1
// leaves the set. A twin of node2 (a second process with its key)
// double-signs; the evidence is committed, node2 is slashed and
// tombstoned, leaves the set, and its unjail is refused. At the end every
// acknowledged transfer is in the chain exactly once at the height it was
// acknowledged at, every node (node3 restarted, now a full node) holds the
// same chain, and the balances plus the staking pool (bonded, unbonding,
// burned) are the genesis supply.
func TestStakingChurn(t *testing.T) {
	w := startStakeNet(t)
	w.waitHeight(0, 3, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	unit := w.doc.Staking.PowerUnit

	loads := []*stakeLoad{
		{c: w.clients[0], chainID: w.chainID, key: w.accounts[1], to: addrOf("staking churn recipient 1")},
		{c: w.clients[stakeSlashed], chainID: w.chainID, key: w.accounts[2], to: addrOf("staking churn recipient 2")},
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, l := range loads {
		wg.Add(1)
		go func() { defer wg.Done(); l.run(loadCtx) }()
	}
	defer func() { stopLoad(); wg.Wait() }()

	// Fees for the operators that send staking transactions.
	operator := w.accounts[0]
	for _, i := range []int{stakeLeaver, stakeSlashed} {
		w.send(ctx, operator, &ledger.Tx{To: w.operator(i), Amount: 1000})
	}

	// The fifth node starts late and syncs by block sync.
	h, _ := w.height(ctx, 0)
	w.waitHeight(0, max(h, 15), 60*time.Second)
	h, _ = w.height(ctx, 0)
	w.start(stakeJoiner)
	w.waitHeight(stakeJoiner, h, 60*time.Second)
	t.Logf("node%d synced to height %d", stakeJoiner, h)

	// It becomes a validator with its consensus key, power 10 as the others.
	joinerKey := w.consKeys[stakeJoiner]
	joinerCons := joinerKey.PubKey().Address()
	opAddr := operator.PubKey().Address()
	got := w.send(ctx, operator, &ledger.Tx{Kind: ledger.TxCreateValidator, ConsKey: joinerKey.PubKey(), Moniker: "joiner", Amount: 10 * unit})
	if got.Failed {
		t.Fatalf("create-validator failed: %s", got.Receipt.Error)
	}
	v := w.waitValidator(ctx, "the newcomer validates", opAddr, 60*time.Second, func(v *api.ValidatorStatus) bool { return v.Validating })
	t.Logf("node%d validates after height %d (power %d)", stakeJoiner, v.Height, v.Power)
	if v.ConsAddress != joinerCons {
		t.Fatalf("the new validator's consensus address is %s, want node%d's %s", v.ConsAddress, stakeJoiner, joinerCons)
	}
	w.waitHeight(stakeJoiner, uint64(v.Height)+2, 30*time.Second)

	// node3 dies: 30 of 50 without the newcomer, so every commit from now
	// needs its signature.
	if err := w.net.Kill(stakeJailed); err != nil {
		t.Fatal(err)
	}
	killedAt, _ := w.height(ctx, 0)
	w.waitHeight(0, killedAt+5, 60*time.Second)
	if !w.signedBy(ctx, killedAt+2, killedAt+5, joinerCons) {
		t.Fatalf("heights %d to %d committed without node%d's signatures", killedAt+2, killedAt+5, stakeJoiner)
	}
	jailed := w.waitValidator(ctx, "node3 jailed for downtime", w.operator(stakeJailed), 90*time.Second,
		func(v *api.ValidatorStatus) bool { return v.Jailed && !v.Validating })
	t.Logf("node%d (killed at height %d) jailed after height %d until %d; tokens %d of %d",
		stakeJailed, killedAt, jailed.Height, jailed.JailedUntil, jailed.Tokens, 10*unit)
	if jailed.Tombstoned || uint64(jailed.Tokens) >= 10*unit {
		t.Errorf("jailed for downtime: tombstoned %v, tokens %d (want a downtime slash of 10000)", jailed.Tombstoned, jailed.Tokens)
	}

	// node1's operator takes its whole self-bond back: node1 leaves.
	leaverKey := w.consKeys[stakeLeaver]
	got = w.send(ctx, leaverKey, &ledger.Tx{Kind: ledger.TxUndelegate, To: w.operator(stakeLeaver), Amount: 10 * unit})
	if got.Failed {
		t.Fatalf("undelegate failed: %s", got.Receipt.Error)
	}
	left := w.waitValidator(ctx, "node1 leaves the set", w.operator(stakeLeaver), 60*time.Second,
		func(v *api.ValidatorStatus) bool { return !v.Validating && !v.Active })
	t.Logf("node%d left the set after height %d", stakeLeaver, left.Height)
	w.waitHeight(0, uint64(left.Height)+3, 60*time.Second)

	// A twin of node2 double-signs.
	twinAt, _ := w.height(ctx, 0)
	w.startTwin(stakeSlashed)
	slashedCons := w.consKeys[stakeSlashed].PubKey().Address()
	evAt := w.waitEvidence(ctx, slashedCons, twinAt, 90*time.Second)
	t.Logf("twin of node%d started at height %d; evidence committed at height %d", stakeSlashed, twinAt, evAt)
	if err := w.net.Kill(stakeTwin); err != nil {
		t.Errorf("the twin died on its own: %v", err)
	}
	tomb := w.waitValidator(ctx, "node2 tombstoned", w.operator(stakeSlashed), 60*time.Second,
		func(v *api.ValidatorStatus) bool { return v.Tombstoned && v.Jailed && !v.Validating })
	t.Logf("node%d tombstoned after height %d; tokens %d", stakeSlashed, tomb.Height, tomb.Tokens)
	if uint64(tomb.Tokens) >= 10*unit {
		t.Errorf("node2 was not slashed: tokens %d", tomb.Tokens)
	}
	got = w.send(ctx, w.consKeys[stakeSlashed], &ledger.Tx{Kind: ledger.TxUnjail})
	if !got.Failed || got.Receipt == nil || got.Receipt.Error == "" {
		t.Errorf("a tombstoned validator's unjail was not refused: %+v", got)
	} else {
		t.Logf("unjail refused: %s", got.Receipt.Error)
	}
	// The two validators left (node0 and the newcomer) go on.
	after, _ := w.height(ctx, 0)
	w.waitHeight(0, after+3, 60*time.Second)
	if !w.signedBy(ctx, after+1, after+3, joinerCons) {
		t.Errorf("heights %d to %d committed without node%d's signatures", after+1, after+3, stakeJoiner)
	}

	stopLoad()
	wg.Wait()
	// node3 returns as a full node and catches up.
	w.start(stakeJailed)
	top, _ := w.height(ctx, 0)
	for i := 0; i <= stakeJoiner; i++ {
		w.waitHeight(i, top, 90*time.Second)
	}
	final := w.sameChain(0, 1, 2, 3, 4)
	var acks []acked
	for k, l := range loads {
		a, errs := l.snapshot()
		t.Logf("load %d: %d transfers acknowledged, %d client errors", k, len(a), errs)
		if len(a) < 20 {
			t.Errorf("load %d: only %d transfers acknowledged", k, len(a))
		}
		acks = append(acks, a...)
	}
	w.checkStakeChain(ctx, acks, final)
}

// checkStakeChain reads node0's chain up to top: no transaction in it
// twice, every acknowledged transfer in it once at its height; and the
// supply: every balance the chain can hold plus the staking pool at top
// is the genesis total supply.
func (w *stakeNet) checkStakeChain(ctx context.Context, acks []acked, top uint64) {
	t := w.t
	t.Helper()
	where := map[crypto.Hash][]uint64{}
	addrs := map[crypto.Address]bool{}
	for _, b := range w.doc.Balances {
		addrs[b.Address] = true
	}
	for i := range w.doc.Validators {
		addrs[w.operator(i)] = true
		addrs[w.doc.Validators[i].PubKey.Address()] = true
	}
	for h := uint64(1); h <= top; h++ {
		b, err := w.clients[0].Block(ctx, api.At(h))
		if err != nil {
			t.Fatalf("block %d: %v", h, err)
		}
		addrs[b.Block.Header.Proposer] = true
		for _, tx := range b.Block.Txs {
			where[tx.Hash()] = append(where[tx.Hash()], h)
			addrs[tx.Sender()] = true
			addrs[tx.To] = true
		}
	}
	for hash, hs := range where {
		if len(hs) != 1 {
			t.Errorf("transaction %s is in the chain %d times (heights %v)", hash, len(hs), hs)
		}
	}
	for _, a := range acks {
		if hs := where[a.tx.Hash()]; len(hs) != 1 || hs[0] != a.height {
			t.Errorf("acknowledged transfer %s (nonce %d, committed at height %d) is at heights %v", a.tx.Hash(), a.tx.Nonce, a.height, hs)
		}
	}
	var balances uint64
	for a := range addrs {
		acc, err := w.clients[0].AccountAt(ctx, a, api.At(top), false)
		if err != nil {
			t.Fatalf("account %s: %v", a, err)
		}
		balances += uint64(acc.Balance)
	}
	pool, err := w.clients[0].StakingPool(ctx, api.At(top), false)
	if err != nil {
		t.Fatal(err)
	}
	staked, ok := pool.Staked()
	if !ok {
		t.Fatalf("the staking pool overflows: %+v", *pool)
	}
	t.Logf("after height %d: balances %d + bonded %d + unbonding %d + burned %d; genesis supply %d",
		top, balances, pool.Bonded, pool.Unbonding, pool.Burned, w.doc.TotalSupply())
	if balances+staked != w.doc.TotalSupply() {
		t.Errorf("supply not conserved: balances %d + staked %d = %d, genesis %d", balances, staked, balances+staked, w.doc.TotalSupply())
	}
	if pool.Burned == 0 {
		t.Error("nothing burned: the slashes did not happen")
	}
}
