package consensus

import (
	"fmt"
	"testing"

	"github.com/ledgerd/ledgerd/internal/testkit/testseed"
	"github.com/ledgerd/ledgerd/ledger"
)

// TestProposerEqualPowersRotateInOrder pins the order the scripted tests
// rely on: with equal powers, v0, v1, ... across heights and rounds,
// proposer(h, r) = v((h-1+r) mod n).
func TestProposerEqualPowersRotateInOrder(t *testing.T) {
	_, vals := testKeys(4)
	sets := Static(vals)
	for h := uint64(1); h <= 12; h++ {
		prio, err := sets.PrioritiesAt(h)
		if err != nil {
			t.Fatal(err)
		}
		s := NewProposerSelector(prio)
		for r := uint32(0); r < 8; r++ {
			if got, want := s.Index(r), int((h-1+uint64(r))%4); got != want {
				t.Fatalf("proposer(%d, %d) = v%d, want v%d", h, r, got, want)
			}
		}
	}
}

// TestSelectorRemembersRounds: asking rounds in any order gives what a
// fresh run of the increments gives, including a far round asked first.
func TestSelectorRemembersRounds(t *testing.T) {
	_, vals := testKeysPowers([]uint64{7, 3, 11, 1, 5})
	prio := ledger.GenesisPriorities(vals).Next(vals).Next(vals)
	want := make([]int, 3000)
	rounds := prio.Rounds()
	for r := range want {
		want[r] = rounds.Next()
	}
	s := NewProposerSelector(prio)
	for _, r := range []uint32{2999, 0, 17, 5, 2998, 1000, 1} {
		if got := s.Index(r); got != want[r] {
			t.Fatalf("round %d: v%d, want v%d", r, got, want[r])
		}
		if got := prio.Proposer(r); got != want[r] {
			t.Fatalf("ProposerPriorities.Proposer(%d) = v%d, want v%d", r, got, want[r])
		}
	}
	if got := s.Proposer(5); got != vals.Get(want[5]).Address() {
		t.Fatalf("Proposer(5) = %s", ShortAddr(got))
	}
}

// TestScheduleMatchesHeightByHeight asks a Schedule for heights in a
// random order, across its checkpoints, and compares every answer with
// the priorities carried height by height.
func TestScheduleMatchesHeightByHeight(t *testing.T) {
	r, seed := testseed.Rand(t)
	_, a := testKeysPowers([]uint64{3, 1, 4, 1})
	_, b := testKeysPowers([]uint64{2, 7, 1, 8, 2})
	at := func(h uint64) (*ledger.ValidatorSet, error) {
		if h%700 < 350 {
			return a, nil
		}
		return b, nil
	}
	const top = 3*scheduleCheckpoint + 10
	want := make([]*ledger.ProposerPriorities, top+1)
	want[1] = ledger.GenesisPriorities(a)
	for h := uint64(2); h <= top; h++ {
		vs, _ := at(h)
		want[h] = want[h-1].Next(vs)
	}
	sets := Schedule(at)
	for k := 0; k < 200; k++ {
		h := 1 + r.Uint64N(top)
		got, err := sets.PrioritiesAt(h)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want[h]) {
			t.Fatalf("seed %d: height %d: %v, want %v", seed, h, got.Priorities(), want[h].Priorities())
		}
	}
	if _, err := sets.PrioritiesAt(0); err == nil {
		t.Fatal("priorities of height 0")
	}
}

// BenchmarkProposerSelection measures naming the proposers of rounds 0
// to 10 of one height of 100 validators with unequal powers, from the
// height's priorities (a fresh selector each time, so every increment is
// paid), and carrying the priorities one height on.
func BenchmarkProposerSelection(b *testing.B) {
	powers := make([]uint64, 100)
	for i := range powers {
		powers[i] = uint64(1 + i*i%97)
	}
	_, vals := testKeysPowers(powers)
	prio := ledger.GenesisPriorities(vals)
	for range 50 {
		prio = prio.Next(vals)
	}
	for _, rounds := range []uint32{1, 11} {
		b.Run(fmt.Sprintf("rounds=%d", rounds), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s := NewProposerSelector(prio)
				for r := uint32(0); r < rounds; r++ {
					s.Index(r)
				}
			}
		})
	}
	b.Run("round=10", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			NewProposerSelector(prio).Index(10)
		}
	})
	b.Run("next-height", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			prio.Next(vals)
		}
	})
	b.Run("round=1048576", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			NewProposerSelector(prio).Index(ledger.MaxRound)
		}
	})
}
