package wal

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// The crash test runs its own test binary as a child that appends synced
// records and reports each one on a pipe; the parent kills it with SIGKILL
// at a random point and checks, after reopening, that every record the
// child reported is present and intact.

const (
	envCrashDir  = "LEDGERD_WAL_CRASH_DIR"
	envCrashSeed = "LEDGERD_WAL_CRASH_SEED"
	crashSegSize = 8 << 10 // small, so the child rotates segments often
)

// crashRecord is record i of the child's stream: heights advance every
// eight records, and every 16th record is large enough to take several
// write system calls' worth of page cache.
func crashRecord(i int) Record {
	d := payload(i)
	if i%16 == 5 {
		d = make([]byte, 5000+i%300)
		for j := range d {
			d[j] = byte(i*31 + j)
		}
	}
	return Record{Height: uint64(i/8 + 1), Kind: KindMessage, Data: d}
}

// TestCrashChild is the child's body; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("child of TestCrashKill only")
	}
	report := os.NewFile(3, "report")
	l, err := OpenWithOptions(dir, Options{SegmentSize: crashSegSize, Logger: quiet})
	if err != nil {
		fmt.Fprintf(os.Stderr, "child open: %v\n", err)
		os.Exit(2)
	}
	next := len(allRecords(t, dir))
	deadline := time.Now().Add(20 * time.Second) // never outlive a lost parent for long
	for i := next; time.Now().Before(deadline); i++ {
		if err := l.Append(crashRecord(i), true); err != nil {
			fmt.Fprintf(os.Stderr, "child append %d: %v\n", i, err)
			os.Exit(2)
		}
		if _, err := fmt.Fprintf(report, "%d\n", i); err != nil {
			os.Exit(0) // the parent is gone
		}
	}
	os.Exit(0)
}

func TestCrashKill(t *testing.T) {
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
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	reported := -1
	for round := range 4 {
		kill := 1 + rng.IntN(120) // reports to wait for before the kill
		last := runAndKill(t, dir, kill, seed)
		if last < reported {
			t.Fatalf("seed %d round %d: child reported %d, below the %d already reported", seed, round, last, reported)
		}
		reported = last

		l, err := OpenWithOptions(dir, Options{SegmentSize: crashSegSize, Logger: quiet})
		if err != nil {
			t.Fatalf("seed %d round %d: reopen after kill: %v", seed, round, err)
		}
		got := allRecords(t, dir)
		if len(got) <= reported {
			t.Fatalf("seed %d round %d: %d records after the kill, but the child reported record %d synced",
				seed, round, len(got), reported)
		}
		for i, r := range got {
			if !sameRecords([]Record{r}, []Record{crashRecord(i)}) {
				t.Fatalf("seed %d round %d: record %d is not what the child wrote", seed, round, i)
			}
		}
		// Replay sees the same records for the last height.
		h := got[len(got)-1].Height
		var want []Record
		for _, r := range got {
			if r.Height == h {
				want = append(want, r)
			}
		}
		if !sameRecords(replayed(t, l, h), want) {
			t.Fatalf("seed %d round %d: Replay(%d) differs from the log", seed, round, h)
		}
		t.Logf("round %d: killed after %d reports; %d records, %d reported, %d bytes cut",
			round, kill, len(got), reported+1, l.Repaired())
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runAndKill starts the child on dir, SIGKILLs it once it has reported
// kill records, and returns the highest record number it reported.
func runAndKill(t *testing.T, dir string, kill int, seed uint64) int {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashDir+"="+dir)
	cmd.ExtraFiles = []*os.File{pw}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		pw.Close()
		t.Fatal(err)
	}
	pw.Close() // the child holds the write end now
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
		// Keep reading: whatever the child wrote before it died was synced.
	}
	err = cmd.Wait()
	if n < kill {
		t.Fatalf("seed %d: child exited after %d reports (%v), before the kill", seed, n, err)
	}
	return last
}
