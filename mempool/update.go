package mempool

import (
	"container/heap"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// Update tells the pool that the block at height committed with the
// transactions committed and produced state. Call it for every block, in
// order, before the next Reap; committed must hold every transaction
// committed since the previous Update (a jump of several heights is
// accepted when committed covers them all, and then re-reads every sender).
//
// It removes the committed transactions (reason Committed), re-reads the
// accounts of the pool's senders that appear in committed and re-checks
// their transactions (nonce now too low: NonceTooLow; no longer
// affordable: InsufficientFunds, highest nonces first), which promotes
// queued transactions whose gap a commit filled, and expires transactions
// older than the TTL (Expired). Other senders' nonces cannot have moved and
// their balances can only have grown; Add re-reads them when they next send.
//
// The cost is O(committed + pooled txs of their senders + expired) under
// the lock, with address hashing and state reads done before taking it; signatures
// are not checked again. state must stay readable until the next Update.
// A failed read leaves that sender's transactions pooled but out of Reap
// until a later Add or Update reads it; the first such error is returned.
// An Update for a height the pool already has is refused.
func (m *Mempool) Update(height uint64, committed []*ledger.Tx, state ledger.StateReader) error {
	if state == nil {
		return fmt.Errorf("mempool: update to height %d: nil state", height)
	}
	m.updateMu.Lock()
	defer m.updateMu.Unlock()

	// A committed tx is found by sender and nonce and confirmed by content
	// (equal content, equal hash), so only one address per sender is hashed.
	senders := make([]crypto.Address, len(committed))
	from := make(map[crypto.Address]struct{})
	byKey := make(map[crypto.PubKey]crypto.Address)
	for i, tx := range committed {
		a, ok := byKey[tx.From]
		if !ok {
			a = tx.Sender()
			byKey[tx.From] = a
			from[a] = struct{}{}
		}
		senders[i] = a
	}

	// Which senders to re-read: the pooled ones among committed's senders,
	// those whose last read failed, and everyone after a jump.
	m.mu.RLock()
	prev := m.height
	var toRead []crypto.Address
	if height > prev+1 {
		for a := range m.senders {
			toRead = append(toRead, a)
		}
	} else {
		for a := range from {
			if _, ok := m.senders[a]; ok {
				toRead = append(toRead, a)
			}
		}
		for a := range m.unknown {
			if _, dup := from[a]; !dup {
				toRead = append(toRead, a)
			}
		}
	}
	m.mu.RUnlock()
	if height <= prev {
		return fmt.Errorf("mempool: update to height %d, already at %d", height, prev)
	}

	accts := make(map[crypto.Address]ledger.Account, len(toRead))
	var firstErr error
	for _, a := range toRead {
		acct, err := state.Account(a)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("mempool: update to height %d: read account %s: %w", height, a, err)
			}
			continue
		}
		accts[a] = acct
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.height, m.state = height, state
	// Each sender about to change leaves the eviction heap first, while the
	// heap is still consistent, and returns in fixSender at the end.
	touched := make(map[*sender]struct{})
	touch := func(s *sender) {
		if _, ok := touched[s]; ok {
			return
		}
		touched[s] = struct{}{}
		if s.heapIdx >= 0 {
			heap.Remove(&m.evict, s.heapIdx)
		}
	}
	for i, tx := range committed {
		s := m.senders[senders[i]]
		if s == nil {
			continue
		}
		if j, ok := s.search(tx.Nonce); ok && *s.txs[j].tx == *tx {
			touch(s)
			m.removeLocked(s, s.txs[j], Committed)
		}
	}
	// Senders in committed, or due a re-read, that got no fresh account
	// (a failed read, or their first transaction was admitted while this
	// Update was reading): their nonce may have moved, so nothing of
	// theirs is executable until they are read again.
	mark := func(a crypto.Address) {
		if _, ok := accts[a]; ok {
			return
		}
		if s := m.senders[a]; s != nil {
			touch(s)
			s.known = false
			m.unknown[a] = struct{}{}
		}
	}
	for a := range from {
		mark(a)
	}
	for _, a := range toRead {
		mark(a)
	}
	for a, acct := range accts {
		if s := m.senders[a]; s != nil {
			touch(s)
			m.reconcileLocked(s, acct)
			delete(m.unknown, a)
		}
	}
	m.expireLocked(touch)
	for s := range touched {
		m.fixSender(s)
	}
	return firstErr
}

// expireLocked removes every transaction admitted TTL or longer ago.
// touch is called on a sender before it changes.
func (m *Mempool) expireLocked(touch func(*sender)) {
	if m.cfg.TTL <= 0 {
		return
	}
	cutoff := m.now().Add(-m.cfg.TTL)
	for e := m.oldest; e != nil && !e.added.After(cutoff); e = m.oldest {
		s := m.senders[e.from]
		touch(s)
		m.removeLocked(s, e, Expired)
	}
}
