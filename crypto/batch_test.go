package crypto_test

import (
	stded25519 "crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
)

// groupOrder is L, the order of the ed25519 base point, little-endian.
var groupOrder = [32]byte{
	0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
}

// identityPoint is the canonical encoding of the neutral element (y = 1);
// identityNonCanonical encodes the same point as y = p + 1, which ZIP-215
// accepts and RFC 8032 does not.
var (
	identityPoint        = [32]byte{0x01}
	identityNonCanonical = [32]byte{
		0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
	}
)

// sigEntry is one (key, message, signature) triple and the verdict it must get.
type sigEntry struct {
	kind string
	pub  crypto.PubKey
	msg  []byte
	sig  crypto.Signature
	want bool
}

// entryKinds are the good and bad shapes the random mixes draw from.
var entryKinds = []string{"good", "flipped-bit", "other-message", "other-key", "other-chain",
	"s-plus-l", "random-sig", "small-order-key", "zip215-noncanonical-r"}

func makeEntry(t testing.TB, r *rand.Rand, keys []crypto.PrivKey, kind string) sigEntry {
	k := keys[r.IntN(len(keys))]
	payload := make([]byte, r.IntN(200))
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	msg := crypto.SignBytes(crypto.DomainVote, "chain-a", payload)
	e := sigEntry{kind: kind, pub: k.PubKey(), msg: msg, sig: k.Sign(msg)}
	switch kind {
	case "good":
		e.want = true
	case "flipped-bit":
		bit := r.IntN(8 * crypto.SignatureSize)
		e.sig[bit/8] ^= 1 << (bit % 8)
	case "other-message":
		e.msg = append(e.msg, 0)
	case "other-key":
		for e.pub == k.PubKey() {
			e.pub = keys[r.IntN(len(keys))].PubKey()
		}
	case "other-chain":
		e.msg = crypto.SignBytes(crypto.DomainVote, "chain-b", payload)
	case "s-plus-l":
		// Same group element, non-canonical scalar: ZIP-215 requires S < L.
		var carry uint16
		for i := 0; i < 32; i++ {
			v := uint16(e.sig[32+i]) + uint16(groupOrder[i]) + carry
			e.sig[32+i] = byte(v)
			carry = v >> 8
		}
	case "random-sig":
		for i := range e.sig {
			e.sig[i] = byte(r.Uint32())
		}
	case "small-order-key":
		// A = R = identity and S = 0 satisfy the cofactored equation for
		// every message: ZIP-215 accepts it, and must do so everywhere.
		e.pub = identityPoint
		e.sig = crypto.Signature{}
		copy(e.sig[:], identityPoint[:])
		e.want = true
	case "zip215-noncanonical-r":
		e.pub = identityPoint
		e.sig = crypto.Signature{}
		copy(e.sig[:], identityNonCanonical[:])
		e.want = true
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	return e
}

// The batch verifier gives exactly the single-signature verdict for every
// entry, whatever mix of good and bad signatures it holds.
func TestBatchVerifierAgreesWithSingle(t *testing.T) {
	r, seed := testRand(t)
	keys := make([]crypto.PrivKey, 8)
	for i := range keys {
		keys[i] = keyFrom(t, r)
	}
	bv := crypto.NewBatchVerifier(0)
	for round := range 60 {
		n := 1 + r.IntN(40)
		if round%10 == 0 {
			n = 1 + r.IntN(3)
		}
		badRate := r.Float64()
		entries := make([]sigEntry, n)
		for i := range entries {
			kind := "good"
			if r.Float64() < badRate {
				kind = entryKinds[1+r.IntN(len(entryKinds)-1)]
			}
			entries[i] = makeEntry(t, r, keys, kind)
		}
		bv.Reset()
		wantAll := true
		for i, e := range entries {
			single := e.pub.Verify(e.msg, e.sig)
			if single != e.want {
				t.Fatalf("seed %d round %d entry %d (%s): single Verify = %v, want %v", seed, round, i, e.kind, single, e.want)
			}
			wantAll = wantAll && single
			bv.Add(e.pub, e.msg, e.sig)
		}
		if bv.Len() != n {
			t.Fatalf("seed %d round %d: Len = %d, want %d", seed, round, bv.Len(), n)
		}
		ok, valid := bv.Verify()
		if ok != wantAll {
			t.Fatalf("seed %d round %d: batch ok = %v, single verification says %v", seed, round, ok, wantAll)
		}
		if len(valid) != n {
			t.Fatalf("seed %d round %d: %d verdicts for %d entries", seed, round, len(valid), n)
		}
		for i, e := range entries {
			if valid[i] != e.want {
				t.Fatalf("seed %d round %d: batch says entry %d (%s) valid=%v, single says %v", seed, round, i, e.kind, valid[i], e.want)
			}
		}
	}
}

// Every kind of bad entry is reported at its own index, alone in a batch
// of good ones.
func TestBatchVerifierNamesTheBadEntry(t *testing.T) {
	r, seed := testRand(t)
	keys := []crypto.PrivKey{keyFrom(t, r), keyFrom(t, r), keyFrom(t, r)}
	for _, kind := range entryKinds[1:] {
		bad := makeEntry(t, r, keys, kind)
		if bad.want {
			continue
		}
		for _, pos := range []int{0, 5, 9} {
			bv := crypto.NewBatchVerifier(10)
			for i := range 10 {
				e := makeEntry(t, r, keys, "good")
				if i == pos {
					e = bad
				}
				bv.Add(e.pub, e.msg, e.sig)
			}
			ok, valid := bv.Verify()
			if ok {
				t.Fatalf("seed %d: batch with a %s entry at %d verified", seed, kind, pos)
			}
			for i, v := range valid {
				if v != (i != pos) {
					t.Fatalf("seed %d: %s entry at %d: valid[%d] = %v", seed, kind, pos, i, v)
				}
			}
		}
	}
}

func TestBatchVerifierEmpty(t *testing.T) {
	bv := crypto.NewBatchVerifier(4)
	if bv.Len() != 0 {
		t.Fatalf("Len = %d", bv.Len())
	}
	if ok, valid := bv.Verify(); ok || valid != nil {
		t.Fatalf("empty batch: Verify = %v, %v; want false, nil", ok, valid)
	}
	// Reset after use empties it again.
	k := fixedKey(t, 0)
	bv.Add(k.PubKey(), []byte("m"), k.Sign([]byte("m")))
	if ok, _ := bv.Verify(); !ok {
		t.Fatal("one good signature did not verify")
	}
	bv.Reset()
	if ok, valid := bv.Verify(); ok || valid != nil || bv.Len() != 0 {
		t.Fatalf("after Reset: Verify = %v, %v, Len = %d", ok, valid, bv.Len())
	}
}

// ZIP-215 differs from crypto/ed25519 (RFC 8032 with canonical encodings)
// on edge cases; ledgerd uses ZIP-215 alone and the same way in a batch.
// This pins the rule set, so a switch to the standard library (or to a
// batch rule that differs from the single rule) is caught.
func TestZIP215RuleSet(t *testing.T) {
	var sig crypto.Signature
	copy(sig[:], identityNonCanonical[:])
	pub := crypto.PubKey(identityPoint)
	msg := []byte("any message")
	if !pub.Verify(msg, sig) {
		t.Fatal("ZIP-215 rejected a non-canonical R encoding")
	}
	if stded25519.Verify(stded25519.PublicKey(pub[:]), msg, sig[:]) {
		t.Fatal("crypto/ed25519 accepted a non-canonical R encoding; this test no longer shows a difference")
	}
	bv := crypto.NewBatchVerifier(1)
	bv.Add(pub, msg, sig)
	if ok, _ := bv.Verify(); !ok {
		t.Fatal("batch rejected what single verification accepts")
	}
}

var sinkBool bool

// BenchmarkVerify compares one-by-one verification (ours and the standard
// library's) with batch verification; ns/sig is the figure to compare.
func BenchmarkVerify(b *testing.B) {
	const maxN = 1024
	keys := make([]crypto.PrivKey, maxN)
	msgs := make([][]byte, maxN)
	sigs := make([]crypto.Signature, maxN)
	for i := range keys {
		keys[i] = fixedKey(b, i)
		msgs[i] = crypto.SignBytes(crypto.DomainVote, "bench", []byte(fmt.Sprintf("vote %d", i)))
		sigs[i] = keys[i].Sign(msgs[i])
	}
	pubs := make([]crypto.PubKey, maxN)
	for i := range keys {
		pubs[i] = keys[i].PubKey()
	}

	b.Run("single", func(b *testing.B) {
		i := 0
		for b.Loop() {
			sinkBool = pubs[i%maxN].Verify(msgs[i%maxN], sigs[i%maxN])
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/sig")
	})
	b.Run("stdlib", func(b *testing.B) {
		i := 0
		for b.Loop() {
			j := i % maxN
			sinkBool = stded25519.Verify(stded25519.PublicKey(pubs[j][:]), msgs[j], sigs[j][:])
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/sig")
	})
	for _, n := range []int{8, 64, 1024} {
		b.Run(fmt.Sprintf("batch-%d", n), func(b *testing.B) {
			for b.Loop() {
				bv := crypto.NewBatchVerifier(n)
				for j := range n {
					bv.Add(pubs[j], msgs[j], sigs[j])
				}
				ok, _ := bv.Verify()
				if !ok {
					b.Fatal("batch failed")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sig")
		})
	}
}
