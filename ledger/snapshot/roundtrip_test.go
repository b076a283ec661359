package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/internal/testkit/testseed"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/ledgerd/ledgerd/ledger/store"
)

var testGenesisHash = crypto.Sum([]byte("snapshot test genesis"))

// chainFixture is a real ledger store in LevelDB with a state of many
// accounts and some staking records, and its snapshot on disk.
type chainFixture struct {
	c     *ledgertest.Chain
	src   *store.Store
	st    *ledger.State // the state the snapshot is of
	snaps *Store
	m     *Manifest
}

// accountsEnv overrides the number of accounts of the round-trip tests.
const accountsEnv = "LEDGERD_SNAPSHOT_TEST_ACCOUNTS"

func fixtureAccounts(t testing.TB) int {
	if s := os.Getenv(accountsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("%s=%q: %v", accountsEnv, s, err)
		}
		return n
	}
	return 20_000
}

// newChainFixture makes a chain of n accounts in LevelDB, applies blocks
// with transfers, delegations and an undelegation, and snapshots the
// state after the last into a snapshot store.
func newChainFixture(t testing.TB, n int) *chainFixture {
	t.Helper()
	c := ledgertest.NewChain(4, n, 1<<40)
	db, err := kv.OpenLevel(filepath.Join(t.TempDir(), "src"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	src := store.Open(db)
	if _, err := src.Init(c.Genesis, c.Balances, c.Records, testGenesisHash); err != nil {
		t.Fatal(err)
	}
	f := &chainFixture{c: c, src: src}
	for range 4 {
		f.st = f.applyBlock(t, src)
	}
	snaps, err := OpenStore(filepath.Join(t.TempDir(), "snapshots"), 2)
	if err != nil {
		t.Fatal(err)
	}
	f.snaps = snaps
	f.m, err = snaps.Create(context.Background(), src.StateTree(), store.StateVersion(f.st.Height), f.st.Height, f.st.AppHash)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// applyBlock builds the next block on s's latest state (the same on
// every store of the chain at that height) and applies it to s: 60
// transfers, and staking transactions of the first accounts in the
// first blocks (delegations below a unit of power, so that the validator
// set keeps its keys' order, then an undelegation).
func (f *chainFixture) applyBlock(t testing.TB, s *store.Store) *ledger.State {
	t.Helper()
	st := s.State()
	var last *ledger.Commit
	if st.Height > 0 {
		var err error
		if last, err = s.Commit(st.Height); err != nil {
			t.Fatal(err)
		}
	}
	var txs []*ledger.Tx
	n := len(f.c.Accounts)
	for i := range 60 {
		k := f.c.Accounts[(int(st.Height)*61+i*7)%n]
		if st.Height == 1 && i == 0 {
			k = f.c.Accounts[0] // who delegated in block 1
		}
		a, err := s.Reader().Account(k.PubKey().Address())
		if err != nil {
			t.Fatal(err)
		}
		op := f.c.ValKeys[i%len(f.c.ValKeys)].PubKey().Address()
		switch {
		case st.Height == 0 && i < 8:
			txs = append(txs, ledgertest.Delegate(k, op, 500, 1, a.Nonce))
		case st.Height == 1 && i == 0:
			txs = append(txs, ledgertest.Undelegate(k, f.c.ValKeys[0].PubKey().Address(), 100, 1, a.Nonce))
		default:
			to := f.c.Accounts[(i*131+int(st.Height))%n].PubKey().Address()
			txs = append(txs, ledgertest.Transfer(k, to, 1+uint64(i), 1, a.Nonce))
		}
	}
	b := f.c.NextBlock(st, txs, last, int(st.Height))
	next, res, err := s.Apply(b, f.c.Commit(b))
	if err != nil {
		t.Fatalf("block %d: %v", b.Height(), err)
	}
	for _, r := range res.Receipts {
		if r.Error != "" {
			t.Fatalf("block %d: a transaction failed: %s", b.Height(), r.Error)
		}
	}
	return next
}

// chunks returns the snapshot's chunks as the store serves them.
func (f *chainFixture) chunks(t testing.TB) [][]byte {
	t.Helper()
	out := make([][]byte, len(f.m.Chunks))
	for i := range out {
		var err error
		if out[i], err = f.snaps.Chunk(f.m.Height, i); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// openTarget opens (or reopens) the LevelDB store at dir.
func openTarget(t testing.TB, dir string) (*store.Store, kv.DB) {
	t.Helper()
	db, err := kv.OpenLevel(dir)
	if err != nil {
		t.Fatal(err)
	}
	return store.Open(db), db
}

// restoreInto restores the fixture's snapshot into dst, adding the chunks
// in order, and finishes the restore with the source's state, block and
// commit (which state sync takes from verified headers).
func (f *chainFixture) restoreInto(t testing.TB, dst *store.Store, order []int) {
	t.Helper()
	imp, err := dst.BeginRestore(f.m.Height, f.m.AppHash, testGenesisHash)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRestorer(f.m, f.st.AppHash, imp)
	if err != nil {
		t.Fatal(err)
	}
	chunks := f.chunks(t)
	for _, i := range order {
		if err := r.Add(chunks[i]); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	b, err := f.src.Block(f.st.Height)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.src.Commit(f.st.Height)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.FinishRestore(f.st, b, c); err != nil {
		t.Fatal(err)
	}
}

// checkSameState checks that dst holds exactly the fixture's state:
// every account and record, through the flat indexes and the state tree.
func (f *chainFixture) checkSameState(t testing.TB, dst *store.Store) {
	t.Helper()
	h := f.st.Height
	if got, err := dst.AppHash(h); err != nil || got != f.st.AppHash {
		t.Fatalf("restored root %s (%v), want %s", got, err, f.st.AppHash)
	}
	for _, k := range f.c.Accounts {
		a := k.PubKey().Address()
		want, err := f.src.Account(h, a)
		if err != nil {
			t.Fatal(err)
		}
		flat, err := dst.Reader().Account(a)
		if err != nil || flat != want {
			t.Fatalf("account %s: flat %+v (%v), want %+v", a, flat, err, want)
		}
		tree, err := dst.Account(h, a)
		if err != nil || tree != want {
			t.Fatalf("account %s: tree %+v (%v), want %+v", a, tree, err, want)
		}
	}
	records := func(s *store.Store) (out [][2][]byte) {
		err := s.ReadLatest(func(_ uint64, r store.Records) error {
			return r.Iterate(nil, func(k, v []byte) error {
				out = append(out, [2][]byte{k, v})
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want, got := records(f.src), records(dst)
	if len(want) < 10 || len(got) != len(want) {
		t.Fatalf("%d records restored, the source has %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i][0], want[i][0]) || !bytes.Equal(got[i][1], want[i][1]) {
			t.Fatalf("record %d: %q differs", i, want[i][0])
		}
		v, err := dst.Record(h, want[i][0])
		if err != nil || !bytes.Equal(v, want[i][1]) {
			t.Fatalf("record %q through the tree: %v", want[i][0], err)
		}
	}
}

// TestRestoreRoundTripLevelDB: a snapshot of a real ledger state taken by
// the producer into its store, restored in a random chunk order into a
// new LevelDB store, gives the same root, every account and record, and
// a store that, reopened, applies the next block exactly as the source.
func TestRestoreRoundTripLevelDB(t *testing.T) {
	f := newChainFixture(t, fixtureAccounts(t))
	rng, _ := testseed.Rand(t)
	order := rng.Perm(len(f.m.Chunks))
	t.Logf("%d accounts, height %d: %d chunks, %d bytes; order %v", len(f.c.Accounts), f.m.Height, len(f.m.Chunks), f.m.TotalBytes(), order)

	dir := filepath.Join(t.TempDir(), "dst")
	dst, db := openTarget(t, dir)
	f.restoreInto(t, dst, order)
	f.checkSameState(t, dst)
	db.Close()

	dst, db = openTarget(t, dir)
	defer db.Close()
	st, err := dst.Init(f.c.Genesis, f.c.Balances, f.c.Records, testGenesisHash)
	if err != nil {
		t.Fatal(err)
	}
	if st.AppHash != f.st.AppHash || st.Height != f.st.Height || dst.Base() != f.st.Height {
		t.Fatalf("reopened at %v, base %d; want %v", st, dst.Base(), f.st)
	}
	f.checkSameState(t, dst)
	for range 2 {
		want := f.applyBlock(t, f.src)
		b, _ := f.src.Block(want.Height)
		c, _ := f.src.Commit(want.Height)
		got, _, err := dst.Apply(b, c)
		if err != nil {
			t.Fatalf("the restored store refuses block %d: %v", b.Height(), err)
		}
		if got.AppHash != want.AppHash {
			t.Fatalf("block %d: restored store's app hash %s, source's %s", b.Height(), got.AppHash, want.AppHash)
		}
	}
}

// TestRealChunksRejectedOnArrival runs the corruptions of
// TestVerifyChunkRejects on chunks of a real ledger state, through a
// restore into LevelDB: each is refused with its reason and nothing is
// imported; the genuine chunks then restore the state.
func TestRealChunksRejectedOnArrival(t *testing.T) {
	f := newChainFixture(t, fixtureAccounts(t))
	chunks := f.chunks(t)
	later := *f.m
	later.Height++
	stale := mutate(t, chunks[1], func(c *Chunk) { c.Height++ })
	dst, db := openTarget(t, filepath.Join(t.TempDir(), "dst"))
	defer db.Close()
	imp, err := dst.BeginRestore(f.m.Height, f.m.AppHash, testGenesisHash)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRestorer(f.m, f.st.AppHash, imp)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte) []byte { b = bytesClone(b); b[len(b)-1] ^= 0x40; return b }
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"value", mutate(t, chunks[0], func(c *Chunk) { c.Leaves[5].Value = flip(c.Leaves[5].Value) }), ErrChunkProof},
		{"meta", mutate(t, chunks[0], func(c *Chunk) { c.Leaves[5].Meta = flip(c.Leaves[5].Meta) }), ErrChunkLeaves},
		{"key", mutate(t, chunks[0], func(c *Chunk) { c.Leaves[5].Key[20] ^= 4 }), ErrChunkLeaves},
		{"sibling", mutate(t, chunks[1], func(c *Chunk) { c.Siblings[0][31] ^= 1 }), ErrChunkProof},
		{"truncated", chunks[2][:len(chunks[2])-10], ErrChunkMalformed},
		{"oversized", append(bytesClone(chunks[2]), make([]byte, MaxChunkBytes)...), ErrChunkTooLarge},
		{"wrong index", mutate(t, chunks[0], func(c *Chunk) { c.Index = 1 }), ErrChunkPosition},
		{"stale height", stale, ErrChunkStale},
	}
	for _, tc := range cases {
		if err := r.Add(tc.raw); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if p := r.Progress(); p.Chunks != 0 || len(r.Missing()) != len(chunks) {
		t.Fatalf("after bad chunks only: %+v", p)
	}
	if v, err := dst.StateTree().Latest(); err != nil || v != 0 {
		t.Fatalf("the tree holds version %d (%v) after bad chunks only", v, err)
	}
	for _, raw := range chunks {
		if err := r.Add(raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
}

// restoreChild restores the snapshot at height of the snapshot store
// snapDir into the LevelDB store at dbDir, in the chunk order given,
// printing "imported I" after each chunk. After stopAfter chunks (or,
// when it is the chunk count, after Finish), it prints "stopped" and
// waits, to be killed.
func restoreChild(args []string) error {
	if len(args) != 5 {
		return fmt.Errorf("restore child: %d arguments", len(args))
	}
	snapDir, dbDir := args[0], args[1]
	height, err1 := strconv.ParseUint(args[2], 10, 64)
	stopAfter, err2 := strconv.Atoi(args[3])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	var order []int
	for _, s := range strings.Split(args[4], ",") {
		i, err := strconv.Atoi(s)
		if err != nil {
			return err
		}
		order = append(order, i)
	}
	snaps, err := OpenStore(snapDir, 10)
	if err != nil {
		return err
	}
	m, err := snaps.Manifest(height)
	if err != nil {
		return err
	}
	db, err := kv.OpenLevel(dbDir)
	if err != nil {
		return err
	}
	s := store.Open(db)
	imp, err := s.BeginRestore(height, m.AppHash, testGenesisHash)
	if err != nil {
		return err
	}
	r, err := NewRestorer(m, m.AppHash, imp)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	stop := func() error {
		fmt.Fprintln(out, "stopped")
		out.Flush()
		select {} // until killed
	}
	for n, i := range order {
		if n == stopAfter {
			return stop()
		}
		raw, err := snaps.Chunk(height, i)
		if err != nil {
			return err
		}
		if err := r.Add(raw); err != nil {
			return err
		}
		fmt.Fprintf(out, "imported %d\n", i)
		out.Flush()
	}
	if err := r.Finish(); err != nil {
		return err
	}
	return stop()
}

// TestRestoreKilledThenRestarted kills a process restoring a snapshot
// into LevelDB (SIGKILL), at a seeded point (after some chunks, or after
// the tree's top is written but before FinishRestore), twice over; each
// time the store reopens refusing to start (ErrRestoreIncomplete), and
// in the end a new restore completes with the right state.
func TestRestoreKilledThenRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	f := newChainFixture(t, fixtureAccounts(t))
	rng, seed := testseed.Rand(t)
	dir := filepath.Join(t.TempDir(), "dst")
	for round := range 2 {
		order := rng.Perm(len(f.m.Chunks))
		stopAfter := 1 + rng.IntN(len(order)) // 1 .. all chunks (then Finish)
		runRestoreChild(t, f, dir, order, stopAfter)
		dst, db := openTarget(t, dir)
		if _, err := dst.Init(f.c.Genesis, f.c.Balances, f.c.Records, testGenesisHash); !errors.Is(err, store.ErrRestoreIncomplete) {
			t.Fatalf("seed %d round %d: Init after the kill: %v", seed, round, err)
		}
		if h, ok, err := dst.RestoreUnderway(); err != nil || !ok || h != f.m.Height {
			t.Fatalf("seed %d round %d: RestoreUnderway = %d, %v, %v", seed, round, h, ok, err)
		}
		db.Close()
		t.Logf("round %d: killed after %d of %d chunks", round, stopAfter, len(order))
	}
	dst, db := openTarget(t, dir)
	defer db.Close()
	f.restoreInto(t, dst, rng.Perm(len(f.m.Chunks)))
	f.checkSameState(t, dst)
	if _, err := store.Open(db).Init(f.c.Genesis, f.c.Balances, f.c.Records, testGenesisHash); err != nil {
		t.Fatalf("Init after the restore: %v", err)
	}
}

// runRestoreChild runs restoreChild and kills it once it says it stopped.
func runRestoreChild(t *testing.T, f *chainFixture, dir string, order []int, stopAfter int) {
	t.Helper()
	ord := make([]string, len(order))
	for i, o := range order {
		ord[i] = strconv.Itoa(o)
	}
	spec := strings.Join([]string{"restore", f.snaps.dir, dir, strconv.FormatUint(f.m.Height, 10), strconv.Itoa(stopAfter), strings.Join(ord, ",")}, " ")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+spec)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	imported := 0
	for sc.Scan() && sc.Text() != "stopped" {
		imported++
	}
	if sc.Text() != "stopped" || imported != stopAfter {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child stopped after %d chunks, want %d (%v)", imported, stopAfter, sc.Err())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}
