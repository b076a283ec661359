package crypto

import (
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// BatchVerifier checks many signatures at once, which costs markedly less
// per signature than verifying them one by one (see BenchmarkVerify).
// The result is identical to calling PubKey.Verify on every entry.
// A BatchVerifier is not safe for concurrent use.
type BatchVerifier struct {
	v *ed25519.BatchVerifier
	n int
}

// NewBatchVerifier returns an empty verifier sized for about n entries.
func NewBatchVerifier(n int) *BatchVerifier {
	return &BatchVerifier{v: ed25519.NewBatchVerifierWithCapacity(n)}
}

// Add queues one (key, message, signature) triple.
func (b *BatchVerifier) Add(p PubKey, msg []byte, sig Signature) {
	b.v.AddWithOptions(ed25519.PublicKey(p[:]), msg, sig[:], verifyOpts)
	b.n++
}

// Len is the number of queued entries.
func (b *BatchVerifier) Len() int { return b.n }

// Verify checks every queued entry. ok is true only when all are valid (and
// at least one was queued); valid[i] says whether entry i verified.
func (b *BatchVerifier) Verify() (ok bool, valid []bool) {
	if b.n == 0 {
		return false, nil
	}
	return b.v.Verify(nil)
}

// Reset empties the verifier for reuse.
func (b *BatchVerifier) Reset() {
	b.v.Reset()
	b.n = 0
}
