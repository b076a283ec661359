package crypto_test

import (
	"flag"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
)

// seedFlag replays a randomised test: go test ./crypto/ -run TestX -seed N.
// LEDGERD_TEST_SEED=N does the same without the flag.
var seedFlag = flag.Uint64("seed", 0, "seed for randomised tests (0: LEDGERD_TEST_SEED, else the clock)")

// testRand returns a generator for a randomised test and logs its seed, so
// a failure prints the exact command that replays it.
func testRand(t testing.TB) (*rand.Rand, uint64) {
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
	t.Logf("seed %d (replay: go test ./crypto/ -run '%s' -seed %d)", seed, t.Name(), seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed
}

// keyFrom derives a key pair from r, so keys replay with the seed.
func keyFrom(t testing.TB, r *rand.Rand) crypto.PrivKey {
	t.Helper()
	var seed [crypto.SeedSize]byte
	for i := range seed {
		seed[i] = byte(r.Uint32())
	}
	k, err := crypto.PrivKeyFromSeed(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fixedKey is key number i of a fixed, seed-independent set.
func fixedKey(t testing.TB, i int) crypto.PrivKey {
	t.Helper()
	seed := crypto.Sum([]byte("crypto_test/key/" + strconv.Itoa(i)))
	k, err := crypto.PrivKeyFromSeed(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}
