package snapshot

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/statetree"
)

// innerHash is the hash of an inner node over l and r: one level of
// FoldSiblings.
func innerHash(l, r [32]byte) [32]byte {
	return statetree.FoldSiblings(1, [32]byte{}, l, [][32]byte{r})
}

// memTree is an in-memory Source over one set of leaves (any version),
// built on the same hashing as the state tree, for the tests that do not
// need a store. wholePartition makes Partition return the whole tree as
// one subtree, whatever maxLeaves is, so that Build's own splitting is
// exercised.
type memTree struct {
	leaves         []Leaf // sorted by key
	wholePartition bool
	leavesCalls    int
}

func newMemTree(leaves []Leaf) *memTree {
	ls := slices.Clone(leaves)
	slices.SortFunc(ls, func(a, b Leaf) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	return &memTree{leaves: ls}
}

func (t *memTree) root() [32]byte {
	h, err := statetree.SubtreeHash(0, t.leaves)
	if err != nil {
		panic(err)
	}
	return h
}

// under returns the leaves under the subtree at depth with prefix.
func (t *memTree) under(depth int, prefix [32]byte) []Leaf {
	lo := sort.Search(len(t.leaves), func(i int) bool { return bytes.Compare(t.leaves[i].Key[:], prefix[:]) >= 0 })
	hi := lo
	for hi < len(t.leaves) && underPrefix(t.leaves[hi].Key, prefix, depth) {
		hi++
	}
	return t.leaves[lo:hi]
}

func (t *memTree) Partition(version uint64, maxLeaves uint64) ([]Subtree, error) {
	if t.wholePartition {
		return []Subtree{{Depth: 0, Hash: t.root(), Leaves: uint64(len(t.leaves))}}, nil
	}
	var out []Subtree
	var walk func(depth int, prefix [32]byte, siblings [][32]byte) error
	walk = func(depth int, prefix [32]byte, siblings [][32]byte) error {
		ls := t.under(depth, prefix)
		if uint64(len(ls)) <= maxLeaves || depth == MaxDepth {
			h, err := statetree.SubtreeHash(depth, ls)
			if err != nil {
				return err
			}
			out = append(out, Subtree{Depth: depth, Prefix: prefix, Hash: h, Leaves: uint64(len(ls)), Siblings: slices.Clone(siblings)})
			return nil
		}
		l, r := halves(depth, prefix)
		lh, err := statetree.SubtreeHash(depth+1, t.under(depth+1, l))
		if err != nil {
			return err
		}
		rh, err := statetree.SubtreeHash(depth+1, t.under(depth+1, r))
		if err != nil {
			return err
		}
		if err := walk(depth+1, l, append(slices.Clip(siblings), rh)); err != nil {
			return err
		}
		return walk(depth+1, r, append(slices.Clip(siblings), lh))
	}
	return out, walk(0, [32]byte{}, nil)
}

func (t *memTree) Leaves(version uint64, depth int, prefix [32]byte, fn func(Leaf) error) error {
	t.leavesCalls++
	for _, l := range t.under(depth, prefix) {
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

// accountLeaf is the leaf of an account at addr.
func accountLeaf(addr crypto.Address, a ledger.Account) Leaf {
	return Leaf{Key: ledger.AccountKey(addr), Value: a.Encode(), Meta: ledger.AccountMeta(addr)}
}

// recordLeaf is the leaf of a state record under a natural key.
func recordLeaf(k, v []byte) Leaf {
	return Leaf{Key: ledger.RecordKey(k), Value: v, Meta: ledger.RecordMeta(k)}
}

// randomLeaves returns n account leaves with random addresses and
// balances, and a few records.
func randomLeaves(r *rand.Rand, n int) []Leaf {
	out := make([]Leaf, 0, n+n/100)
	for range n {
		var addr crypto.Address
		for i := range addr {
			addr[i] = byte(r.Uint32())
		}
		out = append(out, accountLeaf(addr, ledger.Account{Balance: r.Uint64N(1e12), Nonce: r.Uint64N(100)}))
	}
	for i := range n / 100 {
		out = append(out, recordLeaf([]byte(fmt.Sprintf("stk/test/%d", i)), bytes.Repeat([]byte{byte(i)}, 1+r.IntN(300))))
	}
	return out
}

// memImporter is an Importer that keeps the leaves in memory and builds
// the top of the tree from the parts' hashes.
type memImporter struct {
	leaves   map[[32]byte]Leaf
	imported int
	fail     error // returned by ImportChunk when set
}

func newMemImporter() *memImporter { return &memImporter{leaves: make(map[[32]byte]Leaf)} }

func (m *memImporter) ImportChunk(depth int, prefix [32]byte, leaves []Leaf) (SubtreeRef, error) {
	if m.fail != nil {
		return SubtreeRef{}, m.fail
	}
	h, err := statetree.SubtreeHash(depth, leaves)
	if err != nil {
		return SubtreeRef{}, err
	}
	for _, l := range leaves {
		m.leaves[l.Key] = Leaf{Key: l.Key, Value: bytes.Clone(l.Value), Meta: bytes.Clone(l.Meta)}
	}
	m.imported++
	return SubtreeRef{Depth: depth, Prefix: prefix, Hash: h, Leaves: uint64(len(leaves))}, nil
}

func (m *memImporter) FinishImport(parts []SubtreeRef) ([32]byte, error) {
	var top func(depth int, parts []SubtreeRef) ([32]byte, error)
	top = func(depth int, parts []SubtreeRef) ([32]byte, error) {
		switch {
		case len(parts) == 0:
			return [32]byte{}, errors.New("a half with no parts")
		case len(parts) == 1 && parts[0].Depth == depth:
			return parts[0].Hash, nil
		case depth >= MaxDepth:
			return [32]byte{}, errors.New("parts below the last depth")
		}
		split := sort.Search(len(parts), func(i int) bool { return bitOf(parts[i].Prefix, depth) == 1 })
		l, err := top(depth+1, parts[:split])
		if err != nil {
			return l, err
		}
		r, err := top(depth+1, parts[split:])
		if err != nil {
			return r, err
		}
		return innerHash(l, r), nil
	}
	return top(0, parts)
}

// sortedLeaves returns the imported leaves in key order.
func (m *memImporter) sortedLeaves() []Leaf {
	out := make([]Leaf, 0, len(m.leaves))
	for _, l := range m.leaves {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Leaf) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	return out
}

// built is a snapshot built in memory.
type built struct {
	m      *Manifest
	chunks [][]byte
}

func buildMem(src Source, height uint64, appHash [32]byte) (*built, error) {
	b := &built{}
	m, err := Build(bgCtx, src, 1, height, appHash, func(i int, raw []byte) error {
		if i != len(b.chunks) {
			return fmt.Errorf("chunk %d after %d", i, len(b.chunks))
		}
		b.chunks = append(b.chunks, raw)
		return nil
	})
	b.m = m
	return b, err
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }
