package crypto

import (
	"crypto/sha256"
	"encoding/hex"
)

// HashSize is the size of a Hash in bytes.
const HashSize = sha256.Size

// Hash is a SHA-256 digest.
type Hash [HashSize]byte

// Sum returns the SHA-256 digest of b.
func Sum(b []byte) Hash { return sha256.Sum256(b) }

// String returns the hash in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zeros (the empty hash).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText encodes the hash as hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes a hex hash, accepting an optional 0x prefix.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) >= 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X') {
		b = b[2:]
	}
	return decodeHexFixed("hash", b, h[:])
}

// HashFromHex parses a hex hash, with or without a 0x prefix.
func HashFromHex(s string) (Hash, error) {
	var h Hash
	err := h.UnmarshalText([]byte(s))
	return h, err
}
