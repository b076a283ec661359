package store

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

const childEnv = "LEDGERD_STORE_CRASH_CHILD_DIR"

// crashChain is the chain the crash child writes: 4 validators, 64 accounts.
func crashChain() *ledgertest.Chain { return ledgertest.NewChain(4, 64, 1<<40) }

// TestMain lets the test binary act as the crash child.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := crashChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild commits blocks of 400 transfers into the LevelDB store in dir,
// continuing from whatever height it holds, and prints "committed H" after
// each Apply has returned (the batch is synced). It runs until killed.
func crashChild(dir string) error {
	c := crashChain()
	db, err := kv.OpenLevel(dir)
	if err != nil {
		return err
	}
	s := Open(db)
	st, err := s.Init(c.Genesis, c.Balances, c.Records, genesisHash)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	for {
		var last *ledger.Commit
		if st.Height > 0 {
			if last, err = s.Commit(st.Height); err != nil {
				return err
			}
		}
		txs := make([]*ledger.Tx, 0, 400)
		for i := 0; i < 400; i++ {
			from := c.Accounts[i%len(c.Accounts)]
			acc, err := s.Account(st.Height, from.PubKey().Address())
			if err != nil {
				return err
			}
			to := c.Accounts[(i+1)%len(c.Accounts)].PubKey().Address()
			txs = append(txs, ledgertest.Transfer(from, to, 1+uint64(i), 1, acc.Nonce+uint64(i/len(c.Accounts))))
		}
		b := c.NextBlock(st, txs, last, int(st.Height))
		if st, _, err = s.Apply(b, c.Commit(b)); err != nil {
			return err
		}
		fmt.Fprintf(out, "committed %d\n", st.Height)
		out.Flush()
	}
}

// TestKilledMidCommitReopensIntact kills a process that is committing
// blocks into LevelDB with SIGKILL at a seeded moment, three times over, and
// checks each time that the store reopens at a height at least as high as
// the last one the child reported durable, with every block readable and
// every stored app hash reproduced by replaying the stored blocks.
func TestKilledMidCommitReopensIntact(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	seed := testSeed(t)
	rng := ledgertest.Seed(seed)
	dir := t.TempDir()
	c := crashChain()
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+dir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a seeded number of further commits have been reported.
		target := 2 + rng.IntN(6)
		sc := bufio.NewScanner(stdout)
		var reported uint64
		for n := 0; n < target && sc.Scan(); n++ {
			h, err := strconv.ParseUint(strings.TrimPrefix(sc.Text(), "committed "), 10, 64)
			if err != nil {
				t.Fatalf("child said %q", sc.Text())
			}
			reported = h
		}
		if reported == 0 {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("seed %d: child reported nothing", seed)
		}
		// The child is busy building or writing the next block now.
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()

		db, err := kv.OpenLevel(dir)
		if err != nil {
			t.Fatalf("seed %d round %d: reopen: %v", seed, round, err)
		}
		s := Open(db)
		st, err := s.Init(c.Genesis, c.Balances, c.Records, genesisHash)
		if err != nil {
			t.Fatalf("seed %d round %d: reopen state: %v", seed, round, err)
		}
		if st.Height < reported {
			t.Fatalf("seed %d round %d: reopened at height %d, child reported %d durable", seed, round, st.Height, reported)
		}
		if _, err := s.Block(st.Height + 1); err == nil {
			t.Fatalf("seed %d round %d: a block above the state height is visible", seed, round)
		}
		// Replay every stored block into a fresh store; app hashes must match.
		r, _ := newStore(t, kv.NewMem(), c)
		for h := uint64(1); h <= st.Height; h++ {
			b, err := s.Block(h)
			if err != nil {
				t.Fatalf("seed %d round %d: block %d: %v", seed, round, h, err)
			}
			cm, err := s.Commit(h)
			if err != nil {
				t.Fatalf("seed %d round %d: commit %d: %v", seed, round, h, err)
			}
			rs, _, err := r.Apply(b, cm)
			if err != nil {
				t.Fatalf("seed %d round %d: replay %d: %v", seed, round, h, err)
			}
			want, _ := s.AppHash(h)
			if rs.AppHash != want {
				t.Fatalf("seed %d round %d: height %d app hash %s, replay gives %s", seed, round, h, want, rs.AppHash)
			}
		}
		t.Logf("round %d: killed after height %d was reported; reopened at %d", round, reported, st.Height)
		db.Close()
	}
}
