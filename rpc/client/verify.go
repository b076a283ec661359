package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/statetree"
	"github.com/ledgerd/ledgerd/light"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// ErrVerification is light.ErrVerification: an answer that does not
// check out against what the client trusts.
var ErrVerification = light.ErrVerification

// ErrStale is light.ErrStale: the newest verified header is older than
// Trust.MaxAge.
var ErrStale = light.ErrStale

func verifyErr(format string, args ...any) error { return light.Errorf(format, args...) }

// VerifiedHeader returns the header of height once the light client
// trusts it: verified from the pinned genesis, or from a header trusted
// already, through headers each signed by +2/3 of its own validator set
// and linked to a trusted one (see Trust). Headers verified on the way are
// kept, so later calls fetch little. Any answer that does not check out is
// an error wrapping ErrVerification that says what failed.
func (c *Client) VerifiedHeader(ctx context.Context, t *light.Trust, height uint64) (*ledger.Header, error) {
	h, _, err := t.VerifyHeader(ctx, provider{c}, height)
	return h, err
}

// VerifiedHeaderCount is VerifiedHeader that also returns how many
// headers it fetched (0 when the header was trusted already).
func (c *Client) VerifiedHeaderCount(ctx context.Context, t *light.Trust, height uint64) (*ledger.Header, int, error) {
	return t.VerifyHeader(ctx, provider{c}, height)
}

// VerifiedAccount is an account value proven against a verified header.
type VerifiedAccount struct {
	Address crypto.Address
	// Height is the block after which the account holds Account; the
	// header of Height+1 commits to that state.
	Height  uint64
	Account ledger.Account
	AppHash crypto.Hash
	// Header is the verified header of Height+1; Endpoint is the node
	// that served it as its latest (set by VerifiedAccount).
	Header   *ledger.Header
	Endpoint string
	// HeadersFetched is how many headers verifying Header fetched, over
	// all endpoints (set by VerifiedAccount).
	HeadersFetched int
	// Skipped are the endpoints whose answers were not used: down,
	// behind, or failing verification (those errors wrap ErrVerification).
	Skipped []EndpointError
}

// EndpointError is why one endpoint's answer was not used.
type EndpointError struct {
	Endpoint string
	Err      error
}

// Error names the endpoint.
func (e EndpointError) Error() string { return e.Endpoint + ": " + e.Err.Error() }

// Unwrap returns the endpoint's error.
func (e EndpointError) Unwrap() error { return e.Err }

// VerifiedHead is a verified header and the endpoint that served it.
type VerifiedHead struct {
	Header   *ledger.Header
	Endpoint string
	// HeadersFetched is how many headers the light client fetched to
	// verify the endpoints' latest headers, over all endpoints.
	HeadersFetched int
}

// one returns a client of endpoint ep alone, sharing c's connections.
func (c *Client) one(ep string) *Client { return &Client{endpoints: []string{ep}, hc: c.hc} }

// LatestVerifiedHeader asks every endpoint for its latest block, verifies
// each one's header, and returns the highest (on a tie, the endpoint
// listed first). A node cannot forge a header above the chain's, as it
// would need +2/3 of the trusted signatures, but it can report an old one
// as its latest: asking several nodes defeats that unless all of them
// hide the newer blocks. Endpoints whose answer was not used are returned
// with the reason. It fails when no endpoint yields a verified header
// (wrapping ErrVerification if one failed verification).
func (c *Client) LatestVerifiedHeader(ctx context.Context, t *light.Trust) (*VerifiedHead, []EndpointError, error) {
	type result struct {
		hdr     *ledger.Header
		fetched int
		err     error
	}
	res := make([]result, len(c.endpoints))
	var wg sync.WaitGroup
	for i, ep := range c.endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hdr, n, err := c.one(ep).latestHeader(ctx, t)
			res[i] = result{hdr, n, err}
		}()
	}
	wg.Wait()
	var best *VerifiedHead
	var skipped []EndpointError
	fetched := 0
	for i, r := range res {
		fetched += r.fetched
		if r.err != nil {
			skipped = append(skipped, EndpointError{c.endpoints[i], r.err})
			continue
		}
		if best == nil || r.hdr.Height > best.Header.Height {
			best = &VerifiedHead{Header: r.hdr, Endpoint: c.endpoints[i]}
		}
	}
	if best == nil {
		return nil, skipped, endpointsFailed("no endpoint gave a verified header", skipped)
	}
	best.HeadersFetched = fetched
	return best, skipped, nil
}

// latestHeader returns the verified header of the endpoint's latest block
// and how many headers verifying it fetched.
func (c *Client) latestHeader(ctx context.Context, t *light.Trust) (*ledger.Header, int, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return nil, 0, err
	}
	if st.ChainID != t.ChainID {
		return nil, 0, verifyErr("node serves chain %q, trusted chain is %q", st.ChainID, t.ChainID)
	}
	if st.LatestHeight == 0 {
		return nil, 0, errors.New("no block committed yet; nothing to verify against")
	}
	h := uint64(st.LatestHeight)
	hdr, n, err := t.VerifyHeader(ctx, provider{c}, h)
	if err != nil || n > 0 {
		return hdr, n, err
	}
	// The height was trusted already (perhaps from another endpoint):
	// check that this endpoint serves that header, not another one.
	t.NoteFetched(1, 0)
	cm, err := c.Commit(ctx, api.At(h))
	if err != nil {
		return nil, 1, err
	}
	if cm.Header == nil {
		return nil, 1, verifyErr("commit of height %d: header missing", h)
	}
	if got, want := cm.Header.Hash(), hdr.Hash(); got != want {
		return nil, 1, verifyErr("conflicting headers at height %d: %s is trusted, the node serves %s", h, want, got)
	}
	return hdr, 1, nil
}

// endpointsFailed joins the endpoints' errors under msg; the result wraps
// ErrVerification when any of them does, so a lying node stays visible.
func endpointsFailed(msg string, errs []EndpointError) error {
	if len(errs) == 1 {
		return fmt.Errorf("%s: %w", msg, errs[0])
	}
	all := make([]error, len(errs))
	for i := range errs {
		all[i] = errs[i]
	}
	return fmt.Errorf("%s:\n%w", msg, errors.Join(all...))
}

// VerifiedAccount returns addr's account as of the newest state a
// verified header covers: the highest latest header among the endpoints
// (see LatestVerifiedHeader) commits to the state after the block before
// it. (A block's own effects are committed only by the next header; nodes
// make that next block even on a quiet chain.) It fails with ErrStale when
// that header is older than t.MaxAge, and with ErrVerification when no
// endpoint proves the account against it: a node that alters the balance,
// the nonce or the proof is caught. The proof may come from any endpoint
// that has the state, the header's own first.
func (c *Client) VerifiedAccount(ctx context.Context, t *light.Trust, addr crypto.Address) (*VerifiedAccount, error) {
	head, skipped, err := c.LatestVerifiedHeader(ctx, t)
	if err != nil {
		return nil, err
	}
	hdr := head.Header
	if age := t.Clock().Sub(hdr.Time.Time()); t.MaxAge > 0 && age > t.MaxAge {
		return nil, fmt.Errorf("%w: the newest header any endpoint proves, %d (from %s), was made at %s, %s ago, "+
			"older than %s: the nodes asked may be hiding newer blocks, or the chain has made none since",
			ErrStale, hdr.Height, head.Endpoint, hdr.Time.Time().UTC().Format(time.RFC3339), age.Round(time.Millisecond), t.MaxAge)
	}
	order := []string{head.Endpoint}
	for _, ep := range c.endpoints {
		if ep != head.Endpoint {
			order = append(order, ep)
		}
	}
	var failed []EndpointError
	for _, ep := range order {
		va, err := c.one(ep).verifiedAccountIn(ctx, addr, hdr)
		if err != nil {
			failed = append(failed, EndpointError{ep, err})
			continue
		}
		va.Header, va.Endpoint, va.Skipped = hdr, head.Endpoint, append(skipped, failed...)
		va.HeadersFetched = head.HeadersFetched
		return va, nil
	}
	return nil, endpointsFailed(fmt.Sprintf("no endpoint proved %s against verified header %d", addr, hdr.Height), failed)
}

// VerifiedAccountAt returns addr's account after height, proven against
// the app hash in the verified header of height+1.
func (c *Client) VerifiedAccountAt(ctx context.Context, t *light.Trust, addr crypto.Address, height uint64) (*VerifiedAccount, error) {
	hdr, err := c.VerifiedHeader(ctx, t, height+1)
	if err != nil {
		return nil, err
	}
	return c.verifiedAccountIn(ctx, addr, hdr)
}

// verifiedAccountIn returns addr's account in the state whose app hash the
// (verified) header hdr carries, the state after hdr.Height-1.
func (c *Client) verifiedAccountIn(ctx context.Context, addr crypto.Address, hdr *ledger.Header) (*VerifiedAccount, error) {
	if hdr.Height == 0 {
		return nil, errors.New("verify: header 0 commits to no state")
	}
	height := hdr.Height - 1
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
			addr, a.Balance, a.Nonce, hdr.AppHash, hdr.Height, perr)
	}
	return &VerifiedAccount{Address: addr, Height: height, Account: a, AppHash: hdr.AppHash, Header: hdr}, nil
}

// VerifiedTx returns a committed transaction after checking that it hashes
// to h and that its inclusion proof leads to the TxRoot of a verified header.
func (c *Client) VerifiedTx(ctx context.Context, t *light.Trust, h crypto.Hash) (*api.Transaction, error) {
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
