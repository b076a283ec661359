package privval

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
)

// The crash test runs its own test binary as a child validator that signs
// an ever-higher sequence of votes through a FileStateStore and reports
// each signature it released on a pipe; the parent SIGKILLs it at a random
// point, restarts a signer on the same files, and checks that every
// reported vote's (height, round, step) is now refused for any other block.

const (
	envChildHome = "LEDGERD_PRIVVAL_CRASH_HOME"
	envCrashSeed = "LEDGERD_PRIVVAL_CRASH_SEED"
)

// crashVote is vote i of the child's sequence: prevote then precommit at
// each height.
func crashVote(i int, blk byte) *ledger.Vote {
	t := ledger.Prevote
	if i%2 == 1 {
		t = ledger.Precommit
	}
	return &ledger.Vote{Type: t, Height: uint64(1 + i/2), BlockID: block(blk)}
}

// crashIndex is the position in the sequence of the vote ls records.
func crashIndex(ls LastSigned) int {
	if ls.Height == 0 {
		return -1
	}
	i := int(ls.Height-1) * 2
	if ls.Step == StepPrecommit {
		i++
	}
	return i
}

func TestCrashChild(t *testing.T) {
	home := os.Getenv(envChildHome)
	if home == "" {
		t.Skip("child of TestCrashKillNeverDoubleSigns only")
	}
	report := os.NewFile(3, "report")
	key, err := LoadKeyFile(filepath.Join(home, "key.json"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	s, err := New(key, NewFileStateStore(filepath.Join(home, "state.json")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	deadline := time.Now().Add(20 * time.Second)
	for i := crashIndex(s.LastSigned()) + 1; time.Now().Before(deadline); i++ {
		if err := s.SignVote(chain, crashVote(i, 1)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		if _, err := fmt.Fprintf(report, "%d\n", i); err != nil {
			os.Exit(0)
		}
	}
	os.Exit(0)
}

func TestCrashKillNeverDoubleSigns(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(envCrashSeed); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (rerun with %s=%d)", seed, envCrashSeed, seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	home := t.TempDir()
	key, err := LoadOrGenKeyFile(filepath.Join(home, "key.json"))
	if err != nil {
		t.Fatal(err)
	}
	reported := -1
	for round := range 4 {
		kill := 1 + rng.IntN(60)
		last := runChildAndKill(t, home, kill, seed)
		reported = max(reported, last)

		s, err := New(key, NewFileStateStore(filepath.Join(home, "state.json")))
		if err != nil {
			t.Fatalf("seed %d round %d: restart after kill: %v", seed, round, err)
		}
		if got := crashIndex(s.LastSigned()); got < reported {
			t.Fatalf("seed %d round %d: state records vote %d, but the child released vote %d", seed, round, got, reported)
		}
		for i := 0; i <= reported; i++ {
			if err := s.SignVote(chain, crashVote(i, 2)); !errors.Is(err, ErrDoubleSign) {
				t.Fatalf("seed %d round %d: conflicting vote %d after restart: err = %v, want ErrDoubleSign", seed, round, i, err)
			}
		}
		t.Logf("round %d: killed after %d reports; %d votes released", round, kill, reported+1)
	}
}

// runChildAndKill starts the child validator, SIGKILLs it once it has
// reported kill signatures, and returns the highest vote it reported.
func runChildAndKill(t *testing.T, home string, kill int, seed uint64) int {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChildHome+"="+home)
	cmd.ExtraFiles = []*os.File{pw}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		pw.Close()
		t.Fatal(err)
	}
	pw.Close()
	watchdog := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer watchdog.Stop()

	last, n := -1, 0
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		i, err := strconv.Atoi(sc.Text())
		if err != nil {
			t.Fatalf("seed %d: child reported %q", seed, sc.Text())
		}
		last = i
		if n++; n == kill {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	if n < kill {
		t.Fatalf("seed %d: child exited after %d reports (%v), before the kill", seed, n, err)
	}
	return last
}
