package staking

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
)

// seekingStore adds Seeker to memStore.
type seekingStore struct{ *memStore }

func (s *seekingStore) IterateFrom(prefix, start []byte, fn func(k, v []byte) error) error {
	return s.memStore.Iterate(prefix, func(k, v []byte) error {
		if bytes.Compare(k, start) < 0 {
			return nil
		}
		return fn(k, v)
	})
}

// The listing by power gives the eligible validators by power (ties by
// consensus address), then the jailed ones by operator, every one exactly
// once whatever the page size, with or without a Seeker; its first
// MaxValidators are the active set.
func TestValidatorsByPowerPages(t *testing.T) {
	c := newChain(t, testParams(), gv(t, 0, 5), gv(t, 1, 9), gv(t, 2, 9))
	c.do(func(s *Staking) {
		for _, v := range []GenesisValidator{gv(t, 3, 2), gv(t, 4, 7), gv(t, 5, 9), gv(t, 6, 3)} {
			must(t, s.CreateValidator(2, v.Operator, v.ConsKey, v.Moniker, v.Power*c.p.PowerUnit))
		}
	})
	// Validators 4 and 6 fall below one power unit (and are jailed).
	c.do(func(s *Staking) {
		_, err := s.Undelegate(3, addr(4), addr(4), 7*100-1)
		must(t, err)
		_, err = s.Undelegate(3, addr(6), addr(6), 3*100-1)
		must(t, err)
	})
	_, active, _ := c.endBlock(BlockInfo{Height: 3})
	nines := []int{1, 2, 5}
	slices.SortFunc(nines, func(a, b int) int {
		ca, cb := consKey(t, a).Address(), consKey(t, b).Address()
		return bytes.Compare(ca[:], cb[:])
	})
	var want []crypto.Address
	for _, i := range nines {
		want = append(want, addr(i))
	}
	want = append(want, addr(0), addr(3))
	jailed := []crypto.Address{addr(4), addr(6)}
	slices.SortFunc(jailed, func(a, b crypto.Address) int { return bytes.Compare(a[:], b[:]) })
	want = append(want, jailed...)

	activeOps := map[crypto.Address]bool{}
	for _, m := range active {
		activeOps[m.Operator] = true
	}
	for i, op := range want[:c.p.MaxValidators] {
		if !activeOps[op] {
			t.Fatalf("listing position %d is %s, not in the active set %+v", i, op, active)
		}
	}
	for _, seek := range []bool{false, true} {
		for limit := 1; limit <= len(want)+1; limit++ {
			var r Reader = c.store
			if seek {
				r = &seekingStore{memStore: c.store}
			}
			q := NewQuery(r)
			var got []crypto.Address
			var from []byte
			for pages := 0; ; pages++ {
				if pages > len(want) {
					t.Fatalf("seek %v limit %d: the listing does not end", seek, limit)
				}
				vals, next, err := q.ValidatorsByPower(c.p.PowerUnit, from, limit)
				must(t, err)
				if len(vals) > limit || (next != nil && len(vals) != limit) {
					t.Fatalf("seek %v limit %d: page of %d, next %x", seek, limit, len(vals), next)
				}
				for _, v := range vals {
					got = append(got, v.Operator)
				}
				if next == nil {
					break
				}
				from = next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("seek %v limit %d: listing\n%v\nwant\n%v", seek, limit, got, want)
			}
		}
	}
	q := NewQuery(c.store)
	for _, bad := range [][]byte{[]byte("stk/x"), []byte(prefixPow + "short"), []byte(prefixVal + "short"), {}} {
		if _, _, err := q.ValidatorsByPower(c.p.PowerUnit, bad, 10); !errors.Is(err, ErrBadPosition) {
			t.Errorf("position %q: err %v, want ErrBadPosition", bad, err)
		}
	}
	if _, _, err := NewQuery(failingReader{}).ValidatorsByPower(c.p.PowerUnit, nil, 10); !errors.Is(err, errDisk) {
		t.Errorf("a failing reader: err %v", err)
	}
}

// FuzzValidatorsByPowerPosition: a position from a client never panics
// the listing; it is refused unless it is a well-formed key of the power
// index or of the validator records, and an accepted one gives a page.
func FuzzValidatorsByPowerPosition(f *testing.F) {
	c := newChain(f, testParams(), gv(f, 0, 5), gv(f, 1, 9))
	q := NewQuery(&seekingStore{memStore: c.store})
	_, next, err := q.ValidatorsByPower(c.p.PowerUnit, nil, 1)
	if err != nil || next == nil {
		f.Fatalf("no second page: %v", err)
	}
	f.Add(next)
	f.Add(ValidatorKey(addr(0)))
	f.Add([]byte(prefixPow))
	f.Add([]byte("stk/"))
	f.Fuzz(func(t *testing.T, from []byte) {
		vals, _, err := q.ValidatorsByPower(c.p.PowerUnit, from, 1)
		if err != nil && !errors.Is(err, ErrBadPosition) {
			t.Fatalf("position %q: %v", from, err)
		}
		if err != nil && len(vals) != 0 {
			t.Fatalf("position %q refused with a page", from)
		}
		wellFormed := (len(from) == len(prefixPow)+8+addrLen && bytes.HasPrefix(from, []byte(prefixPow))) ||
			(len(from) == len(prefixVal)+addrLen && bytes.HasPrefix(from, []byte(prefixVal)))
		if (err == nil) != (wellFormed || from == nil) {
			t.Fatalf("position %q: err %v, well-formed %v", from, err, wellFormed)
		}
	})
}
