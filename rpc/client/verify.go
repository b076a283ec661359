package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/statetree"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// ErrVerification is wrapped by every error that means an RPC node's
// answer does not check out against what the client trusts: a lying or
// broken node, never a network hiccup.
var ErrVerification = errors.New("verification failed")

// Trust is what a light client trusts: a genesis document it got from a
// source it believes (a file, or a hash it pinned). The validator set is
// static in ledgerd, so the genesis set verifies commits at every height.
type Trust struct {
	ChainID     string
	GenesisHash crypto.Hash
	Validators  *ledger.ValidatorSet
}

// NewTrust trusts doc.
func NewTrust(doc *genesis.Doc) (*Trust, error) {
	vs, err := doc.ValidatorSet()
	if err != nil {
		return nil, err
	}
	return &Trust{ChainID: doc.ChainID, GenesisHash: doc.Hash(), Validators: vs}, nil
}

func verifyErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrVerification, fmt.Sprintf(format, args...))
}

// VerifiedHeader fetches the header of height and the commit that decided
// it, and returns the header only if the commit carries +2/3 of the
// trusted voting power for exactly that header.
func (c *Client) VerifiedHeader(ctx context.Context, t *Trust, height uint64) (*ledger.Header, error) {
	cm, err := c.Commit(ctx, api.At(height))
	if err != nil {
		return nil, err
	}
	if cm.Header == nil || cm.Commit == nil {
		return nil, verifyErr("commit of height %d: header or commit missing", height)
	}
	h := cm.Header
	switch {
	case h.Height != height:
		return nil, verifyErr("asked for header %d, got %d", height, h.Height)
	case h.ChainID != t.ChainID:
		return nil, verifyErr("header %d is for chain %q, trusted chain is %q", height, h.ChainID, t.ChainID)
	case h.ValidatorsHash != t.Validators.Hash():
		return nil, verifyErr("header %d names validator set %s, trusted set is %s", height, h.ValidatorsHash, t.Validators.Hash())
	}
	id := h.Hash()
	if cm.Commit.BlockID != id {
		return nil, verifyErr("commit of height %d is for block %s, the header hashes to %s", height, cm.Commit.BlockID, id)
	}
	if err := cm.Commit.Verify(t.ChainID, t.Validators, height, id); err != nil {
		return nil, verifyErr("commit of height %d: %v", height, err)
	}
	return h, nil
}

// VerifiedAccount is an account value proven against a verified header.
type VerifiedAccount struct {
	Address crypto.Address
	// Height is the block after which the account holds Account; the
	// header of Height+1 commits to that state.
	Height  uint64
	Account ledger.Account
	AppHash crypto.Hash
}

// VerifiedAccount returns addr's account as of the newest state a
// committed header covers: the state after latest-1, whose app hash is in
// the latest header. (The latest block's own effects are committed only
// by the next header.) A node that alters the balance, the nonce or the
// proof fails with ErrVerification.
func (c *Client) VerifiedAccount(ctx context.Context, t *Trust, addr crypto.Address) (*VerifiedAccount, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.ChainID != t.ChainID {
		return nil, verifyErr("node serves chain %q, trusted chain is %q", st.ChainID, t.ChainID)
	}
	if st.LatestHeight == 0 {
		return nil, errors.New("verify: no block committed yet; nothing to verify against")
	}
	return c.VerifiedAccountAt(ctx, t, addr, uint64(st.LatestHeight)-1)
}

// VerifiedAccountAt returns addr's account after height, proven against
// the app hash in the verified header of height+1.
func (c *Client) VerifiedAccountAt(ctx context.Context, t *Trust, addr crypto.Address, height uint64) (*VerifiedAccount, error) {
	acc, err := c.AccountAt(ctx, addr, api.At(height), true)
	if err != nil {
		return nil, err
	}
	if acc.Address != addr || uint64(acc.Height) != height {
		return nil, verifyErr("asked for %s after height %d, got %s after %d", addr, height, acc.Address, acc.Height)
	}
	if acc.Proof == nil || acc.Proof.Proof == nil {
		return nil, verifyErr("node sent no proof for %s", addr)
	}
	hdr, err := c.VerifiedHeader(ctx, t, height+1)
	if err != nil {
		return nil, err
	}
	a := ledger.Account{Balance: uint64(acc.Balance), Nonce: uint64(acc.Nonce)}
	key := ledger.AccountKey(addr)
	var perr error
	if a == (ledger.Account{}) {
		// Never credited: absent from the state.
		perr = statetree.Verify(hdr.AppHash, key, nil, acc.Proof.Proof)
		if perr != nil && statetree.Verify(hdr.AppHash, key, a.Encode(), acc.Proof.Proof) == nil {
			perr = nil
		}
	} else {
		perr = statetree.Verify(hdr.AppHash, key, a.Encode(), acc.Proof.Proof)
	}
	if perr != nil {
		return nil, verifyErr("account %s (balance %d, nonce %d) does not match the app hash %s of verified header %d: %v",
			addr, a.Balance, a.Nonce, hdr.AppHash, height+1, perr)
	}
	return &VerifiedAccount{Address: addr, Height: height, Account: a, AppHash: hdr.AppHash}, nil
}

// VerifiedTx returns a committed transaction after checking that it hashes
// to h and that its inclusion proof leads to the TxRoot of a verified header.
func (c *Client) VerifiedTx(ctx context.Context, t *Trust, h crypto.Hash) (*api.Transaction, error) {
	tx, err := c.Tx(ctx, h, true)
	if err != nil {
		return nil, err
	}
	if tx.Status != api.TxCommitted {
		return nil, fmt.Errorf("verify: transaction %s is %s, not committed", h, tx.Status)
	}
	if tx.Tx == nil || tx.Height == nil || tx.Proof == nil {
		return nil, verifyErr("committed transaction %s without body, height or proof", h)
	}
	if got := tx.Tx.Hash(); got != h {
		return nil, verifyErr("transaction body hashes to %s, not %s", got, h)
	}
	hdr, err := c.VerifiedHeader(ctx, t, uint64(*tx.Height))
	if err != nil {
		return nil, err
	}
	if err := tx.Proof.Proof.Verify(hdr.TxRoot, h[:]); err != nil {
		return nil, verifyErr("transaction %s is not in block %d: %v", h, hdr.Height, err)
	}
	if tx.Index != nil && uint64(*tx.Index) != tx.Proof.Proof.Index {
		return nil, verifyErr("transaction %s: index %d, proof says %d", h, *tx.Index, tx.Proof.Proof.Index)
	}
	return tx, nil
}
