package crypto

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Sizes of keys and signatures in bytes.
const (
	PubKeySize    = ed25519.PublicKeySize
	PrivKeySize   = ed25519.PrivateKeySize
	SeedSize      = ed25519.SeedSize
	SignatureSize = ed25519.SignatureSize
)

// verifyOpts is the single verification rule set used everywhere.
var verifyOpts = &ed25519.Options{Verify: ed25519.VerifyOptionsZIP_215}

// PubKey is an ed25519 public key.
type PubKey [PubKeySize]byte

// PrivKey is an ed25519 private key (seed followed by public key).
type PrivKey [PrivKeySize]byte

// Signature is an ed25519 signature.
type Signature [SignatureSize]byte

// GenerateKey returns a new key pair drawn from r (crypto/rand when nil).
func GenerateKey(r io.Reader) (PrivKey, error) {
	if r == nil {
		r = rand.Reader
	}
	_, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return PrivKey{}, fmt.Errorf("generate ed25519 key: %w", err)
	}
	var k PrivKey
	copy(k[:], priv)
	return k, nil
}

// PrivKeyFromSeed derives the key pair for a 32-byte seed.
func PrivKeyFromSeed(seed []byte) (PrivKey, error) {
	if len(seed) != SeedSize {
		return PrivKey{}, fmt.Errorf("ed25519 seed: want %d bytes, got %d", SeedSize, len(seed))
	}
	var k PrivKey
	copy(k[:], ed25519.NewKeyFromSeed(seed))
	return k, nil
}

// Seed returns the 32-byte seed the key was derived from.
func (k PrivKey) Seed() []byte { return bytes.Clone(k[:SeedSize]) }

// PubKey returns the public half of the key.
func (k PrivKey) PubKey() PubKey {
	var p PubKey
	copy(p[:], k[SeedSize:])
	return p
}

// Sign signs msg, which callers build with SignBytes.
func (k PrivKey) Sign(msg []byte) Signature {
	var s Signature
	copy(s[:], ed25519.Sign(ed25519.PrivateKey(k[:]), msg))
	return s
}

// Verify reports whether sig is a valid signature of msg by p.
func (p PubKey) Verify(msg []byte, sig Signature) bool {
	return ed25519.VerifyWithOptions(ed25519.PublicKey(p[:]), msg, sig[:], verifyOpts)
}

// Address returns the account address of p.
func (p PubKey) Address() Address { return AddressFromPubKey(p) }

// String returns the key in lower-case hex.
func (p PubKey) String() string { return hex.EncodeToString(p[:]) }

// IsZero reports whether p is all zeros (unset).
func (p PubKey) IsZero() bool { return p == PubKey{} }

// MarshalText encodes the key as hex.
func (p PubKey) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText decodes a hex key.
func (p *PubKey) UnmarshalText(b []byte) error { return decodeHexFixed("public key", b, p[:]) }

// PubKeyFromHex parses a hex-encoded public key.
func PubKeyFromHex(s string) (PubKey, error) {
	var p PubKey
	err := p.UnmarshalText([]byte(s))
	return p, err
}

// String returns the signature in lower-case hex.
func (s Signature) String() string { return hex.EncodeToString(s[:]) }

// MarshalText encodes the signature as hex.
func (s Signature) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a hex signature.
func (s *Signature) UnmarshalText(b []byte) error { return decodeHexFixed("signature", b, s[:]) }

// MarshalJSON never reveals the key; private keys reach disk only through
// the key files of package privval (0600) and the wallet's encrypted keystore.
func (k PrivKey) MarshalJSON() ([]byte, error) {
	return nil, errors.New("crypto: refusing to marshal a private key to JSON")
}

// MarshalText is unsupported for private keys, for the same reason.
func (k PrivKey) MarshalText() ([]byte, error) {
	return nil, errors.New("crypto: refusing to marshal a private key to text")
}

var _ json.Marshaler = PrivKey{}

func decodeHexFixed(what string, src []byte, dst []byte) error {
	if len(src) != 2*len(dst) {
		return fmt.Errorf("%s: want %d hex characters, got %d", what, 2*len(dst), len(src))
	}
	if _, err := hex.Decode(dst, src); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
