package consensus

import (
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
)

// TestPacerCarriesFailedRounds checks the carry rule: round 0 lowers the
// carry, round 1 leaves it, round r >= 2 raises it by r-1, up to
// MaxPaceCarry, and durations are those of round + carry.
func TestPacerCarriesFailedRounds(t *testing.T) {
	p := ledger.DefaultConsensusParams()
	var pc Pacer
	steps := []struct {
		decided uint32
		carry   uint32
	}{
		{0, 0}, // nothing to lower
		{1, 0}, // one failed round: a lagging proposer costs the next height nothing
		{3, 2},
		{2, 3},
		{1, 3},
		{0, 2},
		{0, 1},
		{0, 0},
		{40, MaxPaceCarry},
		{5, MaxPaceCarry},
		{0, MaxPaceCarry - 1},
	}
	for i, s := range steps {
		pc.Decided(s.decided)
		if pc.Carry() != s.carry {
			t.Fatalf("step %d: decided at round %d: carry %d, want %d", i, s.decided, pc.Carry(), s.carry)
		}
		for _, k := range []TimeoutKind{TimeoutPropose, TimeoutPrevote, TimeoutPrecommit} {
			for _, r := range []uint32{0, 3} {
				if got, want := pc.Duration(p, k, r), TimeoutDuration(p, k, r+s.carry); got != want {
					t.Fatalf("step %d: %s timeout of round %d: %s, want %s", i, k, r, got, want)
				}
			}
		}
	}
	if d := pc.Duration(p, TimeoutPropose, 0); d > 6*time.Second {
		t.Fatalf("the carried first propose timeout is %s, more than the documented 6 s bound", d)
	}
}
