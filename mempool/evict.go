package mempool

import "container/heap"

// evictHeap holds every sender with pooled transactions, the one whose
// highest-nonce transaction should be evicted first on top.
type evictHeap []*sender

func (h evictHeap) Len() int           { return len(h) }
func (h evictHeap) Less(i, j int) bool { return worse(h[i].tailRank(), h[j].tailRank()) }
func (h evictHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *evictHeap) Push(x any) {
	s := x.(*sender)
	s.heapIdx = len(*h)
	*h = append(*h, s)
}
func (h *evictHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	s.heapIdx = -1
	*h = old[:len(old)-1]
	return s
}

// evictCand is a possible eviction: the transaction depth places below
// the top of s's nonce list. idx is s's index in the eviction heap when
// depth is 0, else -1.
type evictCand struct {
	s     *sender
	depth int
	idx   int
	r     rank
}

type candHeap []evictCand

func (h candHeap) Len() int           { return len(h) }
func (h candHeap) Less(i, j int) bool { return worse(h[i].r, h[j].r) }
func (h candHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)        { *h = append(*h, x.(evictCand)) }
func (h *candHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// planEviction chooses transactions to evict, worst first, until needTxs
// more transactions and needBytes more bytes fit. Only a sender's highest
// remaining nonce is ever a candidate, so no sender's chain gets a gap;
// own (the sender of the arriving transaction) is never touched. It fails,
// choosing nothing, if that would take a transaction not worse than
// newcomer. The pool is not modified: the heap is walked in order through
// a frontier of candidates, as one walks a binary heap without popping.
func (m *Mempool) planEviction(own *sender, needTxs, needBytes int, newcomer rank) ([]*entry, bool) {
	if needTxs <= 0 && needBytes <= 0 {
		return nil, true
	}
	if len(m.evict) == 0 {
		return nil, false
	}
	var out []*entry
	frontier := candHeap{m.heapCand(0)}
	for needTxs > 0 || needBytes > 0 {
		if len(frontier) == 0 {
			return nil, false
		}
		c := heap.Pop(&frontier).(evictCand)
		if c.idx >= 0 {
			for _, child := range [2]int{2*c.idx + 1, 2*c.idx + 2} {
				if child < len(m.evict) {
					heap.Push(&frontier, m.heapCand(child))
				}
			}
		}
		if c.s == own {
			continue
		}
		if !worse(c.r, newcomer) {
			return nil, false // every remaining candidate ranks at least as high
		}
		i := len(c.s.txs) - 1 - c.depth
		e := c.s.txs[i]
		out = append(out, e)
		needTxs--
		needBytes -= e.size
		if i > 0 {
			heap.Push(&frontier, evictCand{s: c.s, depth: c.depth + 1, idx: -1, r: c.s.rankAt(i - 1)})
		}
	}
	return out, true
}

func (m *Mempool) heapCand(i int) evictCand {
	s := m.evict[i]
	return evictCand{s: s, idx: i, r: s.tailRank()}
}
