package evidence

import (
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// committedSet knows which evidence is committed.
type committedSet map[crypto.Hash]bool

func (c committedSet) EvidenceCommitted(k crypto.Hash) (bool, error) { return c[k], nil }

// piece is an (unsigned) equivocation at height h; the pool does not
// verify, its callers do.
// (The key of a piece is the offence: validator, height, round, type.)
func piece(h uint64, r uint32) *ledger.Evidence {
	a := &ledger.Vote{Type: ledger.Prevote, Height: h, Round: r, BlockID: crypto.Sum([]byte("a"))}
	b := &ledger.Vote{Type: ledger.Prevote, Height: h, Round: r, BlockID: crypto.Sum([]byte("b"))}
	return ledger.NewEvidence(a, b)
}

// TestPoolKeepsWhatABlockMayCarry: Pending gives the oldest pieces of
// earlier heights that are not committed, up to the limit; Committed
// forgets what a block carried; All offers everything not committed.
func TestPoolKeepsWhatABlockMayCarry(t *testing.T) {
	p := NewPool()
	e1, e2, e3, e5 := piece(1, 0), piece(2, 0), piece(3, 0), piece(5, 0)
	for _, e := range []*ledger.Evidence{e1, e2, e3, e5} {
		if !p.Add(e) {
			t.Fatalf("new evidence of height %d not added", e.VoteA.Height)
		}
	}
	if p.Add(piece(2, 0)) {
		t.Fatal("the same evidence was added twice")
	}
	committed := committedSet{e2.Key(): true}
	got := p.Pending(10, 4, committed)
	if len(got) != 2 || got[0] != e1 || got[1] != e3 {
		t.Fatalf("pending for a block of height 4: %v, want heights 1 and 3 (2 is committed, 5 is ahead)", heights(got))
	}
	if got := p.Pending(1, 4, committed); len(got) != 1 || got[0] != e1 {
		t.Fatalf("pending with limit 1: %v, want the oldest (height 1)", heights(got))
	}
	if got := p.All(committed); len(got) != 3 {
		t.Fatalf("all not committed: %v, want heights 1, 3, 5", heights(got))
	}
	p.Committed([]*ledger.Evidence{e1, e3})
	if p.Size() != 2 || p.Has(e1.Key()) || !p.Has(e5.Key()) {
		t.Fatalf("after a block carried heights 1 and 3: size %d, has 1: %v, has 5: %v", p.Size(), p.Has(e1.Key()), p.Has(e5.Key()))
	}
}

// TestPoolIsBounded: beyond MaxPending pieces the pool refuses more.
func TestPoolIsBounded(t *testing.T) {
	p := NewPool()
	for i := range MaxPending {
		if !p.Add(piece(1, uint32(i))) {
			t.Fatalf("piece %d refused below the bound", i)
		}
	}
	if p.Add(piece(1, MaxPending)) || p.Size() != MaxPending {
		t.Fatalf("the pool holds %d pieces, the bound is %d", p.Size(), MaxPending)
	}
}

func heights(evs []*ledger.Evidence) []uint64 {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.VoteA.Height)
	}
	return out
}
