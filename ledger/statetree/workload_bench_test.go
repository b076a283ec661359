package statetree

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// This file measures the storage layout as a whole, with nothing but New,
// Commit and Change{Key, Value}, so that it compiles against every layout
// of the tree and a figure taken before a layout change is comparable with
// one taken after it. What only a later layout offers (pruning) is plugged
// in through benchPrune, which a layout-specific file sets.

var (
	workloadKeys    = flag.Int("statetree.workload.keys", 1_000_000, "keys in the tree BenchmarkWorkload builds")
	workloadCommits = flag.Int("statetree.workload.commits", 200, "commits BenchmarkWorkload measures")
	workloadPer     = flag.Int("statetree.workload.per", 2000, "changed keys per commit in BenchmarkWorkload")
	workloadKeep    = flag.Int("statetree.workload.keep", 100, "versions BenchmarkWorkload's pruning variant keeps")
)

// benchNodePrefix starts the key of every tree node of a tree under "s/";
// a layout-specific file defines it.

// benchPrune, when set, prunes every version below keepFrom from tr, whose
// store is db. A layout without pruning leaves it nil and the pruning
// variant of BenchmarkWorkload is skipped.
var benchPrune func(tr *Tree, db kv.DB, keepFrom uint64) error

// statsDB is a kv.DB over a goleveldb database opened with the options
// kv.OpenLevel uses, which also exposes goleveldb's I/O counters. (kv.Level
// keeps its *leveldb.DB to itself.)
type statsDB struct{ db *leveldb.DB }

func openStatsDB(tb testing.TB, dir string) *statsDB {
	tb.Helper()
	db, err := leveldb.OpenFile(dir, &opt.Options{
		BlockCacheCapacity: 32 * opt.MiB,
		WriteBuffer:        16 * opt.MiB,
		Filter:             filter.NewBloomFilter(10),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return &statsDB{db: db}
}

func (s *statsDB) Get(key []byte) ([]byte, error) {
	v, err := s.db.Get(key, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, kv.ErrNotFound
	}
	return v, err
}

func (s *statsDB) Has(key []byte) (bool, error) { return s.db.Has(key, nil) }

func (s *statsDB) Iterate(prefix []byte, fn func(key, value []byte) bool) error {
	return s.IterateFrom(prefix, nil, fn)
}

func (s *statsDB) IterateFrom(prefix, start []byte, fn func(key, value []byte) bool) error {
	r := util.BytesPrefix(prefix)
	if bytes.Compare(start, r.Start) > 0 {
		r.Start = start
	}
	it := s.db.NewIterator(r, nil)
	defer it.Release()
	for it.Next() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	return it.Error()
}

// statsBatch is a goleveldb batch that also counts what goes into it.
type statsBatch struct {
	b                 leveldb.Batch
	puts, dels, bytes int
	nodePuts          int // puts of keys under benchNodePrefix
}

func (b *statsBatch) Put(key, value []byte) {
	b.b.Put(key, value)
	b.puts++
	b.bytes += len(key) + len(value)
	if bytes.HasPrefix(key, benchNodePrefix) {
		b.nodePuts++
	}
}

func (b *statsBatch) Delete(key []byte) {
	b.b.Delete(key)
	b.dels++
	b.bytes += len(key)
}

func (b *statsBatch) Len() int { return b.puts + b.dels }

func (b *statsBatch) Reset() { *b = statsBatch{} }

func (s *statsDB) NewBatch() kv.Batch { return &statsBatch{} }

func (s *statsDB) Write(b kv.Batch, sync bool) error {
	sb, ok := b.(*statsBatch)
	if !ok {
		return errors.New("statsDB: batch from another store")
	}
	return s.db.Write(&sb.b, &opt.WriteOptions{Sync: sync})
}

func (s *statsDB) Close() error { return s.db.Close() }

// ioWrite is the number of bytes goleveldb has written to its files
// (journal, tables, manifest) since it was opened.
func (s *statsDB) ioWrite(tb testing.TB) uint64 {
	var st leveldb.DBStats
	if err := s.db.Stats(&st); err != nil {
		tb.Fatal(err)
	}
	return st.IOWrite
}

// dirBytes is the size of every file under dir, which no one may be
// writing.
func dirBytes(tb testing.TB, dir string) int64 {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return total
}

// settledBytes is the size of the closed database in dir once goleveldb
// has removed the files its compactions made obsolete, which it does when
// it opens a database.
func settledBytes(tb testing.TB, dir string) int64 {
	tb.Helper()
	if err := openStatsDB(tb, dir).Close(); err != nil {
		tb.Fatal(err)
	}
	return dirBytes(tb, dir)
}

// workloadTree builds a tree of size keys (benchKey(0..size-1)) in dir as a
// bulk load of sorted keys, 50,000 per commit, then compacts the database
// fully, so that measurements start from a settled store. It returns the
// last version.
func workloadTree(tb testing.TB, dir string, size int) uint64 {
	tb.Helper()
	start := time.Now()
	db := openStatsDB(tb, dir)
	tr := New(db, []byte("s/"))
	all := make([]Change, size)
	for i := range size {
		all[i] = Change{Key: benchKey(uint64(i)), Value: benchValue(uint64(i), 0)}
	}
	slices.SortFunc(all, func(x, y Change) int { return bytes.Compare(x.Key[:], y.Key[:]) })
	const perCommit = 50_000
	v := uint64(0)
	for lo := 0; lo < size; lo += perCommit {
		b := db.NewBatch()
		if _, err := tr.Commit(b, v, v+1, all[lo:min(lo+perCommit, size)]); err != nil {
			tb.Fatal(err)
		}
		if err := db.Write(b, false); err != nil {
			tb.Fatal(err)
		}
		v++
	}
	if err := db.db.CompactRange(util.Range{}); err != nil {
		tb.Fatal(err)
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("built a tree of %d keys in %v", size, time.Since(start).Round(time.Millisecond))
	return v
}

// BenchmarkWorkload runs a fixed workload on a settled tree of
// -statetree.workload.keys keys (1,000,000): -statetree.workload.commits
// commits (200) of -statetree.workload.per changed keys each (2,000: 90%
// updates of random existing keys, 10% new keys), each written to goleveldb
// as a block's batch is. Run it with -benchtime=1x: one iteration is the
// whole workload. It reports
//
//	ns/key        wall time per changed key (commit, write, and prune)
//	cpu-ns/key    process CPU time per changed key, goleveldb's compaction
//	              and the untimed change generation included
//	nodes/key     tree nodes written per changed key
//	wamp          bytes goleveldb wrote to disk (journal, tables, manifest:
//	              DBStats.IOWrite) per byte of new state (32-byte key plus
//	              value of every change)
//	batch-B/key   bytes the tree put in the batches per changed key
//	disk-MB       size of the database directory after the workload (the
//	              files goleveldb's compactions made obsolete removed)
//	compact-MB    the same after a full compaction (what the data needs)
//
// The "prune" variant (when the layout prunes) keeps the last
// -statetree.workload.keep versions (100), pruning after every commit.
func BenchmarkWorkload(b *testing.B) {
	dir := b.TempDir()
	base := filepath.Join(dir, "base")
	built := workloadTree(b, base, *workloadKeys)
	for _, prune := range []bool{false, true} {
		name := "prune=off"
		if prune {
			name = fmt.Sprintf("prune=keep%d", *workloadKeep)
		}
		b.Run(name, func(b *testing.B) {
			if prune && benchPrune == nil {
				b.Skip("this layout does not prune")
			}
			for b.Loop() {
				b.StopTimer()
				work := filepath.Join(dir, "work")
				if err := os.RemoveAll(work); err != nil {
					b.Fatal(err)
				}
				if err := os.CopyFS(work, os.DirFS(base)); err != nil {
					b.Fatal(err)
				}
				db := openStatsDB(b, work)
				tr := New(db, []byte("s/"))
				r := rand.New(rand.NewPCG(uint64(*workloadKeys), 7))
				size := uint64(*workloadKeys)
				v := built
				io0, cpu := db.ioWrite(b), cpuTime()
				var state, batchBytes, nodes int
				var elapsed time.Duration
				for range *workloadCommits {
					cs := make([]Change, 0, *workloadPer)
					for j := range *workloadPer {
						i := r.Uint64N(size)
						if j%10 == 9 {
							i = size
							size++
						}
						cs = append(cs, Change{Key: benchKey(i), Value: benchValue(i, v)})
						state += 32 + len(cs[len(cs)-1].Value)
					}
					start := time.Now()
					batch := db.NewBatch().(*statsBatch)
					if _, err := tr.Commit(batch, v, v+1, cs); err != nil {
						b.Fatal(err)
					}
					if err := db.Write(batch, false); err != nil {
						b.Fatal(err)
					}
					v++
					if prune && v > built+uint64(*workloadKeep) {
						if err := benchPrune(tr, db, v-uint64(*workloadKeep)+1); err != nil {
							b.Fatal(err)
						}
					}
					elapsed += time.Since(start)
					batchBytes += batch.bytes
					nodes += batch.nodePuts
				}
				written := db.ioWrite(b) - io0
				if stats, err := db.db.GetProperty("leveldb.stats"); err == nil {
					b.Logf("after the workload:\n%s", stats)
				}
				cpu = cpuTime() - cpu
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
				disk := settledBytes(b, work)
				db = openStatsDB(b, work)
				if err := db.db.CompactRange(util.Range{}); err != nil {
					b.Fatal(err)
				}
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
				compacted := settledBytes(b, work)
				keys := float64(*workloadCommits * *workloadPer)
				b.ReportMetric(float64(elapsed.Nanoseconds())/keys, "ns/key")
				b.ReportMetric(float64(cpu.Nanoseconds())/keys, "cpu-ns/key")
				b.ReportMetric(float64(nodes)/keys, "nodes/key")
				b.ReportMetric(float64(written)/float64(state), "wamp")
				b.ReportMetric(float64(batchBytes)/keys, "batch-B/key")
				b.ReportMetric(float64(disk)/1e6, "disk-MB")
				b.ReportMetric(float64(compacted)/1e6, "compact-MB")
				b.StartTimer()
			}
		})
	}
}

var (
	bigRun  = flag.Bool("statetree.big", false, "run BenchmarkCommitBig")
	bigKeys = flag.Int("statetree.big.keys", 10_000_000, "keys in BenchmarkCommitBig's tree")
	bigDir  = flag.String("statetree.big.dir", "", "directory BenchmarkCommitBig keeps its tree in and reuses on later runs (default: a temporary one)")
)

// BenchmarkCommitBig is BenchmarkCommit on a tree of -statetree.big.keys
// keys (10,000,000), built once (a bulk load of sorted keys, then a full
// compaction) and reused across the iterations; with -statetree.big.dir it
// is kept there and reused by later runs too. It is skipped unless
// -statetree.big is given: the build takes many minutes and about 2 GB of
// memory. Each iteration commits a block of 1,000 changed keys (900
// updates of random existing keys, 100 new keys) and writes it to
// goleveldb. It reports ns/key, cpu-ns/key, nodes/key and reads/key as
// BenchmarkCommit does.
func BenchmarkCommitBig(b *testing.B) {
	if !*bigRun {
		b.Skip("builds a tree of 10,000,000 keys; run with -statetree.big")
	}
	dir := *bigDir
	if dir == "" {
		dir = b.TempDir()
	}
	marker := filepath.Join(dir, "bench-state")
	var version, size uint64
	if m, err := os.ReadFile(marker); err == nil {
		if _, err := fmt.Sscan(string(m), &version, &size); err != nil {
			b.Fatalf("%s: %v", marker, err)
		}
		b.Logf("reusing the tree in %s: version %d, %d keys", dir, version, size)
	} else {
		size = uint64(*bigKeys)
		version = bigTree(b, filepath.Join(dir, "db"), *bigKeys)
	}
	db := openStatsDB(b, filepath.Join(dir, "db"))
	reads := &countingReader{Reader: db}
	tr := New(reads, []byte("s/"))
	const perBlock, fresh = 1000, 100
	r := rand.New(rand.NewPCG(size, version))
	nodes, blocks := 0, 0
	reads0, cpu := reads.gets.Load(), cpuTime()
	for b.Loop() {
		b.StopTimer()
		cs := make([]Change, 0, perBlock)
		for range perBlock - fresh {
			i := r.Uint64N(size)
			cs = append(cs, Change{Key: benchKey(i), Value: benchValue(i, version)})
		}
		for range fresh {
			cs = append(cs, Change{Key: benchKey(size), Value: benchValue(size, 0)})
			size++
		}
		b.StartTimer()
		batch := db.NewBatch().(*statsBatch)
		if _, err := tr.Commit(batch, version, version+1, cs); err != nil {
			b.Fatal(err)
		}
		if err := db.Write(batch, false); err != nil {
			b.Fatal(err)
		}
		version++
		nodes += batch.nodePuts
		blocks++
	}
	cpu = cpuTime() - cpu
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(marker, fmt.Appendf(nil, "%d %d\n", version, size), 0o600); err != nil {
		b.Fatal(err)
	}
	keys := float64(blocks * perBlock)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/keys, "ns/key")
	b.ReportMetric(float64(cpu.Nanoseconds())/keys, "cpu-ns/key")
	b.ReportMetric(float64(nodes)/keys, "nodes/key")
	b.ReportMetric(float64(reads.gets.Load()-reads0)/keys, "reads/key")
}

// bigTree bulk-loads keys 0..size-1 into a tree in dir like workloadTree,
// without holding every change in memory at once: only the keys, sorted,
// with their indexes. It returns the last version.
func bigTree(b *testing.B, dir string, size int) uint64 {
	b.Helper()
	start := time.Now()
	type entry struct {
		key [32]byte
		i   uint32
	}
	all := make([]entry, size)
	for i := range all {
		all[i] = entry{benchKey(uint64(i)), uint32(i)}
	}
	slices.SortFunc(all, func(x, y entry) int { return bytes.Compare(x.key[:], y.key[:]) })
	db := openStatsDB(b, dir)
	tr := New(db, []byte("s/"))
	const perCommit = 50_000
	v := uint64(0)
	for lo := 0; lo < size; lo += perCommit {
		cs := make([]Change, 0, perCommit)
		for _, e := range all[lo:min(lo+perCommit, size)] {
			cs = append(cs, Change{Key: e.key, Value: benchValue(uint64(e.i), 0)})
		}
		batch := db.NewBatch()
		if _, err := tr.Commit(batch, v, v+1, cs); err != nil {
			b.Fatal(err)
		}
		if err := db.Write(batch, false); err != nil {
			b.Fatal(err)
		}
		v++
	}
	if err := db.db.CompactRange(util.Range{}); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("built a tree of %d keys in %v", size, time.Since(start).Round(time.Second))
	return v
}
