package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// maxListed bounds the violations of one kind listed in a report.
const maxListed = 10

// chainEntry is one height of a node's chain.
type chainEntry struct {
	hash, app crypto.Hash
	block     *ledger.Block // on the reference node only
}

// finish waits for the validators to converge and runs the final checks.
func (r *runner) finish(ctx context.Context) error {
	vals := r.validators()
	target := r.mon.view().top(vals) + 1
	r.logf("waiting for every validator to reach height %d", target)
	if _, err := r.mon.waitFor(ctx, recoveryBound, func(v view) bool { return v.all(vals, target) }); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.rep.violate("the validators did not all reach height %d: %v", target, err)
		r.dumpLogs(vals)
	}
	heights := r.freshHeights(ctx, vals)
	ref, common := -1, uint64(0)
	for i, h := range heights {
		if h == 0 {
			r.rep.violate("node%d does not answer at the end", i)
			continue
		}
		if ref < 0 || h < common {
			common = h
		}
		if ref < 0 {
			ref = i
		}
	}
	if ref < 0 {
		return fmt.Errorf("no validator answers at the end")
	}
	r.rep.FinalHeight = common
	r.logf("comparing %d heights across %d validators", common, len(vals))
	chains := make([][]chainEntry, len(vals))
	errs := make([]error, len(vals))
	var wg sync.WaitGroup
	for _, i := range vals {
		if heights[i] == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			chains[i], errs[i] = r.chainOf(ctx, i, common, i == ref)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("read node%d's chain: %w", i, err)
		}
	}
	r.checkForks(chains, ref)
	if err := r.readFinalBalances(ctx, ref); err != nil {
		return err
	}
	r.checkTransfers(chains[ref])
	if err := r.checkSupply(ctx, ref, chains[ref], common); err != nil {
		return err
	}
	r.checkEvidence(chains[ref])
	r.checkHistory()
	return nil
}

// chainOf reads heights 1 to top of node's chain: whole blocks when full,
// else the signed headers (a block hash and app hash per height).
func (r *runner) chainOf(ctx context.Context, node int, top uint64, full bool) ([]chainEntry, error) {
	out := make([]chainEntry, top+1)
	var next atomic.Uint64
	next.Store(1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				h := next.Add(1) - 1
				if h > top {
					return
				}
				e, err := r.entry(ctx, node, h, full)
				if err != nil {
					mu.Lock()
					first = cmpErr(first, fmt.Errorf("height %d: %w", h, err))
					mu.Unlock()
					return
				}
				out[h] = e
			}
		}()
	}
	wg.Wait()
	return out, first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (r *runner) entry(ctx context.Context, node int, h uint64, full bool) (chainEntry, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl := r.c.Client(node)
	if full {
		b, err := cl.Block(cctx, api.At(h))
		if err != nil {
			return chainEntry{}, err
		}
		if b.Block.Hash() != b.Hash {
			return chainEntry{}, fmt.Errorf("block %d: the node says hash %s, the header hashes to %s", h, b.Hash, b.Block.Hash())
		}
		return chainEntry{hash: b.Hash, app: b.Block.Header.AppHash, block: b.Block}, nil
	}
	cm, err := cl.Commit(cctx, api.At(h))
	if err != nil {
		return chainEntry{}, err
	}
	return chainEntry{hash: cm.BlockHash, app: cm.Header.AppHash}, nil
}

// checkForks counts the heights at which two nodes (or a twin, or the
// monitor's samples during the run) saw different blocks or app hashes,
// listing the first few.
func (r *runner) checkForks(chains [][]chainEntry, ref int) {
	forked := map[uint64]bool{}
	listed := 0
	report := func(h uint64, format string, args ...any) {
		if !forked[h] && listed < maxListed {
			r.rep.violate(format, args...)
			listed++
		}
		forked[h] = true
	}
	refChain := chains[ref]
	for i, ch := range chains {
		if i == ref || ch == nil {
			continue
		}
		for h := 1; h < len(refChain); h++ {
			if ch[h].hash != refChain[h].hash || ch[h].app != refChain[h].app {
				report(uint64(h), "fork at height %d: node%d has block %s (app %s), node%d has %s (app %s)",
					h, ref, refChain[h].hash, refChain[h].app, i, ch[h].hash, ch[h].app)
			}
		}
	}
	for h, e := range r.twinChain {
		if h < uint64(len(refChain)) && (e[0] != refChain[h].hash || e[1] != refChain[h].app) {
			report(h, "fork at height %d: the twin had block %s (app %s), node%d has %s (app %s)",
				h, e[0], e[1], ref, refChain[h].hash, refChain[h].app)
		}
	}
	seen := r.mon.forksSeen()
	for _, h := range slices.Sorted(maps.Keys(seen)) {
		report(h, "fork seen during the run at height %d: %s", h, seen[h])
	}
	r.rep.Forks = len(forked)
	if len(forked) > listed {
		r.rep.violate("forks at %d heights in all (the first %d listed)", len(forked), listed)
	}
}

// readFinalBalances reads every workload account once more, after the
// workload, so the history ends with the state the chain settled on.
func (r *runner) readFinalBalances(ctx context.Context, node int) error {
	client := len(r.wl.groups) + r.wl.readers
	for g, gr := range r.wl.groups {
		for _, role := range []Role{Sender, Recipient} {
			addr := gr.recipient
			if role == Sender {
				addr = gr.sender.PubKey().Address()
			}
			op := Op{Client: client, Kind: OpRead, Group: g, Role: role, Node: node, Call: r.hist.Now()}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			acc, err := r.c.Client(node).Account(cctx, addr)
			cancel()
			if err != nil {
				return fmt.Errorf("final read of group %d: %w", g, err)
			}
			if uint64(acc.Height) < r.wl.fence.Load() {
				r.rep.violate("node%d answered the final read of group %d at height %d, below the height %d a client already saw",
					node, g, acc.Height, r.wl.fence.Load())
			}
			op.Return = r.hist.Now()
			op.Balance, op.Nonce, op.Height = uint64(acc.Balance), uint64(acc.Nonce), uint64(acc.Height)
			r.hist.Add(op)
		}
	}
	return nil
}

// checkTransfers checks that every acknowledged transfer is in the chain
// exactly once, at the height the client was told.
func (r *runner) checkTransfers(chain []chainEntry) {
	type where struct {
		height uint64
		count  int
	}
	in := map[crypto.Hash]*where{}
	type senderNonce struct {
		from  crypto.Address
		nonce uint64
	}
	seen := map[senderNonce]uint64{}
	for h := 1; h < len(chain); h++ {
		for _, tx := range chain[h].block.Txs {
			th := tx.Hash()
			if w := in[th]; w != nil {
				w.count++
			} else {
				in[th] = &where{uint64(h), 1}
			}
			sn := senderNonce{tx.Sender(), tx.Nonce}
			if prev, ok := seen[sn]; ok {
				r.rep.violate("sender %s used nonce %d twice: heights %d and %d", sn.from, sn.nonce, prev, h)
			}
			seen[sn] = uint64(h)
		}
	}
	st := &r.rep.Transfers
	st.Signed = len(r.wl.signedTxs())
	st.Submissions, st.FailedAttempts = r.wl.submissions.Load(), r.wl.failures.Load()
	var lost, dup, moved int
	for _, o := range r.hist.Ops() {
		if o.Kind != OpTransfer {
			continue
		}
		w := in[o.TxHash]
		if !o.Acknowledged() {
			st.Unacknowledged++
			if w != nil {
				st.CommittedUnseen++
			}
			continue
		}
		st.Acknowledged++
		switch {
		case w == nil:
			if lost++; lost <= maxListed {
				r.rep.violate("acknowledged transfer %s (group %d nonce %d, committed at height %d per node%d) is not in the chain",
					o.TxHash, o.Group, o.Nonce, o.Height, o.Node)
			}
		case w.count > 1:
			if dup++; dup <= maxListed {
				r.rep.violate("acknowledged transfer %s is in the chain %d times", o.TxHash, w.count)
			}
		case w.height != o.Height:
			if moved++; moved <= maxListed {
				r.rep.violate("transfer %s was acknowledged by node%d at height %d; the chain has it at %d",
					o.TxHash, o.Node, o.Height, w.height)
			}
		}
	}
	st.Lost, st.Duplicated = lost, dup
	if moved > maxListed {
		r.rep.violate("%d acknowledged transfers in all are at another height than acknowledged (the first %d listed)", moved, maxListed)
	}
}

// checkSupply sums every balance the chain can hold — the funded
// accounts, the recipients, the validators, every proposer (fees) and
// every account a transaction names — at height top, adds the staking
// pool at that same height (bonded, unbonding and burned tokens: stake is
// not a balance), and compares the sum with the genesis total supply (the
// balances and the genesis validators' stake). Delegating, unbonding and
// slashing move tokens between the balances and the pool, so any token
// made or lost on either side shows.
func (r *runner) checkSupply(ctx context.Context, node int, chain []chainEntry, top uint64) error {
	addrs := map[crypto.Address]bool{}
	for _, b := range r.doc.Balances {
		addrs[b.Address] = true
	}
	for _, v := range r.doc.Validators {
		addrs[v.PubKey.Address()] = true
		addrs[v.Operator] = true
	}
	for _, g := range r.wl.groups {
		addrs[g.recipient] = true
	}
	for h := 1; h < len(chain); h++ {
		addrs[chain[h].block.Header.Proposer] = true
		for _, tx := range chain[h].block.Txs {
			addrs[tx.Sender()] = true
			addrs[tx.To] = true
		}
	}
	var sum uint64
	add := func(v uint64) error {
		if sum+v < sum {
			return fmt.Errorf("supply: the sum overflows at %d + %d", sum, v)
		}
		sum += v
		return nil
	}
	for a := range addrs {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		acc, err := r.c.Client(node).AccountAt(cctx, a, api.At(top), false)
		cancel()
		if err != nil {
			return fmt.Errorf("supply: account %s: %w", a, err)
		}
		if err := add(uint64(acc.Balance)); err != nil {
			return err
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	pool, err := r.c.Client(node).StakingPool(cctx, api.At(top), false)
	cancel()
	if err != nil {
		return fmt.Errorf("supply: staking pool: %w", err)
	}
	if uint64(pool.Height) != top {
		return fmt.Errorf("supply: asked for the staking pool after height %d, the node answered height %d", top, pool.Height)
	}
	staked, ok := pool.Staked()
	if !ok {
		return fmt.Errorf("supply: the staking pool overflows: %+v", *pool)
	}
	if err := add(staked); err != nil {
		return err
	}
	r.rep.GenesisSupply, r.rep.FinalSupply, r.rep.FinalStake = r.doc.TotalSupply(), sum, staked
	if sum != r.rep.GenesisSupply {
		r.rep.violate("supply not conserved: %d at genesis, %d after height %d (balances %d + bonded %d + unbonding %d + burned %d)",
			r.rep.GenesisSupply, sum, top, sum-staked, pool.Bonded, pool.Unbonding, pool.Burned)
	}
	return nil
}

// checkEvidence lists the committed evidence and checks that it is all
// the twins' — any other equivocation is a double sign — and that every
// twin's was caught.
func (r *runner) checkEvidence(chain []chainEntry) {
	index := map[crypto.Address]int{}
	for i, v := range r.doc.Validators {
		index[v.PubKey.Address()] = i
	}
	caught := make([]bool, len(r.twins))
	for h := 1; h < len(chain); h++ {
		for _, ev := range chain[h].block.Evidence {
			v := ev.VoteA
			rec := EvidenceRecord{Validator: v.Validator.String(), VoteHeight: v.Height, VoteRound: v.Round,
				VoteType: v.Type.String(), BlockHeight: uint64(h)}
			i, known := index[v.Validator]
			for k, w := range r.twins {
				if known && w.Of == i && v.Height >= w.From && v.Height <= w.To {
					rec.Twin, caught[k] = true, true
				}
			}
			if !rec.Twin {
				r.rep.violate("validator %d (%s) equivocated at height %d round %d (%s) with no twin running: a double sign",
					i, v.Validator, v.Height, v.Round, v.Type)
			}
			r.rep.Evidence = append(r.rep.Evidence, rec)
		}
	}
	for k, w := range r.twins {
		if !caught[k] {
			r.rep.violate("the twin of node%d ran over heights %d to %d, but no evidence of its equivocation was committed", w.Of, w.From, w.To)
		}
	}
}

// checkHistory writes the history and checks it is linearizable.
func (r *runner) checkHistory() {
	ops := r.hist.Ops()
	initial := make([]GroupState, len(r.wl.groups))
	for g := range initial {
		initial[g] = GroupState{SenderBalance: senderBalance}
	}
	for _, o := range ops {
		if o.Kind == OpRead {
			r.rep.Reads.Recorded++
		}
	}
	r.rep.Reads.Stale, r.rep.Reads.Dropped = r.wl.staleReads.Load(), r.wl.droppedRead.Load()
	slices.SortFunc(ops, func(a, b Op) int { return int(min(max(a.Call-b.Call, -1), 1)) })
	if buf, err := json.Marshal(ops); err == nil {
		os.WriteFile(filepath.Join(r.dir, "history.json"), buf, 0o644)
	}
	began := time.Now()
	res := Check(initial, ops, checkBound)
	r.rep.CheckTime = secondsOf(time.Since(began))
	switch res {
	case porcupine.Ok:
		r.rep.Linearizable = "ok"
	case porcupine.Illegal:
		r.rep.Linearizable = "illegal"
		path := filepath.Join(r.dir, "history.html")
		if err := Visualize(initial, ops, checkBound, path); err != nil {
			path = err.Error()
		}
		r.rep.violate("the history of %d operations is not linearizable (see %s)", len(ops), path)
	default:
		r.rep.Linearizable = "unknown"
		r.rep.violate("the linearizability check did not finish within %s", checkBound)
	}
}
