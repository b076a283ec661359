package mempool

import (
	"sort"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// entry is one pooled transaction with what admission computed about it.
type entry struct {
	tx    *ledger.Tx // the pool's own copy; never modified
	hash  crypto.Hash
	from  crypto.Address
	size  int    // len(tx.Encode())
	cost  uint64 // tx.Cost(); ValidateBasic ruled out overflow
	seq   uint64 // arrival order, unique
	added time.Time

	// prev and next link every entry in arrival order, for TTL expiry.
	prev, next *entry
}

// sender holds one account's pooled transactions.
//
// Invariants, while the pool lock is free:
//   - txs is sorted by nonce, with no two the same;
//   - txs[:nexec] are the nonces acct.Nonce, acct.Nonce+1, ... (the
//     executable chain) and nexec is as long as possible, or 0 when !known;
//   - cost is the sum of txs' costs and never exceeds acct.Balance, so
//     every prefix of the chain is affordable;
//   - len(txs) <= MaxPerSender and every nonce is below acct.Nonce+NonceWindow;
//   - the sender is in the eviction heap (heapIdx >= 0) iff len(txs) > 0,
//     and in the pool's map iff it is in the heap.
//
// acct is the account as of height. A sender that sent nothing in the
// blocks since then has the same nonce and at least that balance (only its
// own transfers lower it), so a stale acct is safe for Reap; Add re-reads
// it before admitting, so incoming funds are seen.
type sender struct {
	addr    crypto.Address
	acct    ledger.Account
	height  uint64
	known   bool // false after a failed state read: nothing executable until re-read
	txs     []*entry
	nexec   int
	cost    uint64
	heapIdx int
}

func newSender(addr crypto.Address, acct ledger.Account, height uint64) *sender {
	return &sender{addr: addr, acct: acct, height: height, known: true, heapIdx: -1}
}

// search returns the index of nonce in txs, or where it would go.
func (s *sender) search(nonce uint64) (int, bool) {
	i := sort.Search(len(s.txs), func(i int) bool { return s.txs[i].tx.Nonce >= nonce })
	return i, i < len(s.txs) && s.txs[i].tx.Nonce == nonce
}

// settle recomputes nexec.
func (s *sender) settle() {
	n := 0
	if s.known {
		for n < len(s.txs) && s.txs[n].tx.Nonce == s.acct.Nonce+uint64(n) {
			n++
		}
	}
	s.nexec = n
}

// nextNonce is the nonce after the executable chain.
func (s *sender) nextNonce() uint64 { return s.acct.Nonce + uint64(s.nexec) }

// rank orders transactions for eviction: a queued (not yet executable)
// one goes before any executable one, then the lower fee, then the later
// arrival.
type rank struct {
	queued bool
	fee    uint64
	seq    uint64
}

// worse reports whether a is evicted before b.
func worse(a, b rank) bool {
	if a.queued != b.queued {
		return a.queued
	}
	if a.fee != b.fee {
		return a.fee < b.fee
	}
	return a.seq > b.seq
}

// rankAt is the eviction rank of txs[i].
func (s *sender) rankAt(i int) rank {
	e := s.txs[i]
	return rank{queued: i >= s.nexec, fee: e.tx.Fee, seq: e.seq}
}

// tailRank is the rank of the sender's highest nonce, its only eviction
// candidate: evicting anything lower would cut its chain.
func (s *sender) tailRank() rank { return s.rankAt(len(s.txs) - 1) }
