package ledger_test

import (
	"errors"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// vouching is a StateReader that reports some transactions as already verified.
type vouching struct {
	*ledgertest.MapState
	ok map[crypto.Hash]bool
}

func (v vouching) SignatureVerified(h crypto.Hash) bool { return v.ok[h] }

// TestExecuteSkipsOnlyVouchedSignatures shows Execute consults VerifiedTxs:
// a transaction the reader vouches for is not re-verified, and every other
// one still is.
func TestExecuteSkipsOnlyVouchedSignatures(t *testing.T) {
	c := ledgertest.NewChain(1, 2, 100)
	to := c.Accounts[1].PubKey().Address()
	bad := ledgertest.Transfer(c.Accounts[0], to, 5, 0, 0)
	bad.Sig[0] ^= 1 // invalid: only a vouching reader lets it through
	b := c.NextBlock(c.Genesis, []*ledger.Tx{bad}, nil, 0)

	plain := c.NewMapState()
	if _, err := ledger.Execute(c.Genesis, plain, b); !errors.Is(err, ledger.ErrBadSignature) {
		t.Fatalf("without a vouch: %v, want ErrBadSignature", err)
	}
	other := vouching{c.NewMapState(), map[crypto.Hash]bool{crypto.Sum([]byte("another tx")): true}}
	if _, err := ledger.Execute(c.Genesis, other, b); !errors.Is(err, ledger.ErrBadSignature) {
		t.Fatalf("vouching for another tx: %v, want ErrBadSignature", err)
	}
	this := vouching{c.NewMapState(), map[crypto.Hash]bool{bad.Hash(): true}}
	if _, err := ledger.Execute(c.Genesis, this, b); err != nil {
		t.Fatalf("vouched tx re-verified: %v", err)
	}
}
