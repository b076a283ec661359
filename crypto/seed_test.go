package crypto_test

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/ledgerd/ledgerd/internal/testkit/testseed"

	"github.com/ledgerd/ledgerd/crypto"
)

// testRand returns a seeded generator; the seed is printed and replays
// with -seed (see internal/testkit/testseed).
func testRand(t testing.TB) (*rand.Rand, uint64) { return testseed.Rand(t) }

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
