package crypto

import (
	"fmt"

	"github.com/ledgerd/ledgerd/wire"
)

// Domain names what a signature is for. A signature made under one domain
// never verifies under another, nor under another chain ID.
type Domain string

// The signing domains ledgerd uses.
const (
	DomainTx       Domain = "tx"
	DomainVote     Domain = "vote"
	DomainProposal Domain = "proposal"
	// DomainHandshake is a validator's statement, in the p2p handshake,
	// that a network identity (libp2p peer ID) is its node.
	DomainHandshake Domain = "p2p-handshake"
)

// signPrefix starts every signed message; it keeps ledgerd signatures
// apart from anything else an ed25519 key might sign.
const signPrefix = "ledgerd/sign/v1"

// MaxChainIDLen bounds chain IDs, so sign bytes and encodings stay bounded.
const MaxChainIDLen = 50

// SignBytes returns the exact bytes signed for payload under domain and
// chainID: a fixed prefix, then the domain and the chain ID, each
// length-prefixed, then the payload. Because every variable part is
// length-prefixed, no (domain, chainID, payload) triple can produce the same
// bytes as another.
func SignBytes(domain Domain, chainID string, payload []byte) []byte {
	w := wire.NewWriter(make([]byte, 0, len(signPrefix)+2+len(domain)+len(chainID)+len(payload)+8))
	w.Fixed([]byte(signPrefix))
	w.PrefixedString(string(domain))
	w.PrefixedString(chainID)
	w.Fixed(payload)
	return w.Bytes()
}

// ValidateChainID checks that id is usable as a chain ID: 1 to MaxChainIDLen
// printable ASCII characters without spaces.
func ValidateChainID(id string) error {
	if id == "" {
		return fmt.Errorf("chain ID is empty")
	}
	if len(id) > MaxChainIDLen {
		return fmt.Errorf("chain ID %q is %d bytes, at most %d allowed", id, len(id), MaxChainIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("chain ID %q has a character (0x%02x) outside printable ASCII", id, c)
		}
	}
	return nil
}
