package statetree

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// benchKey is key i of a benchmark tree: a hash, as account keys are.
func benchKey(i uint64) [32]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return sha256.Sum256(b[:])
}

// benchValue is an account-sized value (version, balance, nonce).
func benchValue(i, round uint64) []byte {
	v := make([]byte, 17)
	v[0] = 1
	binary.BigEndian.PutUint64(v[1:], i*1000+round)
	binary.BigEndian.PutUint64(v[9:], round)
	return v
}

// benchTree is a goleveldb-backed tree holding keys 0..size-1.
type benchTree struct {
	db      kv.DB
	reads   *countingReader
	tr      *Tree
	version uint64
	size    uint64
}

// countingReader counts the node reads that reach the store, for a tree
// under the prefix "s/" (its nodes are under benchNodePrefix).
type countingReader struct {
	kv.Reader
	gets atomic.Int64
}

func (c *countingReader) Get(key []byte) ([]byte, error) {
	if bytes.HasPrefix(key, benchNodePrefix) {
		c.gets.Add(1)
	}
	return c.Reader.Get(key)
}

// buildBenchTree fills a tree in dir with size keys, 50,000 per commit.
// The keys go in sorted order, so each commit fills one slice of the key
// space and reads almost nothing back: a bulk load, much faster than random
// inserts, and the tree comes out the same (its shape is canonical).
func buildBenchTree(b *testing.B, dir string, size uint64) *benchTree {
	b.Helper()
	start := time.Now()
	db, err := kv.OpenLevel(dir)
	if err != nil {
		b.Fatal(err)
	}
	bt := &benchTree{db: db, reads: &countingReader{Reader: db}, size: size}
	bt.tr = New(bt.reads, []byte("s/"))
	all := make([]Change, size)
	for i := range size {
		all[i] = Change{Key: benchKey(i), Value: benchValue(i, 0)}
	}
	slices.SortFunc(all, func(x, y Change) int { return bytes.Compare(x.Key[:], y.Key[:]) })
	const perCommit = 50_000
	for lo := uint64(0); lo < size; lo += perCommit {
		bt.commit(b, all[lo:min(lo+perCommit, size)])
	}
	// Settle goleveldb's compaction debt from the bulk load, which would
	// otherwise run during, and be billed to, the measured commits.
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	ldb, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := ldb.CompactRange(util.Range{}); err != nil {
		b.Fatal(err)
	}
	if err := ldb.Close(); err != nil {
		b.Fatal(err)
	}
	if bt.db, err = kv.OpenLevel(dir); err != nil {
		b.Fatal(err)
	}
	bt.reads.Reader = bt.db
	b.Logf("built a tree of %d keys in %v", size, time.Since(start).Round(time.Millisecond))
	return bt
}

// nodeCounter is a batch that counts the tree nodes put into it.
type nodeCounter struct {
	kv.Batch
	nodes int
}

func (c *nodeCounter) Put(key, value []byte) {
	if bytes.HasPrefix(key, benchNodePrefix) {
		c.nodes++
	}
	c.Batch.Put(key, value)
}

// commit commits cs as the next version and writes it; it returns the
// number of tree nodes written.
func (bt *benchTree) commit(b *testing.B, cs []Change) int {
	batch := bt.db.NewBatch()
	nc := &nodeCounter{Batch: batch}
	if _, err := bt.tr.Commit(nc, bt.version, bt.version+1, cs); err != nil {
		b.Fatal(err)
	}
	if err := bt.db.Write(batch, false); err != nil {
		b.Fatal(err)
	}
	bt.version++
	return nc.nodes
}

// BenchmarkCommit measures a block's worth of state changes: 1,000 keys
// (900 updates of random existing keys, 100 new keys), committed and
// written to goleveldb, on trees of growing size. Beside ns/op (one block):
//
//	ns/key      wall time per touched key
//	cpu-ns/key  process CPU time per touched key, goleveldb's background
//	            compaction included (steadier than wall time on a shared
//	            machine; it also counts the untimed change generation)
//	nodes/key   nodes written per touched key: grows with depth, ~log2 n
//	reads/key   nodes read from the store per touched key: those below the
//	            levels the cache keeps
func BenchmarkCommit(b *testing.B) {
	const perBlock, fresh = 1000, 100
	dir := b.TempDir()
	for _, size := range []uint64{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", size), func(b *testing.B) {
			if size > 100_000 && testing.Short() {
				b.Skip("1,000,000 keys takes a while to build; run without -short")
			}
			bt := buildBenchTree(b, filepath.Join(dir, fmt.Sprint(size)), size)
			defer bt.db.Close()
			r := rand.New(rand.NewPCG(size, 1))
			nodes, blocks := 0, 0
			reads, cpu := bt.reads.gets.Load(), cpuTime()
			for b.Loop() {
				b.StopTimer()
				cs := make([]Change, 0, perBlock)
				for range perBlock - fresh {
					i := r.Uint64N(bt.size)
					cs = append(cs, Change{Key: benchKey(i), Value: benchValue(i, bt.version)})
				}
				for range fresh {
					cs = append(cs, Change{Key: benchKey(bt.size), Value: benchValue(bt.size, 0)})
					bt.size++
				}
				b.StartTimer()
				nodes += bt.commit(b, cs)
				blocks++
			}
			cpu = cpuTime() - cpu // before the metrics below, which allocate
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(blocks*perBlock), "ns/key")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(blocks*perBlock), "cpu-ns/key")
			b.ReportMetric(float64(nodes)/float64(blocks*perBlock), "nodes/key")
			b.ReportMetric(float64(bt.reads.gets.Load()-reads)/float64(blocks*perBlock), "reads/key")
		})
	}
}

// BenchmarkProve measures a proof of a random present key from a
// goleveldb tree of 100,000 keys.
func BenchmarkProve(b *testing.B) {
	bt := buildBenchTree(b, b.TempDir(), 100_000)
	defer bt.db.Close()
	r := rand.New(rand.NewPCG(2, 2))
	for b.Loop() {
		if _, _, err := bt.tr.Prove(bt.version, benchKey(r.Uint64N(bt.size))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures checking a membership proof from a tree of
// 100,000 keys (about 17 siblings).
func BenchmarkVerify(b *testing.B) {
	db := kv.NewMem()
	tr := New(db, nil)
	var cs []Change
	for i := range uint64(100_000) {
		cs = append(cs, Change{Key: benchKey(i), Value: benchValue(i, 0)})
	}
	batch := db.NewBatch()
	root, err := tr.Commit(batch, 0, 1, cs)
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Write(batch, false); err != nil {
		b.Fatal(err)
	}
	const nproofs = 256
	type item struct {
		key   [32]byte
		value []byte
		proof *Proof
	}
	items := make([]item, nproofs)
	siblings := 0
	for i := range items {
		k := benchKey(uint64(i * 97))
		v, p, err := tr.Prove(1, k)
		if err != nil {
			b.Fatal(err)
		}
		items[i] = item{k, v, p}
		siblings += len(p.Siblings)
	}
	i := 0
	for b.Loop() {
		it := items[i%nproofs]
		if err := Verify(root, it.key, it.value, it.proof); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(siblings)/nproofs, "siblings/proof") // after b.Loop, which clears metrics
}
