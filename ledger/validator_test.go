package ledger_test

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// valSet returns a set with the given powers and the keys indexed like the
// set (which sorts by address, not by the order of powers).
func valSet(t testing.TB, ns string, powers ...uint64) (*ledger.ValidatorSet, []crypto.PrivKey) {
	t.Helper()
	vals := make([]ledger.Validator, len(powers))
	byAddr := map[crypto.Address]crypto.PrivKey{}
	for i, p := range powers {
		k := ledgertest.Key(ns, i)
		vals[i] = ledger.Validator{PubKey: k.PubKey(), Power: p}
		byAddr[k.PubKey().Address()] = k
	}
	vs, err := ledger.NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]crypto.PrivKey, vs.Size())
	for i := range keys {
		keys[i] = byAddr[vs.Get(i).Address()]
	}
	return vs, keys
}

func TestValidatorSetIsSortedByAddress(t *testing.T) {
	r, seed := testRand(t)
	vals := make([]ledger.Validator, 50)
	for i := range vals {
		vals[i] = ledger.Validator{PubKey: randPub(r), Power: 1 + r.Uint64N(100), Name: "v"}
	}
	input := append([]ledger.Validator(nil), vals...)
	vs, err := ledger.NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	if vs.Size() != len(vals) {
		t.Fatalf("size %d, want %d", vs.Size(), len(vals))
	}
	var total uint64
	for i := range vs.Size() {
		v := vs.Get(i)
		total += v.Power
		if i > 0 {
			prev := vs.Get(i - 1).Address()
			if a := v.Address(); bytes.Compare(prev[:], a[:]) >= 0 {
				t.Fatalf("seed %d: validators %d and %d are not in increasing address order", seed, i-1, i)
			}
		}
		if v.Address() != v.PubKey.Address() {
			t.Fatalf("validator %d: address is not derived from the key", i)
		}
		if j, ok := vs.ByAddress(v.Address()); !ok || j != i {
			t.Fatalf("ByAddress of validator %d = %d, %v", i, j, ok)
		}
	}
	if total != vs.TotalPower() {
		t.Fatalf("TotalPower %d, sum %d", vs.TotalPower(), total)
	}
	if _, ok := vs.ByAddress(randAddr(r)); ok {
		t.Fatal("ByAddress found a random address")
	}
	for i := range vals {
		if vals[i] != input[i] {
			t.Fatal("NewValidatorSet reordered or changed its input")
		}
	}
	// The order, and so the hash, does not depend on the input order.
	rev := append([]ledger.Validator(nil), vals...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	vs2, err := ledger.NewValidatorSet(rev)
	if err != nil || vs2.Hash() != vs.Hash() {
		t.Fatalf("seed %d: the same members in another order give another set hash", seed)
	}
	// Validators is a copy.
	cp := vs.Validators()
	cp[0].Power++
	if vs.Get(0).Power == cp[0].Power {
		t.Fatal("Validators exposes the set's own slice")
	}
}

func TestValidatorSetHashCommitsToKeysAndPowers(t *testing.T) {
	a, _ := valSet(t, "h", 1, 2, 3)
	b, _ := valSet(t, "h", 1, 2, 4)
	c, _ := valSet(t, "h2", 1, 2, 3)
	if a.Hash() == b.Hash() || a.Hash() == c.Hash() {
		t.Fatal("sets differing in a power or in keys share a hash")
	}
	// Names are for display and do not change the hash.
	vals := a.Validators()
	vals[0].Name = "renamed"
	d, err := ledger.NewValidatorSet(vals)
	if err != nil || d.Hash() != a.Hash() {
		t.Fatalf("renaming changed the hash: %v", err)
	}
}

func TestNewValidatorSetRefuses(t *testing.T) {
	k := func(i int) crypto.PubKey { return ledgertest.Key("refuse", i).PubKey() }
	many := make([]ledger.Validator, ledger.MaxValidators+1)
	for i := range many {
		many[i] = ledger.Validator{PubKey: k(i), Power: 1}
	}
	half := uint64(ledger.MaxTotalVotingPower)/2 + 1
	cases := []struct {
		name string
		vals []ledger.Validator
		msg  string
	}{
		{"empty set", nil, "empty"},
		{"duplicate key", []ledger.Validator{{PubKey: k(0), Power: 1}, {PubKey: k(1), Power: 1}, {PubKey: k(0), Power: 2}}, "duplicate"},
		{"zero power", []ledger.Validator{{PubKey: k(0), Power: 1}, {PubKey: k(1), Power: 0}}, "zero voting power"},
		{"one power above the total cap", []ledger.Validator{{PubKey: k(0), Power: ledger.MaxTotalVotingPower + 1}}, "total voting power"},
		{"sum above the total cap", []ledger.Validator{{PubKey: k(0), Power: half}, {PubKey: k(1), Power: half}}, "total voting power"},
		{"sum that wraps a uint64", []ledger.Validator{{PubKey: k(0), Power: math.MaxUint64}, {PubKey: k(1), Power: 2}}, "total voting power"},
		{"more than MaxValidators", many, "at most"},
		{"name too long", []ledger.Validator{{PubKey: k(0), Power: 1, Name: strings.Repeat("n", ledger.MaxValidatorNameLen+1)}}, "name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vs, err := ledger.NewValidatorSet(tc.vals)
			if err == nil {
				t.Fatalf("accepted a set of %d", vs.Size())
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %q does not mention %q", err, tc.msg)
			}
		})
	}
	// The limits themselves are accepted.
	if _, err := ledger.NewValidatorSet(many[:ledger.MaxValidators]); err != nil {
		t.Errorf("MaxValidators members: %v", err)
	}
	atCap := []ledger.Validator{{PubKey: k(0), Power: ledger.MaxTotalVotingPower - 1}, {PubKey: k(1), Power: 1}}
	if vs, err := ledger.NewValidatorSet(atCap); err != nil || vs.TotalPower() != ledger.MaxTotalVotingPower {
		t.Errorf("total power exactly at the cap: %v", err)
	}
	if _, err := ledger.NewValidatorSet([]ledger.Validator{{PubKey: k(0), Power: 1, Name: strings.Repeat("n", ledger.MaxValidatorNameLen)}}); err != nil {
		t.Errorf("name of MaxValidatorNameLen bytes: %v", err)
	}
}

func TestQuorumAndOneThirdPlus(t *testing.T) {
	cases := []struct {
		powers        []uint64
		quorum, third uint64
	}{
		{[]uint64{1}, 1, 1},
		{[]uint64{1, 1}, 2, 1},
		{[]uint64{1, 1, 1}, 3, 2},
		{[]uint64{1, 1, 1, 1}, 3, 2},
		{[]uint64{10, 10, 10, 10}, 27, 14},
		{[]uint64{3, 3, 3}, 7, 4},
		{[]uint64{2, 1}, 3, 2},
		{[]uint64{100}, 67, 34},
		{[]uint64{50, 49}, 67, 34},
		{[]uint64{ledger.MaxTotalVotingPower}, 768614336404564651, 384307168202282326}, // no overflow at the cap
		{[]uint64{ledger.MaxTotalVotingPower - 1}, 768614336404564650, 384307168202282325},
	}
	for _, tc := range cases {
		vs, _ := valSet(t, "quorum", tc.powers...)
		if q := vs.Quorum(); q != tc.quorum {
			t.Errorf("powers %v: Quorum %d, want %d", tc.powers, q, tc.quorum)
		}
		if f := vs.OneThirdPlus(); f != tc.third {
			t.Errorf("powers %v: OneThirdPlus %d, want %d", tc.powers, f, tc.third)
		}
	}
	// The defining properties, for every total up to 300: the quorum is the
	// least power strictly above two thirds, f+1 the least strictly above one.
	for total := uint64(1); total <= 300; total++ {
		vs, _ := valSet(t, "quorum", total)
		q, f := vs.Quorum(), vs.OneThirdPlus()
		if 3*q <= 2*total || 3*(q-1) > 2*total {
			t.Fatalf("total %d: Quorum %d is not the least power above two thirds", total, q)
		}
		if 3*f <= total || 3*(f-1) > total {
			t.Fatalf("total %d: OneThirdPlus %d is not the least power above one third", total, f)
		}
	}
}
