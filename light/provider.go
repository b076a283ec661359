package light

import (
	"context"

	"github.com/ledgerd/ledgerd/ledger"
)

// Provider is where the light client gets what it verifies: a JSON-RPC
// node (rpc/client) or the node's libp2p peers (state sync). Nothing it
// returns is trusted: the verifier checks every header, commit and set
// against what it trusts already, and an answer that does not check out is
// an error wrapping ErrVerification. A provider that finds an answer
// malformed reports it with Errorf too.
type Provider interface {
	// SignedHeader returns the header of the block at height h and the
	// commit that decided it.
	SignedHeader(ctx context.Context, h uint64) (*ledger.Header, *ledger.Commit, error)
	// ValidatorSet returns the validator set that decides height h.
	ValidatorSet(ctx context.Context, h uint64) (*ledger.ValidatorSet, error)
}
