package ledger

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/internal/testkit/testseed"
)

// fullSet returns a set of n validators whose powers add up to exactly
// MaxTotalVotingPower, split at random.
func fullSet(t testing.TB, r *rand.Rand, n int) *ValidatorSet {
	t.Helper()
	vals := make([]Validator, n)
	left := uint64(MaxTotalVotingPower)
	for i := range vals {
		var k crypto.PubKey
		for j := range k {
			k[j] = byte(r.Uint32())
		}
		p := left
		if i < n-1 {
			p = max(1, min(left-uint64(n-1-i), r.Uint64N(left/2+1)))
		}
		left -= p
		vals[i] = Validator{PubKey: k, Power: p}
	}
	vs, err := NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	if vs.TotalPower() != MaxTotalVotingPower {
		t.Fatalf("total %d", vs.TotalPower())
	}
	return vs
}

// TestPrioritiesAtMaxTotalPowerNeverSaturate runs sets whose total power
// is MaxTotalVotingPower through changes that replace the whole set (so
// that newcomers start at -1.125 T' with T' = 2 * MaxTotalVotingPower,
// the extreme) and through many rounds, and checks that no priority
// comes near the int64 range: stored priorities within ±2T, and within
// ±3T at every round, where int64 holds ±8T.
func TestPrioritiesAtMaxTotalPowerNeverSaturate(t *testing.T) {
	r, seed := testseed.Rand(t)
	const total = int64(MaxTotalVotingPower)
	check := func(what string, p []int64, limit int64) {
		t.Helper()
		for i, v := range p {
			if v > limit || v < -limit {
				t.Fatalf("seed %d, %s: priority %d of member %d is outside ±%d", seed, what, v, i, limit)
			}
		}
	}
	for trial := 0; trial < 40; trial++ {
		n := 1 + r.IntN(30)
		if trial == 0 {
			n = MaxValidators
		}
		vs := fullSet(t, r, n)
		p := GenesisPriorities(vs)
		for h := 0; h < 60; h++ {
			switch r.IntN(3) {
			case 0: // the whole set leaves, as many join
				vs = fullSet(t, r, 1+r.IntN(30))
			case 1: // powers move, the members stay
				vals := vs.Validators()
				for i := range vals {
					vals[i].Power = 1
				}
				vals[r.IntN(len(vals))].Power = MaxTotalVotingPower - uint64(len(vals)-1)
				var err error
				if vs, err = NewValidatorSet(vals); err != nil {
					t.Fatal(err)
				}
			}
			p = p.Next(vs)
			check("stored", p.prio, 2*total)
			if r.IntN(10) == 0 {
				rounds := p.Rounds()
				for k := 0; k < 2000; k++ {
					rounds.Next()
					check("round", rounds.prio, 3*total)
				}
			}
		}
	}
}

// TestFloorMeanIsExact compares floorMean with big-integer arithmetic at
// the extremes its callers allow (|v| <= 2^62, up to MaxValidators
// values), where a plain int64 sum would overflow.
func TestFloorMeanIsExact(t *testing.T) {
	r, seed := testseed.Rand(t)
	for trial := 0; trial < 300; trial++ {
		n := 1 + r.IntN(MaxValidators)
		p := make([]int64, n)
		for i := range p {
			switch r.IntN(4) {
			case 0:
				p[i] = 1 << 62
			case 1:
				p[i] = -(1 << 62)
			default:
				p[i] = r.Int64N(1<<63-1) >> 1 * (1 - 2*int64(r.IntN(2)))
			}
		}
		sum := new(big.Int)
		for _, v := range p {
			sum.Add(sum, big.NewInt(v))
		}
		want := new(big.Int)
		want.Div(sum, big.NewInt(int64(n))) // Euclidean: the floor for a positive divisor
		if got := floorMean(p); got != want.Int64() {
			t.Fatalf("seed %d: floorMean of %d values = %d, want %d", seed, n, got, want.Int64())
		}
	}
}

// TestNormalizeCentresExactly: whichever way normalize sums (a plain
// int64 sum for priorities within ±2^52, floorMean beyond), it subtracts
// the floor of the exact mean.
func TestNormalizeCentresExactly(t *testing.T) {
	r, seed := testseed.Rand(t)
	vs := fullSet(t, r, 2) // T = MaxTotalVotingPower: no rescale below ±T
	for trial := 0; trial < 2000; trial++ {
		n := 1 + r.IntN(MaxValidators)
		limit := []int64{10, 1 << 52, 1 << 53, MaxTotalVotingPower}[r.IntN(4)]
		p := make([]int64, n)
		for i := range p {
			p[i] = r.Int64N(2*limit+1) - limit
		}
		want := append([]int64(nil), p...)
		mean := floorMean(p)
		for i := range want {
			want[i] -= mean
		}
		normalize(p, vs)
		for i := range p {
			if p[i] != want[i] {
				t.Fatalf("seed %d: %d values within ±%d: member %d normalized to %d, want %d", seed, n, limit, i, p[i], want[i])
			}
		}
	}
}

func TestClipArithmeticSaturates(t *testing.T) {
	for _, tc := range []struct {
		got, want int64
	}{
		{addClip(math.MaxInt64, 1), math.MaxInt64},
		{addClip(math.MinInt64, -1), math.MinInt64},
		{addClip(5, -7), -2},
		{subClip(math.MinInt64, 1), math.MinInt64},
		{subClip(math.MaxInt64, -1), math.MaxInt64},
		{subClip(5, 7), -2},
	} {
		if tc.got != tc.want {
			t.Fatalf("got %d, want %d", tc.got, tc.want)
		}
	}
}
