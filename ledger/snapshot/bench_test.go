package snapshot

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/statetree"
	"github.com/ledgerd/ledgerd/ledger/store"
)

// benchState is a state tree of random accounts in LevelDB, built once
// per size and process, and its snapshot.
type benchState struct {
	tree    *statetree.Tree
	version uint64
	root    [32]byte
	snaps   *Store // holds the snapshot at height benchHeight
	m       *Manifest
	chunks  [][]byte
}

const benchHeight = 100

var benchStates = map[int]*benchState{}

// benchDirs are the directories of the benchmark states, which TestMain
// removes when the test binary is done.
var benchDirs []string

func removeBenchStates() {
	for _, d := range benchDirs {
		os.RemoveAll(d)
	}
}

// benchTreeOf returns the state of n accounts, building it on first use:
// the accounts are committed 100,000 per version into a tree in LevelDB
// under the store's prefix, each leaf with its meta, as the ledger store
// writes them.
func benchTreeOf(b *testing.B, n int) *benchState {
	if s, ok := benchStates[n]; ok {
		return s
	}
	b.StopTimer()
	defer b.StartTimer()
	dir, err := os.MkdirTemp("", "snapshot-bench-")
	if err != nil {
		b.Fatal(err)
	}
	benchDirs = append(benchDirs, dir)
	db, err := kv.OpenLevel(filepath.Join(dir, "src"))
	if err != nil {
		b.Fatal(err)
	}
	tree := statetree.New(db, []byte("s/"))
	r := rand.New(rand.NewPCG(uint64(n), 1))
	var v uint64
	var root [32]byte
	for done := 0; done < n; {
		batch := db.NewBatch()
		var cs []statetree.Change
		for ; done < n && len(cs) < 100_000; done++ {
			var addr crypto.Address
			for i := range addr {
				addr[i] = byte(r.Uint32())
			}
			acc := ledger.Account{Balance: r.Uint64N(1e15), Nonce: r.Uint64N(1000)}
			cs = append(cs, statetree.Change{Key: ledger.AccountKey(addr), Value: acc.Encode(), Meta: ledger.AccountMeta(addr)})
		}
		if root, err = tree.Commit(batch, v, v+1, cs); err != nil {
			b.Fatal(err)
		}
		if err := db.Write(batch, false); err != nil {
			b.Fatal(err)
		}
		v++
	}
	snaps, err := OpenStore(filepath.Join(dir, "snapshots"), 1)
	if err != nil {
		b.Fatal(err)
	}
	m, err := snaps.Create(context.Background(), tree, v, benchHeight, root)
	if err != nil {
		b.Fatal(err)
	}
	s := &benchState{tree: tree, version: v, root: root, snaps: snaps, m: m}
	for i := range m.Chunks {
		raw, err := snaps.Chunk(benchHeight, i)
		if err != nil {
			b.Fatal(err)
		}
		s.chunks = append(s.chunks, raw)
	}
	benchStates[n] = s
	return s
}

// cpuMeter reports, at the end of a benchmark, the process CPU time per
// operation and the chunk bytes per CPU second, measured over the timed
// loop only (the CPU of untimed setup is left out as well as can be: it
// is measured apart and taken off).
type cpuMeter struct {
	start, untimed time.Duration
	pausedAt       time.Duration
}

func startCPU() *cpuMeter { return &cpuMeter{start: processCPU()} }

func (c *cpuMeter) pause(b *testing.B)  { b.StopTimer(); c.pausedAt = processCPU() }
func (c *cpuMeter) resume(b *testing.B) { c.untimed += processCPU() - c.pausedAt; b.StartTimer() }

func (c *cpuMeter) report(b *testing.B, bytes uint64) {
	cpu := processCPU() - c.start - c.untimed
	if cpu <= 0 || b.N == 0 {
		return
	}
	per := cpu.Seconds() / float64(b.N)
	b.ReportMetric(per, "cpu-s/op")
	b.ReportMetric(float64(bytes)/1e6/per, "MB/cpu-s")
}

// reportShape reports the snapshot's chunk count and mean chunk size.
func reportShape(b *testing.B, m *Manifest) {
	b.ReportMetric(float64(len(m.Chunks)), "chunks")
	b.ReportMetric(float64(m.TotalBytes())/float64(len(m.Chunks))/1024, "KiB/chunk")
}

var benchSizes = []struct {
	name string
	n    int
}{{"accounts=200k", 200_000}, {"accounts=1M", 1_000_000}}

// BenchmarkCreate measures the producer: a snapshot of the whole state
// read from LevelDB, cut, checked against the root and written to files
// with fsync. Bytes are chunk bytes written.
func BenchmarkCreate(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			s := benchTreeOf(b, size.n)
			b.SetBytes(int64(s.m.TotalBytes()))
			cpu := startCPU()
			for i := 0; b.Loop(); i++ {
				snaps, err := OpenStore(b.TempDir(), 1)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := snaps.Create(context.Background(), s.tree, s.version, benchHeight, s.root); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b, s.m.TotalBytes())
			reportShape(b, s.m)
		})
	}
}

// BenchmarkVerifyChunks measures the verification alone: every chunk of
// the snapshot decoded and proved against the app hash.
func BenchmarkVerifyChunks(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			s := benchTreeOf(b, size.n)
			b.SetBytes(int64(s.m.TotalBytes()))
			cpu := startCPU()
			for b.Loop() {
				for _, raw := range s.chunks {
					if _, err := VerifyChunk(s.m, s.root, raw); err != nil {
						b.Fatal(err)
					}
				}
			}
			cpu.report(b, s.m.TotalBytes())
			reportShape(b, s.m)
		})
	}
}

// BenchmarkRestore measures what a joining node does with the chunks it
// fetched: verify each and import it into a new LevelDB ledger store
// (state tree and flat indexes), in random order, then build the top of
// the tree and check the root. Opening and closing the database is not
// timed. Bytes are chunk bytes, so MB/s is the chunk throughput.
func BenchmarkRestore(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			s := benchTreeOf(b, size.n)
			b.SetBytes(int64(s.m.TotalBytes()))
			r := rand.New(rand.NewPCG(1, 2))
			cpu := startCPU()
			for i := 0; b.Loop(); i++ {
				cpu.pause(b)
				db, err := kv.OpenLevel(filepath.Join(b.TempDir(), fmt.Sprint(i)))
				if err != nil {
					b.Fatal(err)
				}
				dst := store.Open(db)
				order := r.Perm(len(s.chunks))
				cpu.resume(b)
				imp, err := dst.BeginRestore(benchHeight, s.root, crypto.Hash{})
				if err != nil {
					b.Fatal(err)
				}
				rs, err := NewRestorer(s.m, s.root, imp)
				if err != nil {
					b.Fatal(err)
				}
				for _, j := range order {
					if err := rs.Add(s.chunks[j]); err != nil {
						b.Fatal(err)
					}
				}
				if err := rs.Finish(); err != nil {
					b.Fatal(err)
				}
				cpu.pause(b)
				db.Close()
				cpu.resume(b)
			}
			cpu.report(b, s.m.TotalBytes())
			reportShape(b, s.m)
		})
	}
}
