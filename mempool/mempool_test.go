package mempool

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

func TestAddRefusesWithReason(t *testing.T) {
	const balance = 1000
	lowBalance := func(s *ledgertest.MapState) {
		// account 0: nonce 5, balance 1000; the others keep their genesis funds.
		a := ledgertest.Key("account", 0).PubKey().Address()
		s.Accounts[a] = ledger.Account{Balance: balance, Nonce: 5}
	}
	tests := []struct {
		name     string
		tweak    func(*Config)
		before   func(f *fixture) // pooled first, must succeed
		tx       func(f *fixture) *ledger.Tx
		state    func(f *fixture) ledger.StateReader // replaces the pool's state, nil keeps it
		want     Code
		sentinel error
	}{
		{name: "nil transaction", want: Invalid,
			tx: func(f *fixture) *ledger.Tx { return nil }},
		{name: "zero amount", want: Invalid,
			tx: func(f *fixture) *ledger.Tx { return f.tx(0, 5, 0, 1) }},
		{name: "transfer to oneself", want: Invalid,
			tx: func(f *fixture) *ledger.Tx { return ledgertest.Transfer(f.key(0), f.addr(0), 1, 1, 5) }},
		{name: "amount plus fee overflows", want: InsufficientFunds, sentinel: ledger.ErrInsufficientFunds,
			tx: func(f *fixture) *ledger.Tx { return f.tx(0, 5, math.MaxUint64, 1) }},
		{name: "larger than MaxTxBytes", want: TxTooLarge,
			tweak: func(c *Config) { c.MaxTxBytes = 100 },
			tx:    func(f *fixture) *ledger.Tx { return f.tx(0, 5, 1, 1) }},
		{name: "other chain", want: WrongChain, sentinel: ledger.ErrWrongChain,
			tx: func(f *fixture) *ledger.Tx {
				tx := &ledger.Tx{ChainID: "other-chain", To: f.sinkAddr(), Amount: 1, Fee: 1, Nonce: 5}
				tx.Sign(f.key(0))
				return tx
			}},
		{name: "bad signature", want: BadSignature, sentinel: ledger.ErrBadSignature,
			tx: func(f *fixture) *ledger.Tx {
				tx := f.tx(0, 5, 1, 1)
				tx.Sig[0] ^= 1
				return tx
			}},
		{name: "signature of another key", want: BadSignature, sentinel: ledger.ErrBadSignature,
			tx: func(f *fixture) *ledger.Tx {
				tx := f.tx(0, 5, 1, 1)
				tx.From = f.key(1).PubKey()
				return tx
			}},
		{name: "same transaction twice", want: Duplicate,
			before: func(f *fixture) { f.mustAdd(f.tx(0, 5, 1, 1)) },
			tx:     func(f *fixture) *ledger.Tx { return f.tx(0, 5, 1, 1) }},
		{name: "nonce already used", want: NonceTooLow, sentinel: ledger.ErrNonceTooLow,
			tx: func(f *fixture) *ledger.Tx { return f.tx(0, 4, 1, 1) }},
		{name: "nonce beyond the window", want: NonceGap, sentinel: ledger.ErrNonceGap,
			tweak: func(c *Config) { c.NonceWindow = 4 },
			tx:    func(f *fixture) *ledger.Tx { return f.tx(0, 5+4, 1, 1) }},
		{name: "cost above balance", want: InsufficientFunds, sentinel: ledger.ErrInsufficientFunds,
			tx: func(f *fixture) *ledger.Tx { return f.tx(0, 5, balance, 1) }},
		{name: "cost above balance with earlier pending", want: InsufficientFunds, sentinel: ledger.ErrInsufficientFunds,
			before: func(f *fixture) { f.mustAdd(f.tx(0, 5, 500, 10), f.tx(0, 6, 400, 10)) },
			tx:     func(f *fixture) *ledger.Tx { return f.tx(0, 7, 80, 1) }},
		{name: "sender holds its limit with lower nonces", want: SenderLimit,
			tweak:  func(c *Config) { c.MaxPerSender = 2 },
			before: func(f *fixture) { f.mustAdd(f.tx(0, 5, 1, 1), f.tx(0, 6, 1, 1)) },
			tx:     func(f *fixture) *ledger.Tx { return f.tx(0, 7, 1, 1) }},
		{name: "replacement without the fee bump", want: FeeTooLowToReplace,
			before: func(f *fixture) { f.mustAdd(f.tx(0, 5, 1, 100)) },
			tx:     func(f *fixture) *ledger.Tx { return f.tx(0, 5, 2, 109) }},
		{name: "full of better-paying transactions", want: MempoolFull,
			tweak:  func(c *Config) { c.MaxTxs = 2 },
			before: func(f *fixture) { f.mustAdd(f.tx(1, 0, 1, 10), f.tx(2, 0, 1, 10)) },
			tx:     func(f *fixture) *ledger.Tx { return f.tx(3, 0, 1, 10) }},
		{name: "account unreadable", want: StateUnavailable,
			state: func(f *fixture) ledger.StateReader {
				return failingState{StateReader: f.state, bad: map[crypto.Address]bool{f.addr(0): true}}
			},
			tx: func(f *fixture) *ledger.Tx { return f.tx(0, 5, 1, 1) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureWith(t, testAccounts, tc.tweak, lowBalance)
			if tc.state != nil {
				f.mp.state = tc.state(f)
			}
			if tc.before != nil {
				tc.before(f)
			}
			n0, b0 := f.size()
			f.newEvents()
			err := f.mp.Add(tc.tx(f))
			var re *RejectError
			if !errors.As(err, &re) {
				t.Fatalf("Add = %v, want a *RejectError", err)
			}
			if re.Code != tc.want {
				t.Fatalf("code %s (%v), want %s", re.Code, err, tc.want)
			}
			if c, ok := CodeOf(err); !ok || c != tc.want {
				t.Fatalf("CodeOf = %s %v", c, ok)
			}
			if !strings.Contains(err.Error(), tc.want.String()) {
				t.Errorf("message %q does not name the reason %q", err, tc.want)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.sentinel)
			}
			if n, b := f.size(); n != n0 || b != b0 {
				t.Errorf("pool changed from %d txs %d bytes to %d %d", n0, b0, n, b)
			}
			if evs := f.newEvents(); len(evs) != 0 {
				t.Errorf("refusal produced events %+v", evs)
			}
			f.checkInvariants()
		})
	}
}

func TestCodesHaveStableDistinctNames(t *testing.T) {
	want := map[Code]string{
		1: "invalid", 2: "tx_too_large", 3: "wrong_chain", 4: "bad_signature", 5: "duplicate",
		6: "nonce_too_low", 7: "nonce_gap", 8: "insufficient_funds", 9: "sender_limit",
		10: "fee_too_low_to_replace", 11: "mempool_full", 12: "state_unavailable",
		20: "committed", 21: "replaced", 22: "evicted", 23: "expired",
	}
	if len(codeNames) != len(want) {
		t.Fatalf("%d codes named, test knows %d: add the new one here", len(codeNames), len(want))
	}
	for c, name := range want {
		if c.String() != name {
			t.Errorf("Code(%d) = %q, want %q", int(c), c.String(), name)
		}
	}
	if got := Code(99).String(); got != "code(99)" {
		t.Errorf("unknown code prints %q", got)
	}
	for _, c := range []Code{Invalid, TxTooLarge, WrongChain, BadSignature} {
		if !c.PeerFault() {
			t.Errorf("%s is not a peer fault", c)
		}
	}
	for _, c := range []Code{Duplicate, NonceTooLow, NonceGap, InsufficientFunds, MempoolFull, FeeTooLowToReplace} {
		if c.PeerFault() {
			t.Errorf("%s is a peer fault", c)
		}
	}
}

func TestAddBatchReportsEachTransaction(t *testing.T) {
	f := newFixture(t, nil)
	bad := f.tx(1, 0, 1, 1)
	bad.Sig[5] ^= 0x40
	other := &ledger.Tx{ChainID: "other", To: f.sinkAddr(), Amount: 1, Nonce: 0}
	other.Sign(f.key(2))
	batch := []*ledger.Tx{
		f.tx(0, 2, 1, 1), // queued until 0 and 1 arrive, later in the batch
		bad,
		f.tx(0, 0, 1, 1),
		f.tx(0, 0, 1, 1), // same as the previous one
		other,
		f.tx(0, 1, 1, 1),
		f.tx(3, 0, 1, 1),
	}
	want := []Code{0, BadSignature, 0, Duplicate, WrongChain, 0, 0}
	errs := f.mp.AddBatch(batch)
	for i, err := range errs {
		c, _ := CodeOf(err)
		if c != want[i] || (want[i] == 0) != (err == nil) {
			t.Errorf("tx %d: %v, want %s", i, err, want[i])
		}
	}
	if n, _ := f.size(); n != 4 {
		t.Fatalf("pool holds %d, want 4", n)
	}
	got := f.mp.Reap(math.MaxUint64, 100)
	if len(got) != 4 {
		t.Fatalf("Reap returned %d, want 4", len(got))
	}
	f.commit(got)
	f.checkInvariants()
}

func TestOutOfOrderArrivalReapsInNonceOrder(t *testing.T) {
	for _, order := range [][]uint64{{2, 0, 1}, {1, 2, 0}, {2, 1, 0}, {0, 1, 2}} {
		f := newFixture(t, nil)
		txs := []*ledger.Tx{f.tx(0, 0, 10, 3), f.tx(0, 1, 10, 2), f.tx(0, 2, 10, 1)}
		for k, n := range order {
			f.mustAdd(txs[n])
			// Only the prefix continuing from nonce 0 is executable.
			contiguous := 0
			for slices.Contains(order[:k+1], uint64(contiguous)) {
				contiguous++
			}
			if got := len(f.mp.Reap(math.MaxUint64, 100)); got != contiguous {
				t.Fatalf("order %v after %d arrivals: Reap returned %d, want %d", order, k+1, got, contiguous)
			}
			if nn, ok := f.mp.NextNonce(f.addr(0)); !ok || nn != uint64(contiguous) {
				t.Fatalf("order %v after %d arrivals: NextNonce = %d %v, want %d", order, k+1, nn, ok, contiguous)
			}
		}
		got := f.mp.Reap(math.MaxUint64, 100)
		if !slices.Equal(hashes(got), hashes(txs)) {
			t.Fatalf("order %v: Reap = nonces %v, want 0 1 2", order, nonces(got))
		}
		f.commit(got)
		if n, _ := f.size(); n != 0 {
			t.Fatalf("order %v: %d left after commit", order, n)
		}
	}
}

// Two nodes, a wallet sending nonces 0..5 alternately to each, gossip
// carrying admitted transactions across with the batches reversed: both
// pools end with the whole chain and would propose the same block.
func TestGossipAcrossNodesConverges(t *testing.T) {
	f := newFixture(t, nil)
	other, err := New(f.mp.cfg, f.state, 0)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []*Mempool{f.mp, other}
	subs := []*Subscription{f.mp.Subscribe(64, EventAdmitted), other.Subscribe(64, EventAdmitted)}
	var txs []*ledger.Tx
	for n := uint64(0); n < 6; n++ {
		tx := f.tx(0, n, 5, 1)
		txs = append(txs, tx)
		if err := nodes[n%2].Add(tx); err != nil {
			t.Fatalf("nonce %d: %v", n, err)
		}
	}
	batches := make([][]*ledger.Tx, 2)
	for i, sub := range subs {
		for len(sub.C()) > 0 {
			batches[i] = append(batches[i], (<-sub.C()).Tx)
		}
		slices.Reverse(batches[i])
	}
	for i, batch := range batches {
		for j, err := range nodes[1-i].AddBatch(batch) {
			if err != nil {
				t.Errorf("gossip to node %d, tx %d: %v", 1-i, j, err)
			}
		}
	}
	for i, mp := range nodes {
		if got := mp.Reap(math.MaxUint64, 100); !slices.Equal(hashes(got), hashes(txs)) {
			t.Errorf("node %d reaps nonces %v", i, nonces(got))
		}
	}
}

func TestReapOrdersByFeeThenArrivalKeepingNonces(t *testing.T) {
	f := newFixture(t, nil)
	a0 := f.tx(0, 0, 1, 30)
	b0 := f.tx(1, 0, 1, 10)
	b1 := f.tx(1, 1, 1, 50)
	c0 := f.tx(2, 0, 1, 10) // same fee as b0, arrives later
	d0 := f.tx(3, 0, 1, 1)
	d1 := f.tx(3, 1, 1, 99) // dear, but behind a cheap nonce
	f.mustAdd(d1, c0, b1, d0, a0, b0)
	want := []*ledger.Tx{a0, c0, b0, b1, d0, d1}
	// c0 arrived before b0 (b1 arrived before both but waits for b0).
	got := f.mp.Reap(math.MaxUint64, 100)
	if !slices.Equal(hashes(got), hashes(want)) {
		t.Fatalf("Reap order wrong:\n got %v\nwant %v", describe(f, got), describe(f, want))
	}
	if p := f.mp.Pending(0); !slices.Equal(hashes(p), hashes(want)) {
		t.Fatalf("Pending order differs from Reap: %v", describe(f, p))
	}
	f.commit(got)
}

func TestReapRespectsCapsAndExecutes(t *testing.T) {
	f := newFixture(t, nil)
	var all []*ledger.Tx
	for i := 0; i < 4; i++ {
		for n := uint64(0); n < 5; n++ {
			all = append(all, f.tx(i, n, 100, uint64(10*i)+n))
		}
	}
	f.mustAdd(all...)
	f.mustAdd(f.tx(5, 3, 1, 1000)) // queued: never reaped
	size := uint64(len(all[0].Encode()))
	tests := []struct {
		name             string
		maxBytes, maxTxs uint64
		wantTxs          int
	}{
		{"no limit", math.MaxUint64, math.MaxUint64, 20},
		{"count cap", math.MaxUint64, 7, 7},
		{"byte cap", 5*size + size/2, 100, 5},
		{"byte cap exactly", 9 * size, 100, 9},
		{"both, bytes tighter", 3 * size, 4, 3},
		{"both, count tighter", 30 * size, 4, 4},
		{"smaller than one tx", size - 1, 100, 0},
		{"zero count", math.MaxUint64, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n0, b0 := f.size()
			got := f.mp.Reap(tc.maxBytes, tc.maxTxs)
			if len(got) != tc.wantTxs {
				t.Fatalf("Reap returned %d, want %d", len(got), tc.wantTxs)
			}
			var bytes uint64
			for _, tx := range got {
				bytes += uint64(len(tx.Encode()))
			}
			if bytes > tc.maxBytes || uint64(len(got)) > tc.maxTxs {
				t.Fatalf("Reap returned %d txs %d bytes, caps %d %d", len(got), bytes, tc.maxTxs, tc.maxBytes)
			}
			if n, b := f.size(); n != n0 || b != b0 {
				t.Fatalf("Reap changed the pool")
			}
			if _, _, _, err := f.execute(got); err != nil {
				t.Fatalf("reaped block does not execute: %v", err)
			}
		})
	}
}

func TestReplacement(t *testing.T) {
	tests := []struct {
		name    string
		oldFee  uint64
		newFee  uint64
		replace bool
	}{
		{"exactly ten percent more", 100, 110, true},
		{"just under ten percent", 100, 109, false},
		{"same fee", 100, 100, false},
		{"lower fee", 100, 50, false},
		{"zero fee needs one more", 0, 1, true},
		{"bump rounds up", 5, 6, true},
		{"large fee", 123_456, 135_802, true},
		{"large fee just short", 123_456, 135_801, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			old := f.tx(0, 0, 7, tc.oldFee)
			f.mustAdd(old)
			f.newEvents()
			repl := f.tx(0, 0, 8, tc.newFee)
			err := f.mp.Add(repl)
			if tc.replace {
				if err != nil {
					t.Fatalf("replacement refused: %v", err)
				}
				if f.mp.Has(old.Hash()) || !f.mp.Has(repl.Hash()) {
					t.Fatal("pool does not hold exactly the replacement")
				}
				if r := f.removals(); r[old.Hash()] != Replaced {
					t.Fatalf("old tx removal reason %v, want replaced", r)
				}
			} else {
				if c, _ := CodeOf(err); c != FeeTooLowToReplace {
					t.Fatalf("Add = %v, want fee_too_low_to_replace", err)
				}
				if !f.mp.Has(old.Hash()) {
					t.Fatal("refused replacement removed the original")
				}
			}
			f.checkInvariants()
		})
	}
}

func TestReplacementThatRaisesCostDropsUnaffordableHigherNonces(t *testing.T) {
	f := newFixtureWith(t, 2, nil, func(s *ledgertest.MapState) {
		s.Accounts[ledgertest.Key("account", 0).PubKey().Address()] = ledger.Account{Balance: 1000}
	})
	t0, t1, t2 := f.tx(0, 0, 290, 10), f.tx(0, 1, 290, 10), f.tx(0, 2, 290, 10)
	f.mustAdd(t0, t1, t2)
	f.newEvents()
	// A replacement for 0 costing 600 leaves 400: nonce 1 fits, 2 does not.
	f.mustAdd(f.tx(0, 0, 580, 20))
	r := f.removals()
	if r[t0.Hash()] != Replaced || r[t2.Hash()] != InsufficientFunds || len(r) != 2 {
		t.Fatalf("removals %v, want t0 replaced and t2 insufficient_funds", r)
	}
	// A replacement the balance cannot carry is refused and changes nothing.
	err := f.mp.Add(f.tx(0, 0, 990, 30))
	if c, _ := CodeOf(err); c != InsufficientFunds {
		t.Fatalf("Add = %v, want insufficient_funds", err)
	}
	f.commit(f.mp.Reap(math.MaxUint64, 100))
	f.checkInvariants()
}

// A lower nonce arriving late wins over higher ones already pooled, so
// the pool keeps what it would have kept had they arrived in order.
func TestLowerNonceDisplacesHigherOnes(t *testing.T) {
	t.Run("balance", func(t *testing.T) {
		f := newFixtureWith(t, 2, nil, func(s *ledgertest.MapState) {
			s.Accounts[ledgertest.Key("account", 0).PubKey().Address()] = ledger.Account{Balance: 100}
		})
		late := f.tx(0, 1, 50, 10)
		f.mustAdd(late) // queued, affordable alone
		f.newEvents()
		f.mustAdd(f.tx(0, 0, 50, 10)) // together they cost 120
		if r := f.removals(); r[late.Hash()] != InsufficientFunds {
			t.Fatalf("removals %v, want nonce 1 dropped for insufficient_funds", r)
		}
		f.checkInvariants()
	})
	t.Run("sender limit", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.MaxPerSender = 3 })
		high := []*ledger.Tx{f.tx(0, 4, 1, 1), f.tx(0, 5, 1, 1), f.tx(0, 6, 1, 1)}
		f.mustAdd(high...)
		f.newEvents()
		f.mustAdd(f.tx(0, 0, 1, 1))
		if r := f.removals(); r[high[2].Hash()] != SenderLimit || len(r) != 1 {
			t.Fatalf("removals %v, want nonce 6 dropped for sender_limit", r)
		}
		f.checkInvariants()
	})
}

func TestEviction(t *testing.T) {
	type add struct {
		acct       int
		nonce, fee uint64
	}
	tests := []struct {
		name    string
		maxTxs  int
		pooled  []add
		arrival add
		want    Code  // 0: admitted
		evicted []int // indices into pooled
	}{
		{name: "lowest fee goes", maxTxs: 3,
			pooled:  []add{{0, 0, 5}, {1, 0, 3}, {2, 0, 4}},
			arrival: add{3, 0, 4}, evicted: []int{1}},
		{name: "equal to the lowest fee is refused", maxTxs: 3,
			pooled:  []add{{0, 0, 5}, {1, 0, 3}, {2, 0, 4}},
			arrival: add{3, 0, 3}, want: MempoolFull},
		{name: "below everything is refused", maxTxs: 2,
			pooled:  []add{{0, 0, 5}, {1, 0, 3}},
			arrival: add{3, 0, 1}, want: MempoolFull},
		{name: "only chain tails are candidates", maxTxs: 3,
			// account 0's nonce 0 is cheapest, but evicting it would strand nonce 1.
			pooled:  []add{{0, 0, 1}, {0, 1, 100}, {1, 0, 50}},
			arrival: add{2, 0, 60}, evicted: []int{2}},
		{name: "cheap tail goes before its dearer parent", maxTxs: 3,
			pooled:  []add{{0, 0, 100}, {0, 1, 2}, {1, 0, 50}},
			arrival: add{2, 0, 3}, evicted: []int{1}},
		{name: "queued goes first whatever its fee", maxTxs: 3,
			pooled:  []add{{0, 0, 100}, {1, 5, 1000}, {2, 0, 50}},
			arrival: add{3, 0, 10}, evicted: []int{1}},
		{name: "queued arrival cannot evict executable", maxTxs: 2,
			pooled:  []add{{0, 0, 1}, {1, 0, 1}},
			arrival: add{2, 3, 1000}, want: MempoolFull},
		{name: "queued arrival evicts cheaper queued", maxTxs: 2,
			pooled:  []add{{0, 0, 1}, {1, 3, 1}},
			arrival: add{2, 3, 2}, evicted: []int{1}},
		{name: "never its own sender", maxTxs: 2,
			pooled:  []add{{0, 0, 1}, {0, 1, 1}},
			arrival: add{0, 2, 100}, want: MempoolFull},
		{name: "ties evict the later arrival", maxTxs: 3,
			pooled:  []add{{0, 0, 7}, {1, 0, 7}, {2, 0, 7}},
			arrival: add{3, 0, 8}, evicted: []int{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.MaxTxs = tc.maxTxs })
			var pooled []*ledger.Tx
			for _, p := range tc.pooled {
				tx := f.tx(p.acct, p.nonce, 1, p.fee)
				f.mustAdd(tx)
				pooled = append(pooled, tx)
			}
			f.newEvents()
			tx := f.tx(tc.arrival.acct, tc.arrival.nonce, 1, tc.arrival.fee)
			err := f.mp.Add(tx)
			if c, _ := CodeOf(err); c != tc.want || (tc.want == 0) != (err == nil) {
				t.Fatalf("Add = %v, want %s", err, tc.want)
			}
			r := f.removals()
			if len(r) != len(tc.evicted) {
				t.Fatalf("removed %v, want indices %v evicted", r, tc.evicted)
			}
			for _, i := range tc.evicted {
				if r[pooled[i].Hash()] != Evicted {
					t.Fatalf("pooled tx %d: removal %v, want evicted", i, r[pooled[i].Hash()])
				}
			}
			f.checkInvariants()
		})
	}
}

func TestEvictionByBytes(t *testing.T) {
	f := newFixture(t, nil)
	size := len(f.tx(0, 0, 1, 1).Encode())
	f = newFixture(t, func(c *Config) { c.MaxBytes = 2*size + size/2; c.MaxTxBytes = size })
	cheap := f.tx(0, 0, 1, 1)
	f.mustAdd(cheap, f.tx(1, 0, 1, 5))
	f.newEvents()
	f.mustAdd(f.tx(2, 0, 1, 3))
	if r := f.removals(); r[cheap.Hash()] != Evicted {
		t.Fatalf("removals %v, want the fee-1 tx evicted", r)
	}
	if _, b := f.size(); b > 2*size+size/2 {
		t.Fatalf("pool holds %d bytes", b)
	}
	f.checkInvariants()
}

func TestTTLExpiresOldTransactions(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.TTL = 10 * time.Minute })
	old0, old1 := f.tx(0, 0, 1, 1), f.tx(0, 1, 1, 1)
	f.mustAdd(old0)
	f.clock.Advance(5 * time.Minute)
	f.mustAdd(old1) // 5 minutes younger than its parent
	young := f.tx(1, 0, 1, 1)
	f.mustAdd(young)
	f.newEvents()

	f.clock.Advance(5*time.Minute - time.Nanosecond)
	f.commit(nil)
	if r := f.removals(); len(r) != 0 {
		t.Fatalf("removed %v before the TTL", r)
	}
	f.clock.Advance(time.Nanosecond)
	f.commit(nil)
	if r := f.removals(); r[old0.Hash()] != Expired || len(r) != 1 {
		t.Fatalf("removals %v, want only nonce 0 expired", r)
	}
	// Its successor stays, queued behind the gap, until its own TTL.
	if got := f.mp.Reap(math.MaxUint64, 100); !slices.Equal(hashes(got), hashes([]*ledger.Tx{young})) {
		t.Fatalf("Reap = %v, want only account 1's tx", describe(f, got))
	}
	f.clock.Advance(5 * time.Minute)
	f.commit(nil)
	r := f.removals()
	if r[old1.Hash()] != Expired || r[young.Hash()] != Expired {
		t.Fatalf("removals %v, want both expired", r)
	}
	if n, _ := f.size(); n != 0 {
		t.Fatalf("%d left", n)
	}
	f.checkInvariants()
}

func TestZeroTTLKeepsTransactions(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.TTL = 0 })
	f.mustAdd(f.tx(0, 0, 1, 1))
	f.clock.Advance(1000 * time.Hour)
	f.commit(nil)
	if n, _ := f.size(); n != 1 {
		t.Fatalf("pool holds %d, want 1", n)
	}
}

func TestUpdateAfterCommit(t *testing.T) {
	t.Run("drops included transactions", func(t *testing.T) {
		f := newFixture(t, nil)
		a := []*ledger.Tx{f.tx(0, 0, 1, 9), f.tx(0, 1, 1, 9), f.tx(0, 2, 1, 9)}
		b := f.tx(1, 0, 1, 1)
		f.mustAdd(append(a, b)...)
		f.newEvents()
		f.commit(f.mp.Reap(math.MaxUint64, 2))
		r := f.removals()
		if r[a[0].Hash()] != Committed || r[a[1].Hash()] != Committed || len(r) != 2 {
			t.Fatalf("removals %v, want a0 a1 committed", r)
		}
		got := f.mp.Reap(math.MaxUint64, 100)
		if !slices.Equal(hashes(got), hashes([]*ledger.Tx{a[2], b})) {
			t.Fatalf("after commit Reap = %v", describe(f, got))
		}
		f.commit(got)
		f.checkInvariants()
	})
	t.Run("drops what a conflicting commit made invalid", func(t *testing.T) {
		f := newFixtureWith(t, 2, nil, func(s *ledgertest.MapState) {
			s.Accounts[ledgertest.Key("account", 0).PubKey().Address()] = ledger.Account{Balance: 1000}
		})
		pooled := []*ledger.Tx{f.tx(0, 0, 290, 10), f.tx(0, 1, 290, 10), f.tx(0, 2, 290, 10)}
		f.mustAdd(pooled...)
		f.newEvents()
		// The same nonce 0, sent through another node, spends 600.
		f.commit([]*ledger.Tx{f.tx(0, 0, 590, 10)})
		r := f.removals()
		if r[pooled[0].Hash()] != NonceTooLow || r[pooled[2].Hash()] != InsufficientFunds || len(r) != 2 {
			t.Fatalf("removals %v, want nonce 0 nonce_too_low and nonce 2 insufficient_funds", r)
		}
		got := f.mp.Reap(math.MaxUint64, 100)
		if !slices.Equal(hashes(got), hashes(pooled[1:2])) {
			t.Fatalf("Reap = %v, want nonce 1", describe(f, got))
		}
		f.commit(got)
	})
	t.Run("promotes queued transactions when a commit fills the gap", func(t *testing.T) {
		f := newFixture(t, nil)
		queued := []*ledger.Tx{f.tx(0, 1, 1, 1), f.tx(0, 2, 1, 1)}
		f.mustAdd(queued...)
		if got := f.mp.Reap(math.MaxUint64, 100); len(got) != 0 {
			t.Fatalf("queued txs reaped: %v", describe(f, got))
		}
		f.commit([]*ledger.Tx{f.tx(0, 0, 1, 1)}) // nonce 0 came through another node
		if got := f.mp.Reap(math.MaxUint64, 100); !slices.Equal(hashes(got), hashes(queued)) {
			t.Fatalf("Reap = %v, want nonces 1 2", describe(f, got))
		}
		if nn, _ := f.mp.NextNonce(f.addr(0)); nn != 3 {
			t.Fatalf("NextNonce = %d, want 3", nn)
		}
	})
	t.Run("sees funds that arrived in a block", func(t *testing.T) {
		f := newFixtureWith(t, 2, nil, func(s *ledgertest.MapState) {
			s.Accounts[ledgertest.Key("account", 1).PubKey().Address()] = ledger.Account{Balance: 10}
		})
		spend := ledgertest.Transfer(f.key(1), f.sinkAddr(), 500, 1, 1)
		f.mustAdd(f.tx(1, 0, 5, 1)) // account 1 is now known to the pool with balance 10
		if c, _ := CodeOf(f.mp.Add(spend)); c != InsufficientFunds {
			t.Fatalf("spend before funding: %s, want insufficient_funds", c)
		}
		f.commit([]*ledger.Tx{ledgertest.Transfer(f.key(0), f.addr(1), 1000, 1, 0)})
		f.mustAdd(spend)
		f.commit(f.mp.Reap(math.MaxUint64, 100))
	})
	t.Run("refuses an old height", func(t *testing.T) {
		f := newFixture(t, nil)
		f.commit(nil)
		if err := f.mp.Update(1, nil, f.state); err == nil {
			t.Fatal("Update to the current height accepted")
		}
	})
	t.Run("rechecks every sender after a jump", func(t *testing.T) {
		f := newFixture(t, nil)
		pooled := f.tx(0, 0, 1, 1)
		f.mustAdd(pooled)
		// Blocks 1 and 2 arrive by block sync; the caller reports them at once.
		st, state, lc, err := f.execute([]*ledger.Tx{f.tx(0, 0, 2, 1)})
		if err != nil {
			t.Fatal(err)
		}
		f.st, f.state, f.lastCommit = st, state, lc
		st, state, lc, err = f.execute(nil)
		if err != nil {
			t.Fatal(err)
		}
		f.st, f.state, f.lastCommit = st, state, lc
		f.newEvents()
		if err := f.mp.Update(2, nil, f.state); err != nil {
			t.Fatal(err)
		}
		if r := f.removals(); r[pooled.Hash()] != NonceTooLow {
			t.Fatalf("removals %v, want the stale nonce dropped", r)
		}
	})
}

func TestUnreadableAccountIsHeldBackUntilRead(t *testing.T) {
	f := newFixture(t, nil)
	a0, a1, b0 := f.tx(0, 0, 1, 1), f.tx(0, 1, 1, 1), f.tx(1, 0, 1, 1)
	f.mustAdd(a0, a1, b0)
	st, state, lc, err := f.execute([]*ledger.Tx{a0})
	if err != nil {
		t.Fatal(err)
	}
	f.st, f.state, f.lastCommit = st, state, lc
	bad := failingState{StateReader: state, bad: map[crypto.Address]bool{f.addr(0): true}}
	if err := f.mp.Update(st.Height, []*ledger.Tx{a0}, bad); !errors.Is(err, errDisk) {
		t.Fatalf("Update = %v, want the read error", err)
	}
	if got := f.mp.Reap(math.MaxUint64, 100); !slices.Equal(hashes(got), hashes([]*ledger.Tx{b0})) {
		t.Fatalf("Reap = %v, want only b0 while account 0 is unknown", describe(f, got))
	}
	if _, ok := f.mp.NextNonce(f.addr(0)); ok {
		t.Fatal("NextNonce answers for an unknown account")
	}
	if !f.mp.Has(a1.Hash()) {
		t.Fatal("a1 dropped on a read error")
	}
	f.checkInvariants()
	// The next Update reads it again.
	f.commit(nil)
	if got := f.mp.Reap(math.MaxUint64, 100); !slices.Equal(hashes(got), hashes([]*ledger.Tx{a1, b0})) {
		t.Fatalf("Reap = %v, want a1 b0", describe(f, got))
	}
	f.commit(f.mp.Reap(math.MaxUint64, 100))
}

func TestSubscriptionNeverBlocks(t *testing.T) {
	f := newFixture(t, nil)
	sub := f.mp.Subscribe(1, EventAdmitted)
	for n := uint64(0); n < 3; n++ {
		f.mustAdd(f.tx(0, n, 1, 1))
	}
	f.commit(f.mp.Reap(math.MaxUint64, 100)) // removals: not subscribed
	if got := len(sub.C()); got != 1 {
		t.Fatalf("%d events buffered, want 1", got)
	}
	if ev := <-sub.C(); ev.Kind != EventAdmitted || ev.Tx.Nonce != 0 {
		t.Fatalf("first event %+v", ev)
	}
	if d := sub.Dropped(); d != 2 {
		t.Fatalf("Dropped = %d, want 2", d)
	}
	sub.Close()
	sub.Close()
	if _, open := <-sub.C(); open {
		t.Fatal("channel open after Close")
	}
	f.mustAdd(f.tx(0, 3, 1, 1)) // no send on the closed channel
}

func TestNextNonce(t *testing.T) {
	f := newFixture(t, nil)
	if _, ok := f.mp.NextNonce(f.addr(0)); ok {
		t.Fatal("NextNonce answers for an account with nothing pooled")
	}
	f.mustAdd(f.tx(0, 0, 1, 1), f.tx(0, 1, 1, 1), f.tx(0, 3, 1, 1))
	if nn, ok := f.mp.NextNonce(f.addr(0)); !ok || nn != 2 {
		t.Fatalf("NextNonce = %d %v, want 2", nn, ok)
	}
	f.commit(f.mp.Reap(math.MaxUint64, 1))
	if nn, ok := f.mp.NextNonce(f.addr(0)); !ok || nn != 2 {
		t.Fatalf("after commit NextNonce = %d %v, want 2", nn, ok)
	}
}

func TestGetAndPending(t *testing.T) {
	f := newFixture(t, nil)
	a0, a2 := f.tx(0, 0, 1, 1), f.tx(0, 2, 1, 5)
	f.mustAdd(a2, a0)
	got, ok := f.mp.Get(a0.Hash())
	if !ok || got.Hash() != a0.Hash() {
		t.Fatal("Get does not return the pooled tx")
	}
	if _, ok := f.mp.Get(crypto.Hash{}); ok {
		t.Fatal("Get finds a tx never added")
	}
	// Pending: executable first, then queued.
	if p := f.mp.Pending(0); !slices.Equal(hashes(p), hashes([]*ledger.Tx{a0, a2})) {
		t.Fatalf("Pending = %v", describe(f, p))
	}
	if p := f.mp.Pending(1); len(p) != 1 {
		t.Fatalf("Pending(1) returned %d", len(p))
	}
}

func TestPoolKeepsItsOwnCopy(t *testing.T) {
	f := newFixture(t, nil)
	tx := f.tx(0, 0, 1, 1)
	h := tx.Hash()
	f.mustAdd(tx)
	tx.Amount = 999 // the caller reuses its value
	got, ok := f.mp.Get(h)
	if !ok || got.Amount != 1 || got.Hash() != h {
		t.Fatal("pooled tx changed with the caller's copy")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	state := ledgertest.NewChain(1, 1, 1).NewMapState()
	for name, tweak := range map[string]func(*Config){
		"bad chain ID":     func(c *Config) { c.ChainID = "" },
		"zero MaxTxs":      func(c *Config) { c.MaxTxs = 0 },
		"oversize tx cap":  func(c *Config) { c.MaxTxBytes = ledger.MaxTxBytes + 1 },
		"bytes below a tx": func(c *Config) { c.MaxBytes = 10; c.MaxTxBytes = 100 },
		"zero window":      func(c *Config) { c.NonceWindow = 0 },
		"bump above 100%":  func(c *Config) { c.ReplaceBumpPercent = 101 },
		"negative TTL":     func(c *Config) { c.TTL = -1 },
	} {
		cfg := DefaultConfig(ledgertest.ChainID)
		tweak(&cfg)
		if _, err := New(cfg, state, 0); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(DefaultConfig(ledgertest.ChainID), nil, 0); err == nil {
		t.Error("nil state accepted")
	}
}

func nonces(txs []*ledger.Tx) []uint64 {
	out := make([]uint64, len(txs))
	for i, tx := range txs {
		out[i] = tx.Nonce
	}
	return out
}

// describe names each tx as account/nonce/fee for failure messages.
func describe(f *fixture, txs []*ledger.Tx) []string {
	out := make([]string, len(txs))
	for i, tx := range txs {
		who := "?"
		for j := range f.chain.Accounts {
			if tx.From == f.key(j).PubKey() {
				who = string(rune('A' + j))
			}
		}
		out[i] = fmt.Sprintf("%s/%d/fee%d", who, tx.Nonce, tx.Fee)
	}
	return out
}

// hookState runs hook once, on the first account read, then reads inner.
type hookState struct {
	ledger.StateReader // inner
	once               *sync.Once
	hook               func()
}

func (s hookState) Account(a crypto.Address) (ledger.Account, error) {
	s.once.Do(s.hook)
	return s.StateReader.Account(a)
}

// A block that commits while Add reads the sender's account makes Add
// check again against the new state instead of admitting a stale nonce.
func TestAddRacingACommitUsesTheNewState(t *testing.T) {
	f := newFixture(t, nil)
	elsewhere := f.tx(0, 0, 5, 1) // nonce 0, committed through another node
	f.mp.state = hookState{StateReader: f.state, once: new(sync.Once), hook: func() { f.commit([]*ledger.Tx{elsewhere}) }}
	err := f.mp.Add(f.tx(0, 0, 7, 1))
	if c, _ := CodeOf(err); c != NonceTooLow {
		t.Fatalf("Add = %v, want nonce_too_low against the state committed meanwhile", err)
	}
	f.checkInvariants()
}

// A sender whose first transaction is admitted while Update reads
// accounts, and whose nonce that block moved, is held out of Reap until
// its account is read again.
func TestAddDuringUpdateIsHeldBack(t *testing.T) {
	f := newFixture(t, nil)
	a0 := f.tx(0, 0, 1, 1)
	f.mustAdd(a0)
	elsewhere := f.tx(1, 0, 5, 1) // account 1's nonce 0, not in this pool
	stale := f.tx(1, 0, 6, 1)     // the same nonce, arriving during the Update
	next := f.tx(1, 1, 6, 1)
	st, state, lc, err := f.execute([]*ledger.Tx{a0, elsewhere})
	if err != nil {
		t.Fatal(err)
	}
	f.st, f.state, f.lastCommit = st, state, lc
	hooked := hookState{StateReader: state, once: new(sync.Once), hook: func() { f.mustAdd(stale, next) }}
	if err := f.mp.Update(st.Height, []*ledger.Tx{a0, elsewhere}, hooked); err != nil {
		t.Fatal(err)
	}
	if !f.mp.Has(stale.Hash()) {
		t.Fatal("the hook did not run inside Update")
	}
	if got := f.mp.Reap(math.MaxUint64, 100); len(got) != 0 {
		t.Fatalf("Reap = %v, want nothing while account 1 is unread", describe(f, got))
	}
	f.newEvents()
	f.commit(nil)
	if r := f.removals(); r[stale.Hash()] != NonceTooLow {
		t.Fatalf("removals %v, want the stale nonce dropped once read", r)
	}
	f.commit(f.mp.Reap(math.MaxUint64, 100))
	if f.mp.Has(next.Hash()) {
		t.Fatal("nonce 1 was not committed")
	}
}
