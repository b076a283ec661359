package crypto_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
)

func TestSignVerify(t *testing.T) {
	k := fixedKey(t, 0)
	other := fixedKey(t, 1)
	msg := crypto.SignBytes(crypto.DomainTx, "chain-a", []byte("pay bob 10"))
	sig := k.Sign(msg)

	if !k.PubKey().Verify(msg, sig) {
		t.Fatal("valid signature rejected")
	}
	if sig2 := k.Sign(msg); sig2 != sig {
		t.Error("ed25519 signing is not deterministic")
	}

	for i := range len(msg) {
		m := bytes.Clone(msg)
		m[i] ^= 0x01
		if k.PubKey().Verify(m, sig) {
			t.Fatalf("signature verifies for the message with byte %d changed", i)
		}
	}
	if k.PubKey().Verify(msg[:len(msg)-1], sig) || k.PubKey().Verify(append(bytes.Clone(msg), 0), sig) {
		t.Fatal("signature verifies for a shortened or extended message")
	}
	for i := range crypto.SignatureSize {
		for bit := range 8 {
			s := sig
			s[i] ^= 1 << bit
			if k.PubKey().Verify(msg, s) {
				t.Fatalf("signature with bit %d of byte %d flipped still verifies", bit, i)
			}
		}
	}
	if other.PubKey().Verify(msg, sig) {
		t.Fatal("signature verifies under another key")
	}
	if (crypto.PubKey{}).Verify(msg, sig) {
		t.Fatal("signature verifies under the zero key")
	}
}

func TestPrivKeyFromSeed(t *testing.T) {
	k := fixedKey(t, 3)
	k2, err := crypto.PrivKeyFromSeed(k.Seed())
	if err != nil {
		t.Fatal(err)
	}
	if k2 != k {
		t.Fatal("key derived from its own seed differs")
	}
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := crypto.PrivKeyFromSeed(make([]byte, n)); err == nil {
			t.Errorf("PrivKeyFromSeed accepted a %d-byte seed", n)
		}
	}
	// Seed returns a copy: changing it must not change the key.
	s := k.Seed()
	s[0] ^= 0xff
	if !bytes.Equal(k.Seed()[1:], s[1:]) || k.Seed()[0] == s[0] {
		t.Fatal("Seed does not return a copy of the seed")
	}
}

func TestGenerateKeyIsUsable(t *testing.T) {
	k, err := crypto.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello")
	if !k.PubKey().Verify(msg, k.Sign(msg)) {
		t.Fatal("generated key cannot sign")
	}
	if _, err := crypto.GenerateKey(bytes.NewReader(make([]byte, 5))); err == nil {
		t.Fatal("GenerateKey succeeded with a reader of 5 bytes")
	}
}

func TestPrivKeyNeverSerialised(t *testing.T) {
	k := fixedKey(t, 0)
	if b, err := json.Marshal(struct{ K crypto.PrivKey }{k}); err == nil {
		t.Fatalf("private key marshalled to JSON: %s", b)
	}
	if b, err := k.MarshalText(); err == nil {
		t.Fatalf("private key marshalled to text: %s", b)
	}
}

func TestTextRoundTrips(t *testing.T) {
	k := fixedKey(t, 0)
	sig := k.Sign([]byte("m"))
	h := crypto.Sum([]byte("m"))
	in := struct {
		P crypto.PubKey
		S crypto.Signature
		H crypto.Hash
		A crypto.Address
	}{k.PubKey(), sig, h, k.PubKey().Address()}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := in
	out.P, out.S, out.H, out.A = crypto.PubKey{}, crypto.Signature{}, crypto.Hash{}, crypto.Address{}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("JSON round trip: got %+v, want %+v", out, in)
	}

	if got, err := crypto.HashFromHex("0x" + h.String()); err != nil || got != h {
		t.Errorf("HashFromHex with 0x prefix: %v, %v", got, err)
	}
	if got, err := crypto.PubKeyFromHex(k.PubKey().String()); err != nil || got != k.PubKey() {
		t.Errorf("PubKeyFromHex: %v, %v", got, err)
	}
	for _, bad := range []string{"", "00", h.String()[1:], h.String() + "00", "zz" + h.String()[2:]} {
		if _, err := crypto.HashFromHex(bad); err == nil {
			t.Errorf("HashFromHex(%q) accepted", bad)
		}
		if _, err := crypto.PubKeyFromHex(bad); err == nil {
			t.Errorf("PubKeyFromHex(%q) accepted", bad)
		}
	}
}

// A signature made under one (domain, chain ID) pair never verifies under
// any other pair.
func TestSignatureDomainSeparation(t *testing.T) {
	k := fixedKey(t, 0)
	domains := []crypto.Domain{crypto.DomainTx, crypto.DomainVote, crypto.DomainProposal}
	chains := []string{"ledgerd-1", "ledgerd-2", "ledgerd-10", "l"}
	payload := []byte("the same payload bytes")
	for _, d1 := range domains {
		for _, c1 := range chains {
			sig := k.Sign(crypto.SignBytes(d1, c1, payload))
			for _, d2 := range domains {
				for _, c2 := range chains {
					got := k.PubKey().Verify(crypto.SignBytes(d2, c2, payload), sig)
					if want := d1 == d2 && c1 == c2; got != want {
						t.Errorf("signed as (%s, %s), verified as (%s, %s): got %v, want %v", d1, c1, d2, c2, got, want)
					}
				}
			}
		}
	}
}

func TestSignBytesKnownSplitsDiffer(t *testing.T) {
	type triple struct {
		d       crypto.Domain
		chain   string
		payload string
	}
	pairs := [][2]triple{
		{{crypto.DomainTx, "ab", "c"}, {crypto.DomainTx, "a", "bc"}},
		{{crypto.DomainTx, "", "abc"}, {crypto.DomainTx, "abc", ""}},
		{{"txa", "b", ""}, {"tx", "ab", ""}},
		{{crypto.DomainVote, "chain", "x"}, {"vote\x05chain", "", "x"}},
		// A chain ID that starts with what looks like a length byte.
		{{"", "\x01a", ""}, {"\x01", "a", ""}},
	}
	for _, p := range pairs {
		a := crypto.SignBytes(p[0].d, p[0].chain, []byte(p[0].payload))
		b := crypto.SignBytes(p[1].d, p[1].chain, []byte(p[1].payload))
		if bytes.Equal(a, b) {
			t.Errorf("%q and %q produce the same sign bytes %q", p[0], p[1], a)
		}
	}
}

// Exhaustively, over every triple of short strings from an alphabet that
// includes the bytes a length prefix is made of, SignBytes is injective.
func TestSignBytesInjective(t *testing.T) {
	alphabet := []byte{0x00, 0x01, 'a'}
	var strs []string
	var gen func(prefix []byte)
	gen = func(prefix []byte) {
		strs = append(strs, string(prefix))
		if len(prefix) == 3 {
			return
		}
		for _, c := range alphabet {
			gen(append(prefix, c))
		}
	}
	gen(nil)
	seen := make(map[string][3]string, len(strs)*len(strs)*len(strs))
	for _, d := range strs {
		for _, c := range strs {
			for _, p := range strs {
				sb := string(crypto.SignBytes(crypto.Domain(d), c, []byte(p)))
				if prev, dup := seen[sb]; dup {
					t.Fatalf("(%q, %q, %q) and (%q, %q, %q) have the same sign bytes", d, c, p, prev[0], prev[1], prev[2])
				}
				seen[sb] = [3]string{d, c, p}
			}
		}
	}
	if len(seen) != len(strs)*len(strs)*len(strs) {
		t.Fatalf("checked %d triples, want %d", len(seen), len(strs)*len(strs)*len(strs))
	}
}

func TestSignBytesLayout(t *testing.T) {
	got := crypto.SignBytes(crypto.DomainVote, "c-1", []byte{0xAA})
	want := append([]byte("ledgerd/sign/v1"), 4, 'v', 'o', 't', 'e', 3, 'c', '-', '1', 0xAA)
	if !bytes.Equal(got, want) {
		t.Fatalf("SignBytes = %q, want %q (the layout is fixed by docs/decisions.md)", got, want)
	}
}

func TestValidateChainID(t *testing.T) {
	for _, ok := range []string{"a", "ledgerd-1", strings.Repeat("x", crypto.MaxChainIDLen), "!~"} {
		if err := crypto.ValidateChainID(ok); err != nil {
			t.Errorf("ValidateChainID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", crypto.MaxChainIDLen+1), "has space", "tab\t", "nul\x00", "del\x7f", "é"} {
		if err := crypto.ValidateChainID(bad); err == nil {
			t.Errorf("ValidateChainID(%q) accepted", bad)
		}
	}
}
