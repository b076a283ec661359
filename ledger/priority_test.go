package ledger_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// namedSet returns a set of validators named by the keys of powers, and
// the set index of each name.
func namedSet(t testing.TB, powers map[string]uint64) (*ledger.ValidatorSet, map[string]int) {
	t.Helper()
	var vals []ledger.Validator
	for name, p := range powers {
		seed := crypto.Sum([]byte("priority-test/" + name))
		k, err := crypto.PrivKeyFromSeed(seed[:])
		if err != nil {
			t.Fatal(err)
		}
		vals = append(vals, ledger.Validator{PubKey: k.PubKey(), Power: p, Name: name})
	}
	vs, err := ledger.NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	idx := map[string]int{}
	for i := range vs.Size() {
		idx[vs.Get(i).Name] = i
	}
	return vs, idx
}

// byName returns the priorities of p by validator name.
func byName(p *ledger.ProposerPriorities) map[string]int64 {
	out := map[string]int64{}
	for i := range p.Validators().Size() {
		out[p.Validators().Get(i).Name] = p.Priority(i)
	}
	return out
}

func mustPriorities(t testing.TB, vs *ledger.ValidatorSet, idx map[string]int, by map[string]int64) *ledger.ProposerPriorities {
	t.Helper()
	prio := make([]int64, vs.Size())
	for name, v := range by {
		prio[idx[name]] = v
	}
	p, err := ledger.NewProposerPriorities(vs, prio)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func equalByName(t *testing.T, what string, got *ledger.ProposerPriorities, want map[string]int64) {
	t.Helper()
	g := byName(got)
	for name, w := range want {
		if g[name] != w {
			t.Fatalf("%s: priorities %v, want %v", what, g, want)
		}
	}
	if len(g) != len(want) {
		t.Fatalf("%s: priorities %v, want %v", what, g, want)
	}
}

// TestPrioritiesEqualPowersRotate: with equal powers the proposers go
// round the set in order, across rounds and across heights:
// proposer(h, r) = v((h-1+r) mod n), the order the scripted consensus
// tests are written against.
func TestPrioritiesEqualPowersRotate(t *testing.T) {
	vs, _ := valSet(t, "rotate", 1, 1, 1, 1)
	p := ledger.GenesisPriorities(vs)
	for h := uint64(1); h <= 12; h++ {
		rounds := p.Rounds()
		for r := uint64(0); r < 9; r++ {
			if got, want := rounds.Next(), int((h-1+r)%4); got != want {
				t.Fatalf("proposer(%d, %d) = v%d, want v%d", h, r, got, want)
			}
		}
		if got, want := p.Proposer(3), int((h-1+3)%4); got != want {
			t.Fatalf("Proposer(3) at height %d = v%d, want v%d", h, got, want)
		}
		p = p.Next(vs)
	}
}

// TestPrioritiesFollowPowers: from zero priorities, every run of T
// increments (T the total power) chooses each validator exactly as many
// times as its power, and comes back to zero; a static set's round-0
// proposers across heights are the same sequence.
func TestPrioritiesFollowPowers(t *testing.T) {
	r, seed := testRand(t)
	for trial := 0; trial < 200; trial++ {
		n := 1 + r.IntN(8)
		powers := make([]uint64, n)
		for i := range powers {
			powers[i] = 1 + r.Uint64N(20)
		}
		vs, _ := valSet(t, "weights", powers...)
		total := int(vs.TotalPower())
		rounds := ledger.GenesisPriorities(vs).Rounds()
		p := ledger.GenesisPriorities(vs)
		for cycle := 0; cycle < 3; cycle++ {
			counts := make([]uint64, n)
			for k := 0; k < total; k++ {
				i := rounds.Next()
				if j := p.Proposer(0); j != i {
					t.Fatalf("seed %d, powers %v: height %d's round-0 proposer v%d, increment %d chose v%d", seed, powers, cycle*total+k+1, j, cycle*total+k, i)
				}
				p = p.Next(vs)
				counts[i]++
			}
			for i := range counts {
				if counts[i] != vs.Get(i).Power {
					t.Fatalf("seed %d, powers %v: cycle %d chose v%d %d times, power %d", seed, powers, cycle, i, counts[i], vs.Get(i).Power)
				}
			}
			if !p.Equal(ledger.GenesisPriorities(vs)) {
				t.Fatalf("seed %d, powers %v: priorities %v after %d whole cycles, want zero", seed, powers, p.Priorities(), cycle+1)
			}
		}
	}
}

// TestPrioritiesHeavyValidatorProposesTwice: a validator with more than
// half the power can propose consecutive rounds: from zero priorities, 5
// of 8 at set index 0 leads with 5, pays 8, and ties the others at 2 on
// the next increment, winning on the lower index.
func TestPrioritiesHeavyValidatorProposesTwice(t *testing.T) {
	four, _ := valSet(t, "heavy", 1, 1, 1, 1)
	vals := four.Validators()
	vals[0].Power = 5
	vs, err := ledger.NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	rounds := ledger.GenesisPriorities(vs).Rounds()
	if a, b, c := rounds.Next(), rounds.Next(), rounds.Next(); a != 0 || b != 0 || c != 1 {
		t.Fatalf("rounds 0, 1, 2: v%d v%d v%d, want v0 v0 v1", a, b, c)
	}
}

// TestPrioritiesCarryAcrossChanges pins the update rule on a worked
// example: the increment of the height, a kept member keeps its priority
// at its new power, a removed one is dropped, a newcomer starts at
// -1.125 T' (T' the new total plus the power removed), then the mean is
// subtracted.
func TestPrioritiesCarryAcrossChanges(t *testing.T) {
	before, _ := namedSet(t, map[string]uint64{"a": 1, "b": 1, "c": 1})
	after, _ := namedSet(t, map[string]uint64{"a": 1, "b": 2, "d": 1})
	p := ledger.GenesisPriorities(before)
	// The increment takes a, b and c to 1; the tie goes to the lowest
	// address, set index 0, which pays the total, 3.
	first := before.Get(0).Name
	inc := map[string]int64{"a": 1, "b": 1, "c": 1}
	inc[first] -= 3
	// c leaves (power 1), d joins: T' = 4 + 1 = 5, fresh = -(5 + 5>>3) = -5.
	upd := map[string]int64{"a": inc["a"], "b": inc["b"], "d": -5}
	sum := upd["a"] + upd["b"] + upd["d"]
	mean := sum / 3
	if sum%3 != 0 && sum < 0 {
		mean--
	}
	want := map[string]int64{}
	for k, v := range upd {
		want[k] = v - mean
	}
	equalByName(t, "after the change", p.Next(after), want)
}

// TestPrioritiesRescale: when the kept priorities spread wider than twice
// the new total, they are divided by the smallest integer that brings
// them within it (truncating toward zero), then centred.
func TestPrioritiesRescale(t *testing.T) {
	big, idx := namedSet(t, map[string]uint64{"a": 100, "b": 1, "c": 1})
	p := mustPriorities(t, big, idx, map[string]int64{"a": 0, "b": 102, "c": -102})
	// Increment: a 100, b 103, c -101; b leads and pays 102: b 1.
	// a leaves: T = 2, window 4; b 1, c -101 span 102, ratio 26:
	// b 1/26 = 0, c -101/26 = -3; mean floor(-3/2) = -2: b 2, c -1.
	small, _ := namedSet(t, map[string]uint64{"b": 1, "c": 1})
	equalByName(t, "after the rescale", p.Next(small), map[string]int64{"b": 2, "c": -1})
	// Priorities wider than the window are rescaled before the rounds
	// too: a 0, b 150, c -150 span 300 > 204 and halve to 0, 75, -75,
	// where a leads the first increment (100 against 76).
	wide := mustPriorities(t, big, idx, map[string]int64{"a": 0, "b": 150, "c": -150})
	if got := wide.Proposer(0); got != idx["a"] {
		t.Fatalf("round 0 of the wide priorities: v%d, want a (v%d)", got, idx["a"])
	}
}

// TestPrioritiesStayCentredAndWithinTheWindow runs random changes and
// checks every height's priorities: the floor of their mean is zero, they
// span at most twice the total power, and each is within ±2T.
func TestPrioritiesStayCentredAndWithinTheWindow(t *testing.T) {
	r, seed := testRand(t)
	pool := make([]ledger.Validator, 40)
	for i := range pool {
		pool[i] = ledger.Validator{PubKey: randPub(r), Power: 1}
	}
	draw := func() *ledger.ValidatorSet {
		n := 1 + r.IntN(12)
		perm := r.Perm(len(pool))[:n]
		vals := make([]ledger.Validator, n)
		for k, i := range perm {
			vals[k] = pool[i]
			switch r.IntN(3) {
			case 0:
				vals[k].Power = 1 + r.Uint64N(10)
			case 1:
				vals[k].Power = 1 + r.Uint64N(1_000_000)
			default:
				vals[k].Power = 1 + r.Uint64N(ledger.MaxTotalVotingPower/16)
			}
		}
		vs, err := ledger.NewValidatorSet(vals)
		if err != nil {
			t.Fatal(err)
		}
		return vs
	}
	vs := draw()
	p := ledger.GenesisPriorities(vs)
	for h := 0; h < 5000; h++ {
		if r.IntN(3) == 0 {
			vs = draw()
		}
		p = p.Next(vs)
		total := int64(vs.TotalPower())
		lo, hi, quo, rem := int64(0), int64(0), int64(0), int64(0)
		n := int64(vs.Size())
		for i := range vs.Size() {
			v := p.Priority(i)
			if i == 0 || v < lo {
				lo = v
			}
			if i == 0 || v > hi {
				hi = v
			}
			q, m := v/n, v%n
			if m < 0 {
				q, m = q-1, m+n
			}
			quo, rem = quo+q, rem+m
		}
		if mean := quo + rem/n; mean != 0 {
			t.Fatalf("seed %d, height %d: floor of the mean %d, want 0 (%v)", seed, h, mean, p.Priorities())
		}
		if hi-lo > 2*total || hi > 2*total || lo < -2*total {
			t.Fatalf("seed %d, height %d: priorities span [%d, %d], total %d", seed, h, lo, hi, total)
		}
		if _, err := ledger.NewProposerPriorities(vs, p.Priorities()); err != nil {
			t.Fatalf("seed %d, height %d: %v", seed, h, err)
		}
	}
}

func TestProposerPrioritiesCodec(t *testing.T) {
	vs, idx := namedSet(t, map[string]uint64{"a": 3, "b": 2, "c": 1})
	p := mustPriorities(t, vs, idx, map[string]int64{"a": -12, "b": 5, "c": 7})
	enc := p.Encode()
	got, err := ledger.DecodeProposerPriorities(vs, enc)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(p) || !bytes.Equal(got.Encode(), enc) {
		t.Fatalf("round trip: %v, want %v", got.Priorities(), p.Priorities())
	}
	other, _ := namedSet(t, map[string]uint64{"a": 3, "b": 2, "d": 1})
	bound := append([]byte(nil), enc...)
	bound[len(bound)-1] = 13 // c at 13 > 2T = 12
	for _, tc := range []struct {
		name string
		vals *ledger.ValidatorSet
		in   []byte
		want string
	}{
		{"another set", other, enc, "belong to validator set"},
		{"no set", nil, enc, "no validator set"},
		{"empty", vs, nil, "truncated"},
		{"version", vs, append([]byte{2}, enc[1:]...), "version"},
		{"trailing byte", vs, append(append([]byte(nil), enc...), 0), "trailing"},
		{"short", vs, enc[:len(enc)-1], "truncated"},
		{"out of bound", vs, bound, "outside"},
		{"count", vs, func() []byte {
			b := append([]byte(nil), enc[:1+crypto.HashSize]...)
			b = append(b, 2)
			return append(b, enc[1+crypto.HashSize+1:len(enc)-8]...)
		}(), "2 priorities for 3 validators"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ledger.DecodeProposerPriorities(tc.vals, tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := ledger.NewProposerPriorities(vs, []int64{1, 2}); err == nil {
		t.Fatal("NewProposerPriorities accepted 2 priorities for 3 validators")
	}
}

// TestStateCarriesPriorities: genesis starts at zero with the next height
// one increment on; State.Next moves the next height's priorities down
// and computes those of the height after from them and the new set.
func TestStateCarriesPriorities(t *testing.T) {
	c := ledgertest.NewChain(4, 0, 0)
	g := c.Genesis
	if !g.Priorities.Equal(ledger.GenesisPriorities(g.Validators)) {
		t.Fatalf("genesis priorities %v, want zero", g.Priorities.Priorities())
	}
	if !g.NextPriorities.Equal(g.Priorities.Next(g.NextValidators)) {
		t.Fatal("genesis next priorities are not the genesis priorities one height on")
	}
	if p, ok := g.PrioritiesAt(1); !ok || p != g.Priorities {
		t.Fatal("PrioritiesAt(1) at genesis")
	}
	if p, ok := g.PrioritiesAt(2); !ok || p != g.NextPriorities {
		t.Fatal("PrioritiesAt(2) at genesis")
	}
	if _, ok := g.PrioritiesAt(3); ok {
		t.Fatal("PrioritiesAt(3) at genesis")
	}
	vs, _ := valSet(t, "next", 1, 2, 3)
	b := &ledger.Block{Header: ledger.Header{ChainID: g.ChainID, Height: 1}}
	n := g.Next(b, &ledger.Result{NextValidators: vs}, crypto.Hash{})
	if n.Priorities != g.NextPriorities {
		t.Fatal("the next height's priorities did not move down")
	}
	if n.NextValidators != vs || !n.NextPriorities.Equal(g.NextPriorities.Next(vs)) {
		t.Fatal("the priorities of height 3 are not those of height 2 carried to the new set")
	}
	n2 := n.Next(&ledger.Block{Header: ledger.Header{ChainID: g.ChainID, Height: 2}}, &ledger.Result{}, crypto.Hash{})
	if n2.Validators != vs || n2.Priorities != n.NextPriorities || !n2.NextPriorities.Equal(n.NextPriorities.Next(vs)) {
		t.Fatal("an unchanged set does not carry its priorities one height on")
	}
}
