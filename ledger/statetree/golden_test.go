package statetree

import (
	"testing"

	lt "github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// TestGoldenProofEncodings pins the binary proof encoding byte for byte:
// light clients verify proofs that nodes of other builds serve.
func TestGoldenProofEncodings(t *testing.T) {
	marshal := func(p *Proof) []byte {
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	reencode := func(b []byte) ([]byte, error) {
		p, err := UnmarshalProof(b)
		if err != nil {
			return nil, err
		}
		return p.MarshalBinary()
	}
	leaf := &ProofLeaf{Key: lt.GoldenHash(0x01), ValueHash: lt.GoldenHash(0x02)}
	sibs := [][32]byte{lt.GoldenHash(0x10), lt.GoldenHash(0x11), lt.GoldenHash(0x12)}
	lt.CheckGolden(t, []lt.GoldenEncoding{
		{Name: "membership proof", Got: marshal(&Proof{Leaf: leaf, Siblings: sibs}), Size: 164, SHA256: "2ffaadad83fc98b5fe29d72bb6777bafe2860d6b4fd3fb8754d553c5c89020b5", Decode: reencode},
		{Name: "empty-subtree proof", Got: marshal(&Proof{Siblings: sibs[:1]}), Size: 36, SHA256: "71c8843c4ff8904ad3151169b9b6b0f8b4e0f39966c51056eed0a3238d26a78d", Decode: reencode},
		{Name: "proof of the root leaf", Got: marshal(&Proof{Leaf: leaf}), Size: 68, SHA256: "aadd085d958d116d0afbbaaa458ee7e8e37690fa12eb9c3ebf2a17e26f207eaa", Decode: reencode},
	})
}
