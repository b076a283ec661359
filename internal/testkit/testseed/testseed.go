// Package testseed gives randomised tests a seed that is printed and can be
// replayed: `go test ./pkg -run TestX -seed N`, or LEDGERD_TEST_SEED=N.
// Importing it registers the -seed flag in the test binary.
package testseed

import (
	"flag"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("seed", 0, "seed for randomised tests (0: LEDGERD_TEST_SEED, else the clock)")

// Seed returns the seed to use and logs the command that replays it.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		if s := os.Getenv("LEDGERD_TEST_SEED"); s != "" {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatalf("LEDGERD_TEST_SEED=%q: %v", s, err)
			}
			seed = v
		}
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay: go test -run '^%s$' -seed %d)", seed, t.Name(), seed)
	return seed
}

// Rand returns a generator seeded by Seed, and the seed.
func Rand(t testing.TB) (*rand.Rand, uint64) {
	t.Helper()
	seed := Seed(t)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed
}
