package mempool

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// fixture is a chain with a pool on it. The test drives blocks through
// commit, which executes them with ledger.Execute, so every committed
// block proves that what the pool handed out was valid.
type fixture struct {
	t          testing.TB
	chain      *ledgertest.Chain
	st         *ledger.State
	state      *ledgertest.MapState // committed accounts; replaced, never mutated, after New
	lastCommit *ledger.Commit
	clock      *fakeClock
	mp         *Mempool
	events     *Subscription // every event, drained by newEvents
}

const (
	testAccounts = 8
	testBalance  = 1_000_000
)

func newFixture(t testing.TB, tweak func(*Config)) *fixture {
	return newFixtureWith(t, testAccounts, tweak, nil)
}

// newFixtureWith builds a chain with n funded accounts; setup may change
// the genesis accounts before the pool is created.
func newFixtureWith(t testing.TB, n int, tweak func(*Config), setup func(*ledgertest.MapState)) *fixture {
	t.Helper()
	chain := ledgertest.NewChain(1, n, testBalance)
	f := &fixture{t: t, chain: chain, st: chain.Genesis, state: chain.NewMapState(), clock: newFakeClock()}
	if setup != nil {
		setup(f.state)
	}
	cfg := DefaultConfig(ledgertest.ChainID)
	cfg.Now = f.clock.Now
	if tweak != nil {
		tweak(&cfg)
	}
	mp, err := New(cfg, f.state, 0)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.mp = mp
	f.events = mp.Subscribe(1<<16, EventAdmitted|EventRemoved)
	return f
}

func (f *fixture) key(i int) crypto.PrivKey  { return f.chain.Accounts[i] }
func (f *fixture) addr(i int) crypto.Address { return f.key(i).PubKey().Address() }
func (f *fixture) acct(i int) ledger.Account { return f.state.Accounts[f.addr(i)] }
func (f *fixture) size() (int, int)          { return f.mp.Size() }
func (f *fixture) sinkAddr() crypto.Address  { return crypto.AddressFromPubKey(crypto.PubKey{1}) }
func (f *fixture) nonce(i int) uint64        { return f.acct(i).Nonce }

// tx is a transfer of amount from account i to a sink account.
func (f *fixture) tx(i int, nonce, amount, fee uint64) *ledger.Tx {
	return ledgertest.Transfer(f.key(i), f.sinkAddr(), amount, fee, nonce)
}

func (f *fixture) mustAdd(txs ...*ledger.Tx) {
	f.t.Helper()
	for _, tx := range txs {
		if err := f.mp.Add(tx); err != nil {
			f.t.Fatalf("Add(nonce %d fee %d): %v", tx.Nonce, tx.Fee, err)
		}
	}
}

// commit executes a block holding txs on the committed state, then tells
// the pool. It fails the test if the block is invalid.
func (f *fixture) commit(txs []*ledger.Tx) {
	f.t.Helper()
	if err := f.tryCommit(txs); err != nil {
		f.t.Fatalf("commit: %v", err)
	}
}

func (f *fixture) tryCommit(txs []*ledger.Tx) error {
	st, state, lc, err := f.execute(txs)
	if err != nil {
		return err
	}
	f.st, f.state, f.lastCommit = st, state, lc
	return f.mp.Update(st.Height, txs, state)
}

// execute runs a block of txs on the committed state without committing.
func (f *fixture) execute(txs []*ledger.Tx) (*ledger.State, *ledgertest.MapState, *ledger.Commit, error) {
	b := f.chain.NextBlock(f.st, txs, f.lastCommit, 0)
	res, err := ledger.Execute(f.st, f.state, b)
	if err != nil {
		return nil, nil, nil, err
	}
	next := f.state.Clone()
	if err := next.Apply(b.Height(), res); err != nil {
		return nil, nil, nil, err
	}
	st := f.st.Next(b, res, f.st.AppHash)
	return st, next, f.chain.Commit(b), nil
}

// newEvents returns the events since the last call.
func (f *fixture) newEvents() []Event {
	var out []Event
	for {
		select {
		case ev := <-f.events.C():
			out = append(out, ev)
		default:
			if d := f.events.Dropped(); d != 0 {
				f.t.Fatalf("event subscription dropped %d events", d)
			}
			return out
		}
	}
}

// removals returns the reasons of the removals since the last newEvents,
// by transaction hash.
func (f *fixture) removals() map[crypto.Hash]Code {
	out := map[crypto.Hash]Code{}
	for _, ev := range f.newEvents() {
		if ev.Kind == EventRemoved {
			out[ev.Hash] = ev.Reason
		}
	}
	return out
}

// checkInvariants fails the test if the pool's internal structure is
// inconsistent.
func (f *fixture) checkInvariants() {
	f.t.Helper()
	if err := f.mp.checkInvariants(); err != nil {
		f.t.Fatal(err)
	}
}

func (m *Mempool) checkInvariants() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	count, bytes := 0, 0
	for addr, s := range m.senders {
		if s.addr != addr || len(s.txs) == 0 {
			return fmt.Errorf("sender %s: address %s, %d txs", addr, s.addr, len(s.txs))
		}
		if s.heapIdx < 0 || s.heapIdx >= len(m.evict) || m.evict[s.heapIdx] != s {
			return fmt.Errorf("sender %s: not in the eviction heap at %d", addr, s.heapIdx)
		}
		if len(s.txs) > m.cfg.MaxPerSender {
			return fmt.Errorf("sender %s: %d txs, cap %d", addr, len(s.txs), m.cfg.MaxPerSender)
		}
		var cost uint64
		for i, e := range s.txs {
			if i > 0 && s.txs[i-1].tx.Nonce >= e.tx.Nonce {
				return fmt.Errorf("sender %s: nonces out of order at %d", addr, i)
			}
			if e.tx.Nonce < s.acct.Nonce || e.tx.Nonce-s.acct.Nonce >= m.cfg.NonceWindow {
				return fmt.Errorf("sender %s: nonce %d outside the window from %d", addr, e.tx.Nonce, s.acct.Nonce)
			}
			if e.from != addr || m.byHash[e.hash] != e {
				return fmt.Errorf("sender %s: entry %s misfiled", addr, e.hash)
			}
			if e.cost != e.tx.Cost() {
				return fmt.Errorf("sender %s: entry %s (%s) costs %d, the tx %d", addr, e.hash, e.tx.Kind, e.cost, e.tx.Cost())
			}
			cost += e.cost
			count++
			bytes += e.size
		}
		if cost != s.cost || cost > s.acct.Balance {
			return fmt.Errorf("sender %s: cost %d (recorded %d), balance %d", addr, cost, s.cost, s.acct.Balance)
		}
		nexec := s.nexec
		s2 := *s
		s2.settle()
		if s2.nexec != nexec {
			return fmt.Errorf("sender %s: nexec %d, want %d", addr, nexec, s2.nexec)
		}
	}
	if count != m.count || count != len(m.byHash) || bytes != m.bytes {
		return fmt.Errorf("pool counts %d txs %d bytes, holds %d (%d by hash) %d bytes", m.count, m.bytes, count, len(m.byHash), bytes)
	}
	if m.count > m.cfg.MaxTxs || m.bytes > m.cfg.MaxBytes {
		return fmt.Errorf("pool holds %d txs %d bytes, caps %d %d", m.count, m.bytes, m.cfg.MaxTxs, m.cfg.MaxBytes)
	}
	if len(m.evict) != len(m.senders) {
		return fmt.Errorf("eviction heap holds %d senders, pool %d", len(m.evict), len(m.senders))
	}
	for i := 1; i < len(m.evict); i++ {
		if m.evict.Less(i, (i-1)/2) {
			return fmt.Errorf("eviction heap out of order at %d", i)
		}
	}
	n := 0
	for e := m.oldest; e != nil; e = e.next {
		if m.byHash[e.hash] != e || (e.prev != nil && e.prev.seq >= e.seq) {
			return fmt.Errorf("arrival list broken at %s", e.hash)
		}
		n++
	}
	if n != m.count {
		return fmt.Errorf("arrival list holds %d, pool %d", n, m.count)
	}
	return nil
}

// fakeClock is a settable clock for TTL tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// failingState fails to read the accounts in bad and reads the rest from inner.
type failingState struct {
	ledger.StateReader // inner
	bad                map[crypto.Address]bool
}

var errDisk = errors.New("disk on fire")

func (s failingState) Account(a crypto.Address) (ledger.Account, error) {
	if s.bad[a] {
		return ledger.Account{}, errDisk
	}
	return s.StateReader.Account(a)
}

// hashes returns the hashes of txs, in order.
func hashes(txs []*ledger.Tx) []crypto.Hash {
	out := make([]crypto.Hash, len(txs))
	for i, tx := range txs {
		out[i] = tx.Hash()
	}
	return out
}
