package mempool

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

var seedFlag = flag.Uint64("mempool.seed", 0, "replay TestRandomOpsKeepInvariants with this seed only")

// TestRandomOpsKeepInvariants interleaves Add, AddBatch, Reap, commits
// (some carrying transactions the pool never saw) and clock jumps at
// random on a small pool, and after every step checks that:
//   - the caps hold and the pool's internal structure is consistent;
//   - the pool holds exactly what was admitted minus what was announced
//     as removed, and every removal has a reason that fits the step
//     (Committed only for a transaction in the block, Expired only past the
//     TTL, ...);
//   - Reap, under random caps, returns a sequence that executes in order on
//     the committed state, and NextNonce agrees with it;
//   - every committed block passes ledger.Execute.
//
// A failure names its seed; -mempool.seed=N replays it.
func TestRandomOpsKeepInvariants(t *testing.T) {
	seeds := []uint64{1, 2, 3, uint64(time.Now().UnixNano())}
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag}
	}
	steps := 1500
	if testing.Short() {
		steps = 300
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("seed %d (replay: go test ./mempool -run TestRandomOpsKeepInvariants -mempool.seed=%d)", seed, seed)
			newRandomRun(t, seed).run(steps)
		})
	}
}

type randomRun struct {
	*fixture
	t    *testing.T
	seed uint64
	rng  *rand.Rand
	step int
	op   string

	pool     map[crypto.Hash]*ledger.Tx // admitted and not yet announced as removed
	admitted map[crypto.Hash]time.Time
	sent     []*ledger.Tx // everything offered, for resubmission
	block    map[crypto.Hash]bool
	removed  map[Code]int
	refused  map[Code]int
	occupied int // sum over steps of the pool's size
}

const randomAccounts = 10

func newRandomRun(t *testing.T, seed uint64) *randomRun {
	rng := ledgertest.Seed(seed)
	tweak := func(c *Config) {
		c.MaxTxs = 30
		c.MaxPerSender = 6
		c.NonceWindow = 8
		c.TTL = 90 * time.Second
		if seed%2 == 0 {
			c.MaxTxs = 1000
			c.MaxBytes = 25 * 170 // the byte cap binds instead
		}
	}
	setup := func(s *ledgertest.MapState) {
		for i := 0; i < randomAccounts; i++ {
			a := ledgertest.Key("account", i).PubKey().Address()
			s.Accounts[a] = ledger.Account{Balance: 2000 + rng.Uint64N(30000)}
		}
	}
	r := &randomRun{
		fixture:  newFixtureWith(t, randomAccounts, tweak, setup),
		t:        t,
		seed:     seed,
		rng:      rng,
		pool:     map[crypto.Hash]*ledger.Tx{},
		admitted: map[crypto.Hash]time.Time{},
		removed:  map[Code]int{},
		refused:  map[Code]int{},
	}
	return r
}

func (r *randomRun) failf(format string, a ...any) {
	r.t.Helper()
	r.t.Fatalf("seed %d step %d (%s): %s", r.seed, r.step, r.op, fmt.Sprintf(format, a...))
}

func (r *randomRun) run(steps int) {
	for r.step = 0; r.step < steps; r.step++ {
		r.block = nil
		switch p := r.rng.IntN(100); {
		case p < 45:
			r.op = "add"
			tx := r.randomTx()
			if err := r.mp.Add(tx); err != nil {
				c, ok := CodeOf(err)
				if !ok {
					r.failf("Add returned %v, not a RejectError", err)
				}
				r.refused[c]++
			}
		case p < 65:
			r.op = "add batch"
			batch := make([]*ledger.Tx, 2+r.rng.IntN(7))
			for i := range batch {
				batch[i] = r.randomTx()
			}
			for _, err := range r.mp.AddBatch(batch) {
				if err == nil {
					continue
				}
				c, ok := CodeOf(err)
				if !ok {
					r.failf("AddBatch returned %v, not a RejectError", err)
				}
				r.refused[c]++
			}
		case p < 74:
			r.op = "reap"
			r.checkReap(r.rng.Uint64N(30*170), r.rng.Uint64N(30))
		case p < 93:
			r.op = "commit"
			r.commitRandomBlock()
		default:
			r.op = "clock"
			r.clock.Advance(time.Duration(r.rng.Int64N(int64(15 * time.Second))))
		}
		r.checkAll()
		r.occupied += len(r.pool)
	}
	r.t.Logf("refusals: %v", r.refused)
	r.t.Logf("removals: %v; %.1f pooled on average", r.removed, float64(r.occupied)/float64(steps))
}

// randomTx returns a transfer near the sender's committed nonce, now and
// then a malformed one or one offered before.
func (r *randomRun) randomTx() *ledger.Tx {
	if len(r.sent) > 0 && r.rng.IntN(10) == 0 {
		return r.sent[r.rng.IntN(len(r.sent))]
	}
	i := r.rng.IntN(randomAccounts)
	nonce := r.nonce(i) + r.rng.Uint64N(10)
	if nonce > 0 && r.rng.IntN(10) == 0 {
		nonce-- // sometimes too low
	}
	to := r.sinkAddr()
	if r.rng.IntN(3) == 0 {
		to = r.addr((i + 1 + r.rng.IntN(randomAccounts-1)) % randomAccounts)
	}
	amount := 1 + r.rng.Uint64N(150)
	if r.rng.IntN(25) == 0 { // a big spend, likely beyond what is left
		amount = r.acct(i).Balance/2 + r.rng.Uint64N(r.acct(i).Balance+1)
	}
	tx := ledgertest.Transfer(r.key(i), to, amount, r.rng.Uint64N(50), nonce)
	switch r.rng.IntN(40) {
	case 0:
		tx.Sig[r.rng.IntN(len(tx.Sig))] ^= 1
	case 1:
		tx.Amount = 0
		tx.Sign(r.key(i))
	}
	r.sent = append(r.sent, tx)
	return tx
}

// commitRandomBlock commits a reaped block, sometimes with a transfer the
// pool never saw from a sender that has nothing in it (as if another node
// had it), sometimes empty.
func (r *randomRun) commitRandomBlock() {
	var txs []*ledger.Tx
	if r.rng.IntN(5) > 0 {
		txs = r.mp.Reap(r.rng.Uint64N(12*170), r.rng.Uint64N(12))
	}
	if r.rng.IntN(3) == 0 {
		i := r.rng.IntN(randomAccounts)
		inBlock := false
		for _, tx := range txs {
			inBlock = inBlock || tx.From == r.key(i).PubKey()
		}
		if acct := r.acct(i); !inBlock && acct.Balance > 200 {
			txs = append(txs, ledgertest.Transfer(r.key(i), r.sinkAddr(), 1+r.rng.Uint64N(150), 4, acct.Nonce))
		}
	}
	r.block = make(map[crypto.Hash]bool, len(txs))
	for _, tx := range txs {
		r.block[tx.Hash()] = true
	}
	if err := r.tryCommit(txs); err != nil {
		r.failf("committing a reaped block: %v", err)
	}
}

// checkReap checks one Reap under caps: within them, and valid in order.
func (r *randomRun) checkReap(maxBytes, maxTxs uint64) []*ledger.Tx {
	got := r.mp.Reap(maxBytes, maxTxs)
	var bytes uint64
	for _, tx := range got {
		bytes += uint64(len(tx.Encode()))
	}
	if bytes > maxBytes || uint64(len(got)) > maxTxs {
		r.failf("Reap(%d, %d) returned %d txs, %d bytes", maxBytes, maxTxs, len(got), bytes)
	}
	if err := replay(r.state, got); err != nil {
		r.failf("Reap(%d, %d) is not executable: %v", maxBytes, maxTxs, err)
	}
	return got
}

// checkAll checks the invariants after a step.
func (r *randomRun) checkAll() {
	r.t.Helper()
	if err := r.mp.checkInvariants(); err != nil {
		r.failf("%v", err)
	}
	now := r.clock.Now()
	allowed := map[string][]Code{
		"add":       {Evicted, Replaced, SenderLimit, InsufficientFunds},
		"add batch": {Evicted, Replaced, SenderLimit, InsufficientFunds},
		"commit":    {Committed, NonceTooLow, InsufficientFunds, Expired},
	}
	for _, ev := range r.newEvents() {
		switch ev.Kind {
		case EventAdmitted:
			if r.pool[ev.Hash] != nil {
				r.failf("%s admitted twice", ev.Hash)
			}
			r.pool[ev.Hash] = ev.Tx
			r.admitted[ev.Hash] = now
		case EventRemoved:
			if r.pool[ev.Hash] == nil {
				r.failf("%s removed (%s) but not pooled", ev.Hash, ev.Reason)
			}
			ok := false
			for _, c := range allowed[r.op] {
				ok = ok || c == ev.Reason
			}
			if !ok {
				r.failf("%s removed for %s during %s", ev.Hash, ev.Reason, r.op)
			}
			switch ev.Reason {
			case Committed:
				if !r.block[ev.Hash] {
					r.failf("%s removed as committed, not in the block", ev.Hash)
				}
			case Expired:
				if age := now.Sub(r.admitted[ev.Hash]); age < r.mp.cfg.TTL {
					r.failf("%s expired at age %s", ev.Hash, age)
				}
			}
			delete(r.pool, ev.Hash)
			r.removed[ev.Reason]++
		}
	}
	for h := range r.block {
		if r.pool[h] != nil {
			r.failf("committed %s still pooled", h)
		}
	}
	if n, _ := r.mp.Size(); n != len(r.pool) {
		r.failf("pool holds %d, events account for %d", n, len(r.pool))
	}
	for h := range r.pool {
		if !r.mp.Has(h) {
			r.failf("%s vanished without a removal event", h)
		}
	}
	if len(r.mp.Pending(0)) != len(r.pool) {
		r.failf("Pending lists %d of %d", len(r.mp.Pending(0)), len(r.pool))
	}
	all := r.checkReap(math.MaxUint64, math.MaxUint64)
	perSender := map[crypto.Address]uint64{}
	for _, tx := range all {
		perSender[tx.Sender()]++
	}
	for i := 0; i < randomAccounts; i++ {
		nn, ok := r.mp.NextNonce(r.addr(i))
		if want := r.nonce(i) + perSender[r.addr(i)]; ok && nn != want {
			r.failf("account %d: NextNonce %d, Reap implies %d", i, nn, want)
		}
	}
}

// replay executes txs in order on state as ledger.Execute would, except
// for signatures (the pool checked them once; committed blocks check them
// again) and the proposer's fees (which only add).
func replay(state *ledgertest.MapState, txs []*ledger.Tx) error {
	over := map[crypto.Address]ledger.Account{}
	get := func(a crypto.Address) ledger.Account {
		if acct, ok := over[a]; ok {
			return acct
		}
		return state.Accounts[a]
	}
	for i, tx := range txs {
		if err := tx.ValidateBasic(ledgertest.ChainID); err != nil {
			return fmt.Errorf("tx %d: %w", i, err)
		}
		from := get(tx.Sender())
		if tx.Nonce != from.Nonce {
			return fmt.Errorf("tx %d: nonce %d, account at %d", i, tx.Nonce, from.Nonce)
		}
		if from.Balance < tx.Amount+tx.Fee {
			return fmt.Errorf("tx %d: costs %d, balance %d", i, tx.Amount+tx.Fee, from.Balance)
		}
		from.Balance -= tx.Amount + tx.Fee
		from.Nonce++
		over[tx.Sender()] = from
		to := get(tx.To)
		to.Balance += tx.Amount
		over[tx.To] = to
	}
	return nil
}

// TestConcurrentAddReapUpdate runs wallets adding from several goroutines
// (single and batched, sometimes resending) and an RPC reader, while the
// consensus driver reaps, commits through ledger.Execute and updates. Every
// transaction admitted is eventually committed, and every block is valid.
func TestConcurrentAddReapUpdate(t *testing.T) {
	const (
		wallets        = 4
		acctsPerWallet = 3
		txsPerAcct     = 60
	)
	f := newFixtureWith(t, wallets*acctsPerWallet, func(c *Config) {
		c.NonceWindow = 16
		c.TTL = 0
	}, nil)
	f.events.Close() // this test counts through its own subscription
	sub := f.mp.Subscribe(wallets*acctsPerWallet*txsPerAcct*2, EventAdmitted)

	var done atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < wallets; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := ledgertest.Seed(uint64(w))
			next := make([]uint64, acctsPerWallet)
			for {
				progress := false
				for k := range next {
					if next[k] >= txsPerAcct {
						continue
					}
					progress = true
					acct := w*acctsPerWallet + k
					n := 1 + rng.IntN(4)
					var batch []*ledger.Tx
					for j := 0; j < n && next[k]+uint64(j) < txsPerAcct; j++ {
						batch = append(batch, f.tx(acct, next[k]+uint64(j), 1, rng.Uint64N(10)))
					}
					// Gossip delivers out of order; AddBatch takes it in any order.
					rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
					var errs []error
					if len(batch) == 1 {
						errs = []error{f.mp.Add(batch[0])}
					} else {
						errs = f.mp.AddBatch(batch)
					}
					// A nonce is done once pooled or committed; advance
					// past the done ones, resend the rest later.
					ok := map[uint64]bool{}
					for i, err := range errs {
						switch c, _ := CodeOf(err); {
						case err == nil, c == Duplicate, c == NonceTooLow:
							ok[batch[i].Nonce] = true
						case c == NonceGap: // beyond the window until blocks commit
						default:
							t.Errorf("wallet %d: nonce %d: %v", w, batch[i].Nonce, err)
						}
					}
					for ok[next[k]] {
						next[k]++
					}
				}
				if !progress || done.Load() {
					return
				}
				runtime.Gosched()
			}
		}(w)
	}
	wg.Add(1)
	go func() { // an RPC client
		defer wg.Done()
		for !done.Load() {
			for _, tx := range f.mp.Pending(20) {
				f.mp.Has(tx.Hash())
				f.mp.NextNonce(tx.Sender())
			}
			f.mp.Size()
			runtime.Gosched()
		}
	}()

	walletsDone := make(chan struct{})
	go func() {
		defer close(walletsDone)
		wg.Wait()
	}()
	committed := 0
	want := wallets * acctsPerWallet * txsPerAcct
	for blocks := 0; committed < want; blocks++ {
		if blocks > 5000 {
			done.Store(true)
			t.Fatalf("only %d of %d transactions committed after %d blocks", committed, want, blocks)
		}
		txs := f.mp.Reap(math.MaxUint64, 25)
		if err := f.tryCommit(txs); err != nil {
			done.Store(true)
			t.Fatalf("block %d: %v", blocks+1, err)
		}
		committed += len(txs)
		f.checkInvariants()
		if len(txs) == 0 {
			runtime.Gosched()
		}
	}
	done.Store(true)
	<-walletsDone
	if n, _ := f.mp.Size(); n != 0 {
		t.Fatalf("%d transactions left after all were committed", n)
	}
	if got := len(sub.C()); got != want || sub.Dropped() != 0 {
		t.Fatalf("%d admissions announced (%d dropped), want %d", got, sub.Dropped(), want)
	}
	for i := 0; i < wallets*acctsPerWallet; i++ {
		if n := f.nonce(i); n != txsPerAcct {
			t.Errorf("account %d at nonce %d, want %d", i, n, txsPerAcct)
		}
	}
}
