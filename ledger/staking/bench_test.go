package staking

import (
	"testing"
)

// benchChain is a genesis of n validators of power 10, all active.
func benchChain(b *testing.B, n int) (*chain, BlockInfo) {
	p := DefaultParams()
	p.MaxValidators = uint32(n)
	vals := make([]GenesisValidator, n)
	for i := range vals {
		vals[i] = gv(b, i, 10)
	}
	c := newChain(b, p, vals...)
	return c, c.blockInfo(2)
}

// BenchmarkEndBlock100Signing is a block's EndBlock and ActiveSet with 100
// validators that all signed: one read per validator (its chunk of missed
// bits) plus the active-set scan, and no write.
func BenchmarkEndBlock100Signing(b *testing.B) {
	c, info := benchChain(b, 100)
	s := New(c.store, c.p)
	if _, err := s.EndBlock(info); err != nil {
		b.Fatal(err)
	}
	if _, _, err := s.ActiveSet(); err != nil {
		b.Fatal(err)
	}
	if n := len(s.Changes()); n != 0 {
		b.Fatalf("a block all 100 validators signed staged %d writes", n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		info.Height = uint64(2 + i)
		s := New(c.store, c.p)
		if _, err := s.EndBlock(info); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.ActiveSet(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEndBlock100OneMissing is the same with one validator missing
// every block: its bit flips at most once per window, its signing info
// is read every block.
func BenchmarkEndBlock100OneMissing(b *testing.B) {
	c, info := benchChain(b, 100)
	info.Signed[17] = false
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		info.Height = uint64(2 + i%500) // within the first window: no jail
		s := New(c.store, c.p)
		if _, err := s.EndBlock(info); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.ActiveSet(); err != nil {
			b.Fatal(err)
		}
	}
}
