// Package evidence holds verified equivocation evidence until a committed
// block carries it: the one pool the node and the simulator use.
package evidence

import (
	"sync"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// MaxPending bounds the evidence a pool holds waiting for a block.
const MaxPending = 1000

// Pool holds verified evidence in arrival order. It is safe for concurrent
// use (gossip adds, the driver reads and prunes).
type Pool struct {
	mu    sync.Mutex
	order []crypto.Hash
	byKey map[crypto.Hash]*ledger.Evidence
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{byKey: make(map[crypto.Hash]*ledger.Evidence)} }

// Add keeps ev if it is new and there is room; it reports whether it was
// added. The caller has verified ev.
func (p *Pool) Add(ev *ledger.Evidence) bool {
	k := ev.Key()
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.byKey[k]; ok || len(p.order) >= MaxPending {
		return false
	}
	p.byKey[k] = ev
	p.order = append(p.order, k)
	return true
}

// Has reports whether the pool holds the evidence with key k.
func (p *Pool) Has(k crypto.Hash) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.byKey[k]
	return ok
}

// Committed is the part of a ledger.StateReader the pool reads: which
// evidence the chain already punished.
type Committed interface {
	EvidenceCommitted(key crypto.Hash) (bool, error)
}

// Pending returns up to limit pieces of evidence, oldest first, that a
// block of height h may carry: of an earlier height (ledger.Evidence.
// IncludableAt) and not recorded as committed in st. Evidence of height h
// or above stays in the pool until the chain has passed its height.
func (p *Pool) Pending(limit int, h uint64, st Committed) []*ledger.Evidence {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*ledger.Evidence
	for _, k := range p.order {
		if len(out) >= limit {
			break
		}
		ev := p.byKey[k]
		if !ev.IncludableAt(h) {
			continue
		}
		if done, err := st.EvidenceCommitted(k); err == nil && !done {
			out = append(out, ev)
		}
	}
	return out
}

// All returns every piece held that st does not record as committed,
// oldest first, whatever its height: what a node offers its peers.
func (p *Pool) All(st Committed) []*ledger.Evidence {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*ledger.Evidence
	for _, k := range p.order {
		if done, err := st.EvidenceCommitted(k); err == nil && !done {
			out = append(out, p.byKey[k])
		}
	}
	return out
}

// Committed forgets the evidence a committed block carried.
func (p *Pool) Committed(evs []*ledger.Evidence) {
	if len(evs) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range evs {
		delete(p.byKey, ev.Key())
	}
	kept := p.order[:0]
	for _, k := range p.order {
		if _, ok := p.byKey[k]; ok {
			kept = append(kept, k)
		}
	}
	p.order = kept
}

// Size is the number of pieces held.
func (p *Pool) Size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.order)
}
