package mempool

import (
	"container/heap"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// Mempool holds transactions waiting for a block. All methods are safe
// for concurrent use. Signature checks and state reads happen outside the
// pool's lock; readers (Reap, Has, Size, ...) share it.
type Mempool struct {
	cfg Config
	now func() time.Time

	updateMu sync.Mutex // serialises Update

	mu      sync.RWMutex
	state   ledger.StateReader // state after height
	height  uint64
	byHash  map[crypto.Hash]*entry
	senders map[crypto.Address]*sender
	evict   evictHeap
	unknown map[crypto.Address]struct{} // senders to re-read at the next Update
	oldest  *entry                      // arrival list head
	newest  *entry                      // arrival list tail
	count   int
	bytes   int
	seq     uint64
	subs    []*Subscription
}

// New returns an empty pool checking transactions against state, the
// committed state after block height (0 for genesis).
func New(cfg Config, state ledger.StateReader, height uint64) (*Mempool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if state == nil {
		return nil, errors.New("mempool: nil state")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Mempool{
		cfg:     cfg,
		now:     now,
		state:   state,
		height:  height,
		byHash:  make(map[crypto.Hash]*entry),
		senders: make(map[crypto.Address]*sender),
		unknown: make(map[crypto.Address]struct{}),
	}, nil
}

// candidate is a transaction that passed the stateless checks.
type candidate struct {
	idx  int // position in the caller's batch
	tx   *ledger.Tx
	hash crypto.Hash
	from crypto.Address
	size int
	cost uint64
}

// Add admits tx or returns a *RejectError saying why not. On success the
// pool holds its own copy of tx, and subscribers get an EventAdmitted.
// Checks run in this order: size, stateless rules and chain ID, duplicate
// hash, the sender's account (read from state unless the pool has it for
// the current height), nonce against the committed nonce (too low, beyond
// the window), signature, then, against the pool, replacement fee, sender
// limit, cumulative balance and the pool caps. Add never blocks on
// anything but the pool's lock and one state read.
func (m *Mempool) Add(tx *ledger.Tx) error {
	return m.AddBatch([]*ledger.Tx{tx})[0]
}

// AddBatch is Add for many transactions, as gossip delivers them: the
// signatures of all that pass the cheaper checks are verified in one batch,
// and the rest are admitted in order under one lock acquisition, so a later
// transaction sees the earlier ones (n, n+1, n+2 in one batch all pass).
// errs[i] is nil when txs[i] was admitted, else a *RejectError.
func (m *Mempool) AddBatch(txs []*ledger.Tx) (errs []error) {
	return m.addBatch(txs, false)
}

// AddVerified is AddBatch for transactions whose signatures the caller has
// already verified (the gossip validators do, to penalise senders of bad
// ones), so that no signature is checked twice on the hot path.
func (m *Mempool) AddVerified(txs []*ledger.Tx) (errs []error) {
	return m.addBatch(txs, true)
}

func (m *Mempool) addBatch(txs []*ledger.Tx, sigsChecked bool) (errs []error) {
	errs = make([]error, len(txs))
	cands := make([]*candidate, 0, len(txs))
	for i, tx := range txs {
		c, rerr := m.prepare(tx)
		if rerr != nil {
			errs[i] = rerr
			continue
		}
		c.idx = i
		cands = append(cands, c)
	}
	for len(cands) > 0 {
		// Snapshot the height and the accounts the pool already knows.
		m.mu.RLock()
		height, state := m.height, m.state
		accts := make(map[crypto.Address]ledger.Account)
		toRead := make(map[crypto.Address]struct{})
		seen := make(map[crypto.Hash]bool, len(cands))
		live := cands[:0:0]
		for _, c := range cands {
			if _, dup := m.byHash[c.hash]; dup || seen[c.hash] {
				errs[c.idx] = rejectf(Duplicate, "tx %s is already pooled", c.hash)
				continue
			}
			seen[c.hash] = true
			live = append(live, c)
			if _, ok := accts[c.from]; ok {
				continue
			}
			if s := m.senders[c.from]; s != nil && s.known && s.height == height {
				accts[c.from] = s.acct
			} else {
				toRead[c.from] = struct{}{}
			}
		}
		m.mu.RUnlock()

		// Read the other accounts and drop what their nonces rule out,
		// all before paying for a signature check.
		failed := make(map[crypto.Address]error)
		for a := range toRead {
			acct, err := state.Account(a)
			if err != nil {
				failed[a] = err
				continue
			}
			accts[a] = acct
		}
		cands = live[:0]
		for _, c := range live {
			if err, bad := failed[c.from]; bad {
				errs[c.idx] = rejectf(StateUnavailable, "read account %s: %w", c.from, err)
				continue
			}
			if rerr := m.checkNonce(c.tx.Nonce, accts[c.from]); rerr != nil {
				errs[c.idx] = rerr
				continue
			}
			cands = append(cands, c)
		}
		if !sigsChecked {
			cands = verifySigs(cands, errs)
			sigsChecked = true
		}
		if len(cands) == 0 {
			break
		}

		m.mu.Lock()
		if m.height != height {
			// A block committed meanwhile: the accounts read are stale.
			m.mu.Unlock()
			continue
		}
		for _, c := range cands {
			if rerr := m.admitLocked(c, accts[c.from]); rerr != nil {
				errs[c.idx] = rerr
			}
		}
		m.mu.Unlock()
		break
	}
	return errs
}

// prepare runs the checks that need neither state nor pool.
func (m *Mempool) prepare(tx *ledger.Tx) (*candidate, *RejectError) {
	if tx == nil {
		return nil, reject(Invalid, errors.New("nil transaction"))
	}
	cp := *tx
	enc := cp.Encode()
	if len(enc) > m.cfg.MaxTxBytes {
		return nil, rejectf(TxTooLarge, "tx is %d bytes, at most %d", len(enc), m.cfg.MaxTxBytes)
	}
	if err := cp.ValidateBasic(m.cfg.ChainID); err != nil {
		switch {
		case errors.Is(err, ledger.ErrWrongChain):
			return nil, reject(WrongChain, err)
		case errors.Is(err, ledger.ErrInsufficientFunds):
			return nil, reject(InsufficientFunds, err)
		default:
			return nil, reject(Invalid, err)
		}
	}
	return &candidate{
		tx:   &cp,
		hash: crypto.Sum(enc),
		from: cp.Sender(),
		size: len(enc),
		cost: cp.Cost(),
	}, nil
}

// Precheck runs the admission checks that need only the committed state,
// without adding tx or verifying its signature: it returns a RejectError
// with NonceTooLow (already executed, or replaced by a committed
// transaction), NonceGap (Config.NonceWindow or more ahead), or
// InsufficientFunds (the committed balance cannot pay tx.Cost(): amount
// plus fee, or the fee alone for an undelegation or an unjail),
// StateUnavailable when the account cannot be read, or nil. Gossip validators call it
// to drop, before relaying, transactions that can never execute.
func (m *Mempool) Precheck(tx *ledger.Tx) error {
	m.mu.RLock()
	state := m.state
	m.mu.RUnlock()
	acct, err := state.Account(tx.Sender())
	if err != nil {
		return rejectf(StateUnavailable, "read account %s: %w", tx.Sender(), err)
	}
	if rerr := m.checkNonce(tx.Nonce, acct); rerr != nil {
		return rerr
	}
	if cost, ok := txCost(tx); !ok {
		return rejectf(InsufficientFunds, "%w: amount + fee overflows", ledger.ErrInsufficientFunds)
	} else if cost > acct.Balance {
		return rejectf(InsufficientFunds, "%w: sender %s has %d, the %s needs %d",
			ledger.ErrInsufficientFunds, tx.Sender(), acct.Balance, tx.Kind, cost)
	}
	return nil
}

// NonceWindow is Config.NonceWindow: how far ahead of the committed nonce
// a transaction is admitted.
func (m *Mempool) NonceWindow() uint64 { return m.cfg.NonceWindow }

// txCost is tx.Cost() and whether it did not overflow (Precheck runs
// without ValidateBasic).
func txCost(tx *ledger.Tx) (uint64, bool) {
	c := tx.Cost()
	return c, c >= tx.Fee
}

// checkNonce applies the nonce rules that need only the committed account.
func (m *Mempool) checkNonce(nonce uint64, acct ledger.Account) *RejectError {
	if nonce < acct.Nonce {
		return reject(NonceTooLow, fmt.Errorf("%w: nonce %d, account is at %d", ledger.ErrNonceTooLow, nonce, acct.Nonce))
	}
	if nonce-acct.Nonce >= m.cfg.NonceWindow {
		return reject(NonceGap, fmt.Errorf("%w: nonce %d is %d or more ahead of the account's %d",
			ledger.ErrNonceGap, nonce, m.cfg.NonceWindow, acct.Nonce))
	}
	return nil
}

// verifySigs returns the candidates whose signatures verify, recording
// BadSignature for the others. More than one is checked as a batch.
func verifySigs(cands []*candidate, errs []error) []*candidate {
	bad := func(c *candidate) {
		errs[c.idx] = reject(BadSignature, fmt.Errorf("%w: tx %s", ledger.ErrBadSignature, c.hash))
	}
	switch len(cands) {
	case 0:
		return cands
	case 1:
		if cands[0].tx.VerifySig() != nil {
			bad(cands[0])
			return cands[:0]
		}
		return cands
	}
	bv := crypto.NewBatchVerifier(len(cands))
	for _, c := range cands {
		bv.Add(c.tx.From, c.tx.SignBytes(), c.tx.Sig)
	}
	ok, valid := bv.Verify()
	if ok {
		return cands
	}
	out := cands[:0]
	for i, c := range cands {
		if valid[i] {
			out = append(out, c)
		} else {
			bad(c)
		}
	}
	return out
}

// senderFor returns c's sender, with its account brought up to the pool's
// height using acct (read at that height), and whether it is new and not
// yet registered in the pool.
func (m *Mempool) senderFor(addr crypto.Address, acct ledger.Account) (*sender, bool) {
	s := m.senders[addr]
	if s == nil {
		return newSender(addr, acct, m.height), true
	}
	if s.known && s.height == m.height {
		return s, false
	}
	m.reconcileLocked(s, acct)
	delete(m.unknown, addr)
	m.fixSender(s)
	if len(s.txs) == 0 { // fixSender dropped it
		return newSender(addr, acct, m.height), true
	}
	return s, false
}

// admitLocked applies the pool rules to c and inserts it, evicting or
// displacing what the rules say, or changes nothing and says why not.
func (m *Mempool) admitLocked(c *candidate, acct ledger.Account) *RejectError {
	if _, dup := m.byHash[c.hash]; dup {
		return rejectf(Duplicate, "tx %s is already pooled", c.hash)
	}
	s, created := m.senderFor(c.from, acct)
	if rerr := m.checkNonce(c.tx.Nonce, s.acct); rerr != nil {
		return rerr
	}
	nonce := c.tx.Nonce
	i, found := s.search(nonce)

	// Same nonce: a replacement, which must pay enough more.
	var old *entry
	if found {
		old = s.txs[i]
		min, ok := m.cfg.minReplacementFee(old.tx.Fee)
		if !ok || c.tx.Fee < min {
			return rejectf(FeeTooLowToReplace, "nonce %d is taken by %s with fee %d; a replacement needs at least %d",
				nonce, old.hash, old.tx.Fee, min)
		}
	}

	// drops are the sender's own transactions this admission removes.
	type drop struct {
		e      *entry
		reason Code
	}
	var drops []drop
	end := len(s.txs) // txs[end:] are displaced by the sender limit
	if old == nil && len(s.txs) >= m.cfg.MaxPerSender {
		top := s.txs[len(s.txs)-1]
		if nonce > top.tx.Nonce {
			return rejectf(SenderLimit, "sender %s already has %d pooled transactions", s.addr, len(s.txs))
		}
		end = len(s.txs) - 1
		drops = append(drops, drop{top, SenderLimit})
	}

	// Balance: this tx and every lower nonce must fit; higher nonces that
	// no longer fit make way, so the outcome does not depend on the order
	// in which a sender's transactions arrived.
	var prefix uint64
	for _, e := range s.txs[:i] {
		prefix += e.cost
	}
	need := prefix + c.cost
	if need < prefix || need > s.acct.Balance {
		return reject(InsufficientFunds, fmt.Errorf("%w: balance %d, needs %d with the sender's %d lower-nonce pooled transactions",
			ledger.ErrInsufficientFunds, s.acct.Balance, need, i))
	}
	left := s.acct.Balance - need
	after := i
	if old != nil {
		after++
	}
	for j := after; j < end; j++ {
		e := s.txs[j]
		if e.cost > left {
			for k := end - 1; k >= j; k-- { // highest nonce first
				drops = append(drops, drop{s.txs[k], InsufficientFunds})
			}
			break
		}
		left -= e.cost
	}

	// Pool caps: evict from other senders' tails.
	freedTxs, freedBytes := len(drops), 0
	for _, d := range drops {
		freedBytes += d.e.size
	}
	if old != nil {
		freedTxs++
		freedBytes += old.size
	}
	newcomer := rank{queued: nonce > s.nextNonce(), fee: c.tx.Fee, seq: m.seq + 1}
	evictees, ok := m.planEviction(s, m.count+1-freedTxs-m.cfg.MaxTxs, m.bytes+c.size-freedBytes-m.cfg.MaxBytes, newcomer)
	if !ok {
		return rejectf(MempoolFull, "pool holds %d transactions, %d bytes, and nothing it may evict pays less than fee %d",
			m.count, m.bytes, c.tx.Fee)
	}

	// Every check passed: apply.
	for _, e := range evictees {
		es := m.senders[e.from]
		m.removeLocked(es, e, Evicted)
		m.fixSender(es)
	}
	for _, d := range drops {
		m.removeLocked(s, d.e, d.reason)
	}
	if old != nil {
		m.removeLocked(s, old, Replaced)
	}
	m.seq++
	e := &entry{tx: c.tx, hash: c.hash, from: c.from, size: c.size, cost: c.cost, seq: m.seq, added: m.now()}
	i, _ = s.search(nonce)
	s.txs = slices.Insert(s.txs, i, e)
	s.cost += e.cost
	m.byHash[e.hash] = e
	m.link(e)
	m.count++
	m.bytes += e.size
	if created {
		m.senders[s.addr] = s
	}
	m.fixSender(s)
	m.emit(Event{Kind: EventAdmitted, Tx: e.tx, Hash: e.hash})
	return nil
}

// removeLocked takes e out of the pool and tells subscribers why. The
// caller fixes s afterwards (fixSender).
func (m *Mempool) removeLocked(s *sender, e *entry, reason Code) {
	i, ok := s.search(e.tx.Nonce)
	if !ok || s.txs[i] != e {
		panic("mempool: entry missing from its sender's list")
	}
	s.txs = slices.Delete(s.txs, i, i+1)
	s.cost -= e.cost
	delete(m.byHash, e.hash)
	m.unlink(e)
	m.count--
	m.bytes -= e.size
	m.emit(Event{Kind: EventRemoved, Tx: e.tx, Hash: e.hash, Reason: reason})
}

// reconcileLocked brings s to acct, read at the pool's height: nonces
// below the account's are dropped, then the highest nonces until the rest
// fit the balance. The caller fixes s afterwards.
func (m *Mempool) reconcileLocked(s *sender, acct ledger.Account) {
	s.acct, s.height, s.known = acct, m.height, true
	for len(s.txs) > 0 && s.txs[0].tx.Nonce < acct.Nonce {
		m.removeLocked(s, s.txs[0], NonceTooLow)
	}
	var sum uint64
	for j, e := range s.txs {
		if e.cost > acct.Balance-sum {
			for k := len(s.txs) - 1; k >= j; k-- {
				m.removeLocked(s, s.txs[k], InsufficientFunds)
			}
			break
		}
		sum += e.cost
	}
	s.settle()
}

// fixSender restores s's invariants after a change: its executable chain,
// its place in the eviction heap, and its removal once empty.
func (m *Mempool) fixSender(s *sender) {
	s.settle()
	if len(s.txs) == 0 {
		if s.heapIdx >= 0 {
			heap.Remove(&m.evict, s.heapIdx)
		}
		if m.senders[s.addr] == s {
			delete(m.senders, s.addr)
		}
		delete(m.unknown, s.addr)
		return
	}
	if s.heapIdx < 0 {
		heap.Push(&m.evict, s)
	} else {
		heap.Fix(&m.evict, s.heapIdx)
	}
}

func (m *Mempool) link(e *entry) {
	e.prev, e.next = m.newest, nil
	if m.newest != nil {
		m.newest.next = e
	} else {
		m.oldest = e
	}
	m.newest = e
}

func (m *Mempool) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		m.oldest = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		m.newest = e.prev
	}
	e.prev, e.next = nil, nil
}

// Has reports whether a transaction with hash h is pooled.
func (m *Mempool) Has(h crypto.Hash) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.byHash[h]
	return ok
}

// Get returns the pooled transaction with hash h. The caller must not
// modify it.
func (m *Mempool) Get(h crypto.Hash) (*ledger.Tx, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if e, ok := m.byHash[h]; ok {
		return e.tx, true
	}
	return nil, false
}

// Size returns how many transactions the pool holds and their total
// encoded size; never above Config.MaxTxs and Config.MaxBytes.
func (m *Mempool) Size() (txs int, bytes int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.count, m.bytes
}

// Height returns the height of the state the pool last checked against.
func (m *Mempool) Height() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.height
}

// NextNonce returns the nonce a wallet should use next for addr (the
// "pending nonce"): the one after the sender's highest pooled transaction
// that continues, without a gap, from the committed nonce. ok is false
// when the pool holds nothing for addr (or could not read its account);
// the wallet then uses the committed nonce.
func (m *Mempool) NextNonce(addr crypto.Address) (nonce uint64, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.senders[addr]
	if s == nil || !s.known {
		return 0, false
	}
	return s.nextNonce(), true
}
