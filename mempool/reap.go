package mempool

import (
	"container/heap"

	"github.com/ledgerd/ledgerd/ledger"
)

// Reap returns transactions for the next block, for the proposer:
//
//   - executed in the order returned on the state passed to the last
//     Update (or New), every one is valid: each sender's transactions are
//     consecutive nonces starting at its committed nonce, and together
//     they fit its balance;
//   - across senders, the sender whose next transaction pays the highest
//     fee goes first, ties to the earlier arrival (each sender's chain is
//     merged by the fee of its next nonce, so a cheap nonce delays the
//     dearer ones behind it);
//   - at most maxTxs transactions whose encodings total at most maxBytes
//     (a sender whose next transaction does not fit is skipped, with the
//     rest of its chain, and smaller ones from others may still fill in).
//
// maxBytes counts transaction encodings only: the proposer subtracts the
// block's other parts (header, evidence, last commit, counts) from
// ConsensusParams.MaxBlockBytes. Reap does not modify the pool; the caller
// must not modify the returned transactions.
func (m *Mempool) Reap(maxBytes, maxTxs uint64) []*ledger.Tx {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.reapLocked(maxBytes, maxTxs)
}

// headHeap orders senders by their next unreaped transaction.
type head struct {
	s *sender
	i int // next index into s.txs
}

type headHeap []head

func (h headHeap) Len() int { return len(h) }
func (h headHeap) Less(i, j int) bool {
	a, b := h[i].s.txs[h[i].i], h[j].s.txs[h[j].i]
	if a.tx.Fee != b.tx.Fee {
		return a.tx.Fee > b.tx.Fee
	}
	return a.seq < b.seq
}
func (h headHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *headHeap) Push(x any)   { *h = append(*h, x.(head)) }
func (h *headHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (m *Mempool) reapLocked(maxBytes, maxTxs uint64) []*ledger.Tx {
	if maxTxs == 0 || maxBytes == 0 {
		return nil
	}
	h := make(headHeap, 0, len(m.senders))
	for _, s := range m.senders {
		if s.nexec > 0 {
			h = append(h, head{s: s})
		}
	}
	heap.Init(&h)
	n := uint64(m.count)
	if maxTxs < n {
		n = maxTxs
	}
	out := make([]*ledger.Tx, 0, n)
	var used uint64
	for len(h) > 0 && uint64(len(out)) < maxTxs {
		top := &h[0]
		e := top.s.txs[top.i]
		if used+uint64(e.size) > maxBytes {
			heap.Pop(&h) // the rest of this chain needs this one first
			continue
		}
		out = append(out, e.tx)
		used += uint64(e.size)
		top.i++
		if top.i < top.s.nexec {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return out
}

// Pending lists up to limit pooled transactions (all when limit <= 0), for
// the RPC: the executable ones first, in the order Reap would take them,
// then the queued ones (waiting for a lower nonce) in arrival order.
func (m *Mempool) Pending(limit int) []*ledger.Tx {
	m.mu.RLock()
	defer m.mu.RUnlock()
	max := uint64(m.count)
	if limit > 0 && uint64(limit) < max {
		max = uint64(limit)
	}
	out := m.reapLocked(^uint64(0), max)
	for e := m.oldest; e != nil && uint64(len(out)) < max; e = e.next {
		s := m.senders[e.from]
		if i, _ := s.search(e.tx.Nonce); i >= s.nexec {
			out = append(out, e.tx)
		}
	}
	return out
}
