package node

import (
	"sync"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// maxPendingEvidence bounds the evidence a node holds waiting for a block.
const maxPendingEvidence = 1000

// evidencePool holds verified equivocation evidence until a committed
// block carries it. It is safe for concurrent use (gossip adds, the
// driver reads and prunes).
type evidencePool struct {
	mu    sync.Mutex
	order []crypto.Hash
	byKey map[crypto.Hash]*ledger.Evidence
}

func newEvidencePool() *evidencePool {
	return &evidencePool{byKey: make(map[crypto.Hash]*ledger.Evidence)}
}

// add keeps ev if it is new and there is room; it reports whether it was
// added. The caller has verified ev.
func (p *evidencePool) add(ev *ledger.Evidence) bool {
	k := ev.Key()
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.byKey[k]; ok || len(p.order) >= maxPendingEvidence {
		return false
	}
	p.byKey[k] = ev
	p.order = append(p.order, k)
	return true
}

// pending returns up to limit pieces of evidence, oldest first, that a
// block of height h may carry: of an earlier height (ledger.Evidence.
// IncludableAt) and not recorded as committed in st. Evidence of height h
// or above stays in the pool until the chain has passed its height.
func (p *evidencePool) pending(limit int, h uint64, st ledger.StateReader) []*ledger.Evidence {
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

// committed forgets the evidence a committed block carried.
func (p *evidencePool) committed(evs []*ledger.Evidence) {
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

// size is the number of pieces held.
func (p *evidencePool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.order)
}
