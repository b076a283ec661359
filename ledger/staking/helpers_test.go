package staking

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
)

// memStore is a committed state for tests: a map with its keys kept
// sorted for prefix iteration.
type memStore struct {
	m    map[string][]byte
	keys []string // sorted
}

func newMemStore() *memStore { return &memStore{m: make(map[string][]byte)} }

func (s *memStore) Get(k []byte) ([]byte, error) {
	v, ok := s.m[string(k)]
	if !ok {
		return nil, nil
	}
	return bytes.Clone(v), nil
}

func (s *memStore) Iterate(prefix []byte, fn func(k, v []byte) error) error {
	i, _ := slices.BinarySearch(s.keys, string(prefix))
	for ; i < len(s.keys) && strings.HasPrefix(s.keys[i], string(prefix)); i++ {
		if err := fn([]byte(s.keys[i]), s.m[s.keys[i]]); err != nil {
			return err
		}
	}
	return nil
}

// apply commits changes.
func (s *memStore) apply(cs []Change) {
	for _, c := range cs {
		k := string(c.Key)
		if c.Value == nil {
			if _, ok := s.m[k]; ok {
				delete(s.m, k)
				i, _ := slices.BinarySearch(s.keys, k)
				s.keys = slices.Delete(s.keys, i, i+1)
			}
			continue
		}
		if _, ok := s.m[k]; !ok {
			i, _ := slices.BinarySearch(s.keys, k)
			s.keys = slices.Insert(s.keys, i, k)
		}
		s.m[k] = bytes.Clone(c.Value)
	}
}

// failingReader fails every read, to check errors are passed on.
type failingReader struct{}

var errDisk = errors.New("disk on fire")

func (failingReader) Get([]byte) ([]byte, error)                    { return nil, errDisk }
func (failingReader) Iterate([]byte, func(k, v []byte) error) error { return errDisk }

// consKey is consensus key number i of a fixed set.
func consKey(t testing.TB, i int) crypto.PubKey {
	t.Helper()
	seed := crypto.Sum([]byte("staking_test/cons/" + strconv.Itoa(i)))
	k, err := crypto.PrivKeyFromSeed(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k.PubKey()
}

// addr is account address number i of a fixed set.
func addr(i int) crypto.Address {
	h := crypto.Sum([]byte("staking_test/account/" + strconv.Itoa(i)))
	var a crypto.Address
	copy(a[:], h[:])
	return a
}

// testParams are small parameters that make windows and delays short.
func testParams() Params {
	return Params{
		PowerUnit:               100,
		MaxValidators:           3,
		UnbondingHeights:        10,
		MaxEntries:              3,
		SlashFractionDoubleSign: 100_000, // 0.1
		SlashFractionDowntime:   10_000,  // 0.01
		SignedBlocksWindow:      10,
		MinSignedPerWindow:      500_000, // 0.5: at most 5 misses
		DowntimeJailHeights:     20,
	}
}

// chain is a committed state and the parameters, with helpers that run
// one overlay and commit it.
type chain struct {
	t     testing.TB
	p     Params
	store *memStore
}

func newChain(t testing.TB, p Params, vals ...GenesisValidator) *chain {
	t.Helper()
	cs, err := InitGenesis(p, vals)
	if err != nil {
		t.Fatal(err)
	}
	c := &chain{t: t, p: p, store: newMemStore()}
	c.store.apply(cs)
	return c
}

// do runs fn on a fresh overlay and commits what it staged.
func (c *chain) do(fn func(s *Staking)) {
	c.t.Helper()
	s := New(c.store, c.p)
	fn(s)
	c.store.apply(s.Changes())
}

// must fails the test on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantReject checks err is a rejection whose message holds every want.
func wantReject(t testing.TB, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v, want a rejection", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("err = %q, want it to say %q", err, w)
		}
	}
}

func (c *chain) query() Query { return NewQuery(c.store) }

func (c *chain) validator(op crypto.Address) Validator {
	c.t.Helper()
	v, ok, err := c.query().Validator(op)
	if err != nil || !ok {
		c.t.Fatalf("validator %s: ok %v, err %v", op, ok, err)
	}
	return v
}

func (c *chain) pool() Pool {
	c.t.Helper()
	p, err := c.query().Pool()
	must(c.t, err)
	return p
}

// endBlock runs EndBlock and ActiveSet at height and commits them.
func (c *chain) endBlock(info BlockInfo) ([]Payout, []Member, bool) {
	c.t.Helper()
	var pay []Payout
	var set []Member
	var changed bool
	c.do(func(s *Staking) {
		var err error
		pay, err = s.EndBlock(info)
		must(c.t, err)
		set, changed, err = s.ActiveSet()
		must(c.t, err)
	})
	return pay, set, changed
}

// gv is genesis validator i with the given power; operator addr(i).
func gv(t testing.TB, i int, power uint64) GenesisValidator {
	return GenesisValidator{Operator: addr(i), ConsKey: consKey(t, i), Moniker: "val" + strconv.Itoa(i), Power: power}
}
