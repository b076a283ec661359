package consensus

import (
	"math"
	"math/big"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
)

// naiveSlots lists the first n slots of the Sainte-Laguë sequence by
// sorting every slot time (2j+1)/(2w_i) exactly, ties to the lower index.
func naiveSlots(weights []uint64, n int) []int {
	type slot struct {
		t *big.Rat
		i int
	}
	var all []slot
	for i, w := range weights {
		for j := 0; j < n; j++ {
			all = append(all, slot{big.NewRat(int64(2*j+1), int64(2*w)), i})
		}
	}
	sort.Slice(all, func(a, b int) bool {
		if c := all[a].t.Cmp(all[b].t); c != 0 {
			return c < 0
		}
		return all[a].i < all[b].i
	})
	out := make([]int, n)
	for k := range out {
		out[k] = all[k].i
	}
	return out
}

func selectorFor(powers []uint64) *ProposerSelector {
	_, vals := testKeysPowers(powers)
	return NewProposerSelector(vals)
}

// TestProposerMatchesReferenceOrder checks the direct O(n log n)
// computation against an exact sort of all slots, for random small sets,
// over more than two full cycles.
func TestProposerMatchesReferenceOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 40; trial++ {
		n := 1 + r.IntN(7)
		powers := make([]uint64, n)
		for i := range powers {
			powers[i] = 1 + r.Uint64N(12)
		}
		s := selectorFor(powers)
		ref := naiveSlots(s.weights, int(2*s.total+5))
		for k, want := range ref {
			if got := s.slot(uint64(k) % s.total); got != want {
				t.Fatalf("weights %v slot %d: got validator %d, want %d", s.weights, k, got, want)
			}
		}
	}
}

// TestProposerEqualPowersRotateInOrder pins the order the scripted tests
// rely on: with equal powers, v0, v1, ... across heights and rounds.
func TestProposerEqualPowersRotateInOrder(t *testing.T) {
	s := selectorFor([]uint64{1, 1, 1, 1})
	for h := uint64(1); h <= 8; h++ {
		for r := uint32(0); r < 8; r++ {
			if got, want := s.Index(h, r), int((h-1+uint64(r))%4); got != want {
				t.Fatalf("proposer(%d, %d) = v%d, want v%d", h, r, got, want)
			}
		}
	}
}

// TestProposerIsFairOverEveryCycle checks that in any window of T
// consecutive (height, round) slots every validator proposes exactly as
// often as its power, and that no validator waits much longer than its
// fair spacing T/w between two turns.
func TestProposerIsFairOverEveryCycle(t *testing.T) {
	for _, powers := range [][]uint64{{1}, {3, 1}, {10, 20, 30, 40}, {1, 1, 1, 97}, {7, 11, 13, 17, 19, 23}} {
		s := selectorFor(powers)
		for _, start := range []uint64{1, 2, 1000003, 1 << 40} {
			counts := make([]uint64, len(powers))
			last := make([]int64, len(powers))
			for i := range last {
				last[i] = -1
			}
			maxGap := make([]int64, len(powers))
			for k := uint64(0); k < 2*s.total; k++ {
				i := s.Index(start+k, 0)
				if k < s.total {
					counts[i]++
				}
				if last[i] >= 0 && int64(k)-last[i] > maxGap[i] {
					maxGap[i] = int64(k) - last[i]
				}
				last[i] = int64(k)
			}
			for i, w := range s.weights {
				if counts[i] != w {
					t.Errorf("powers %v from height %d: validator %d proposed %d of %d slots, want %d", powers, start, i, counts[i], s.total, w)
				}
				if fair := float64(s.total) / float64(w); float64(maxGap[i]) > fair+float64(len(powers))+1 {
					t.Errorf("powers %v: validator %d waited %d slots, fair spacing %.1f", powers, i, maxGap[i], fair)
				}
			}
		}
	}
}

// TestProposerIsProportionalAcrossHeightsAndRounds runs a chain whose
// heights take a random number of rounds and counts who proposed each
// round: every validator's share is its power share within 2%.
func TestProposerIsProportionalAcrossHeightsAndRounds(t *testing.T) {
	powers := []uint64{50, 25, 15, 7, 3}
	s := selectorFor(powers)
	r := rand.New(rand.NewPCG(7, 7))
	counts := make([]float64, len(powers))
	var rounds float64
	for h := uint64(1); h <= 20000; h++ {
		n := uint32(1)
		for r.IntN(4) == 0 { // a quarter of rounds fail
			n++
		}
		for round := uint32(0); round < n; round++ {
			counts[s.Index(h, round)]++
			rounds++
		}
	}
	for i, w := range s.weights {
		want := float64(w) / float64(s.total)
		if got := counts[i] / rounds; math.Abs(got-want) > 0.02 {
			t.Errorf("validator %d (power %d): proposed %.3f of rounds, want %.3f", i, w, got, want)
		}
	}
}

// TestProposerHandlesHugePowers uses powers near MaxTotalVotingPower,
// where the 128-bit arithmetic matters.
func TestProposerHandlesHugePowers(t *testing.T) {
	big := uint64(ledger.MaxTotalVotingPower / 4)
	s := selectorFor([]uint64{big, big - 1, big / 3, 1})
	seen := make([]int, 4)
	for k := uint64(0); k < 4000; k++ {
		seen[s.Index(1+k*977, uint32(k))]++
	}
	if seen[0] == 0 || seen[1] == 0 || seen[2] == 0 {
		t.Fatalf("huge powers: proposer counts %v", seen)
	}
	// Far into the cycle, the validator of power 1 holds exactly one slot.
	ones := 0
	for k := uint64(0); k < 64; k++ {
		if s.slot(s.total/2-32+k) == 3 {
			ones++
		}
	}
	if ones != 1 {
		t.Fatalf("power-1 validator holds %d slots around mid-cycle, want 1", ones)
	}
}
