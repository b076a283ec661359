package statetree

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledger/kv"
)

// The kill -9 test: a child process (this test binary, re-executed with
// killChildEnv set) commits and prunes in a loop on a LevelDB directory;
// the parent kills it with SIGKILL after a seeded number of store writes
// (commits and prune batches alike), reopens the store, and checks every
// retained version against a reference it computes from the same seed.
// Then it starts the child again, which goes on from the latest version
// (and finishes the cut prune the next time it prunes).

const (
	killChildEnv = "STATETREE_KILL_CHILD" // "dir|log|seed"
	killVersions = 150                    // the child stops here
	killKeys     = 400                    // the key space
)

// killKey is key i of the kill test's key space: hashes, and for the last
// quarter near neighbours of the first keys (sharing 200 bits or more),
// which gives deep paths and moving leaves.
func killKey(seed uint64, i int) [32]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], seed)
	binary.BigEndian.PutUint64(b[8:], uint64(i%300))
	k := sha256.Sum256(b[:])
	if i >= 300 {
		k = withBit(k, 200+i%56, 1-bit(k, 200+i%56))
	}
	return k
}

// killChanges are the changes of version v: a function of (seed, v) only,
// so the parent recomputes any version's contents.
func killChanges(seed, v uint64) []Change {
	r := rand.New(rand.NewPCG(seed, v))
	var cs []Change
	for range 1 + r.IntN(25) {
		c := Change{Key: killKey(seed, r.IntN(killKeys))}
		if r.IntN(4) != 0 {
			c.Value = make([]byte, 1+r.IntN(20))
			for i := range c.Value {
				c.Value[i] = byte(r.Uint32())
			}
			if r.IntN(3) == 0 {
				c.Meta = []byte(fmt.Sprintf("meta %d", v))
			}
		}
		cs = append(cs, c)
	}
	return cs
}

// killPrune says whether the child prunes after committing v, and how many
// versions it keeps.
func killPrune(seed, v uint64) (keep uint64, ok bool) {
	r := rand.New(rand.NewPCG(seed^0xdead, v))
	if r.IntN(3) != 0 {
		return 0, false
	}
	return 1 + r.Uint64N(30), true
}

// printingDB announces every write on stdout before making it, so that
// the parent can kill the child at a chosen one.
type printingDB struct{ kv.DB }

func (p printingDB) Write(b kv.Batch, sync bool) error {
	fmt.Println("W")
	return p.DB.Write(b, sync)
}

// TestKillChild is the child process of TestPruneSurvivesKill9; run alone,
// it skips.
func TestKillChild(t *testing.T) {
	spec := os.Getenv(killChildEnv)
	if spec == "" {
		t.Skip("the child process of TestPruneSurvivesKill9")
	}
	parts := strings.Split(spec, "|")
	seed, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	db, err := kv.OpenLevel(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.OpenFile(parts[1], os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	w := printingDB{db}
	tr := New(db, []byte("s/"), WithCacheBytes(64*nodeOverhead))
	latest, err := tr.Latest()
	if err != nil {
		t.Fatal(err)
	}
	for v := latest + 1; v <= killVersions; v++ {
		b := w.NewBatch()
		root, err := tr.Commit(b, v-1, v, killChanges(seed, v))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(b, true); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(log, "%d %x\n", v, root); err != nil {
			t.Fatal(err)
		}
		if err := log.Sync(); err != nil {
			t.Fatal(err)
		}
		if keep, ok := killPrune(seed, v); ok && v > keep {
			if _, err := tr.Prune(context.Background(), w, v-keep, 5); err != nil {
				t.Fatal(err)
			}
		}
	}
	fmt.Println("DONE")
}

// TestPruneSurvivesKill9 kills the committing and pruning child at seeded
// moments and checks the store after each kill: the latest version is the
// last one logged or the one after (its batch is synced before the log
// line), every retained version holds exactly the reference contents with
// the logged root, and once pruning is finished no node is missing and none
// is left over.
func TestPruneSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; run without -short")
	}
	r, seed := testRand(t)
	dir := t.TempDir()
	dbDir, logPath := filepath.Join(dir, "db"), filepath.Join(dir, "log")
	childSeed := r.Uint64()

	keys := make([][32]byte, killKeys)
	for i := range keys {
		keys[i] = killKey(childSeed, i)
	}
	models := []model{{}}
	m := model{}
	for v := uint64(1); v <= killVersions; v++ {
		m.apply(lastPerKey(killChanges(childSeed, v)))
		models = append(models, m.clone())
	}

	for round := 0; ; round++ {
		if round == 40 {
			t.Fatalf("seed %d: the child did not reach version %d in %d rounds", seed, killVersions, round)
		}
		target := 1 + r.IntN(300)
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%d", killChildEnv, dbDir, logPath, childSeed))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		writes, done := 0, false
		var other []string
		sc := bufio.NewScanner(out)
		for writes < target && sc.Scan() {
			switch line := sc.Text(); line {
			case "W":
				writes++
			case "DONE":
				done = true
			default:
				other = append(other, line)
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait() // killed, or finished
		if writes < target && !done {
			t.Fatalf("seed %d round %d: the child stopped after %d writes:\n%s\n%s", seed, round, writes, strings.Join(other, "\n"), stderr.String())
		}
		latest := checkAfterKill(t, dbDir, logPath, models, keys, seed, round, writes)
		if latest == killVersions && done {
			t.Logf("seed %d: %d rounds", seed, round+1)
			return
		}
	}
}

// checkAfterKill reopens the store the child was killed on and checks it;
// it returns the latest version.
func checkAfterKill(t *testing.T, dbDir, logPath string, models []model, keys [][32]byte, seed uint64, round, writes int) uint64 {
	t.Helper()
	logged := map[uint64][32]byte{}
	var last uint64
	data, err := os.ReadFile(logPath)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var v uint64
		var h string
		if _, err := fmt.Sscanf(line, "%d %s", &v, &h); err != nil {
			continue // a line cut by the kill
		}
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			continue
		}
		logged[v] = [32]byte(b)
		last = max(last, v)
	}
	db, err := kv.OpenLevel(dbDir)
	if err != nil {
		t.Fatalf("seed %d round %d: reopen after a kill: %v", seed, round, err)
	}
	defer db.Close()
	tr := New(db, []byte("s/"), WithCacheBytes(0))
	latest, err := tr.Latest()
	if err != nil {
		t.Fatal(err)
	}
	if latest != last && latest != last+1 {
		t.Fatalf("seed %d round %d: latest version %d, the log ends at %d", seed, round, latest, last)
	}
	oldest, err := tr.Oldest()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d round %d: killed after %d writes; versions %d..%d retained", seed, round, writes, oldest, latest)
	for v := max(oldest, 1); v <= latest; v++ {
		root, err := tr.Root(v)
		if err != nil {
			t.Fatalf("seed %d round %d: Root(%d): %v", seed, round, v, err)
		}
		if want, ok := logged[v]; (ok && root != want) || root != referenceRoot(models[v]) {
			t.Fatalf("seed %d round %d: version %d has root %x (logged %x)", seed, round, v, root, logged[v])
		}
		checkVersion(t, tr, v, models[v], keys, seed)
	}
	if oldest > 0 {
		if _, err := tr.Get(oldest-1, keys[0]); err == nil {
			t.Fatalf("seed %d round %d: version %d below oldest %d is readable", seed, round, oldest-1, oldest)
		}
	}
	// Every other round, finish the prune here; otherwise the child will.
	if round%2 == 0 {
		if _, err := tr.Prune(context.Background(), db, 0, 50); err != nil {
			t.Fatalf("seed %d round %d: finish the prune: %v", seed, round, err)
		}
		checkNoGarbage(t, db, "s/", oldest, latest, seed)
	}
	return latest
}
