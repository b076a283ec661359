// Package client is the Go client of ledgerd's JSON-RPC API: typed calls
// over HTTP with failover between several endpoints, WebSocket
// subscriptions, and light-client verification of headers, accounts and
// transactions from a trusted genesis across validator-set changes (see
// Trust).
//
//	c, err := client.New("http://127.0.0.1:26657", "http://10.0.0.2:26657")
//	st, err := c.Status(ctx)
//	acc, err := c.Account(ctx, addr)
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// MaxResponseBytes bounds one answer read from a node.
const MaxResponseBytes = 128 << 20

// Client calls one or more ledgerd nodes. It is safe for concurrent use.
// Calls go to the endpoint that last answered; when it cannot be reached
// (or answers 5xx or "unavailable") the next one is tried, so a client
// given several endpoints survives any of them being down.
type Client struct {
	endpoints []string
	hc        *http.Client
	id        atomic.Uint64
	pref      atomic.Int32
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client use hc (for TLS settings or tests).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// New returns a client for the given endpoints: "http://host:port",
// "https://...", or just "host:port" (taken as http).
func New(endpoints ...string) (*Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("client: no RPC endpoint given")
	}
	c := &Client{}
	for _, e := range endpoints {
		u, err := NormalizeEndpoint(e)
		if err != nil {
			return nil, err
		}
		c.endpoints = append(c.endpoints, u)
	}
	c.hc = &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}}
	return c, nil
}

// NewWithOptions is New with options.
func NewWithOptions(endpoints []string, opts ...Option) (*Client, error) {
	c, err := New(endpoints...)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// NormalizeEndpoint turns "host:port" into "http://host:port" and checks
// the URL.
func NormalizeEndpoint(e string) (string, error) {
	e = strings.TrimSpace(e)
	if !strings.Contains(e, "://") {
		e = "http://" + e
	}
	u, err := url.Parse(e)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("client: RPC endpoint %q: want http://HOST:PORT", e)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// Endpoints returns the endpoints in the order given.
func (c *Client) Endpoints() []string { return append([]string(nil), c.endpoints...) }

// Error is a JSON-RPC error answered by a node. Code is one of the api
// Code constants.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Error returns the node's message with the code.
func (e *Error) Error() string {
	return fmt.Sprintf("rpc error %d (%s): %s", e.Code, api.CodeName(e.Code), e.Message)
}

// Details decodes the error's data (reason, pending nonce...).
func (e *Error) Details() api.ErrorData {
	var d api.ErrorData
	if len(e.Data) > 0 {
		json.Unmarshal(e.Data, &d)
	}
	return d
}

// CodeOf returns the JSON-RPC error code err carries, if it is an *Error.
func CodeOf(err error) (int, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}

// TransportError is a failure to get an answer from any endpoint.
type TransportError struct {
	Tried int
	Last  error
}

// Error names the last failure.
func (e *TransportError) Error() string {
	if e.Tried == 1 {
		return fmt.Sprintf("rpc: %v", e.Last)
	}
	return fmt.Sprintf("rpc: all %d endpoints failed; last: %v", e.Tried, e.Last)
}

// Unwrap returns the last failure.
func (e *TransportError) Unwrap() error { return e.Last }

type request struct {
	JSONRPC string `json:"jsonrpc"`
	ID      uint64 `json:"id"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
}

type response struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
}

// Call invokes method with positional params and decodes the result into
// result (unless nil). A node's refusal is an *Error; failing to reach
// every endpoint is a *TransportError.
func (c *Client) Call(ctx context.Context, method string, result any, params ...any) error {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(request{JSONRPC: "2.0", ID: c.id.Add(1), Method: method, Params: params})
	if err != nil {
		return fmt.Errorf("rpc: encode %s: %w", method, err)
	}
	n := len(c.endpoints)
	start := int(c.pref.Load())
	var last error
	for i := 0; i < n; i++ {
		idx := (start + i) % n
		raw, err := c.post(ctx, c.endpoints[idx], body)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var rpcErr *Error
			if errors.As(err, &rpcErr) && rpcErr.Code != api.CodeUnavailable {
				return err
			}
			last = fmt.Errorf("%s: %w", c.endpoints[idx], err)
			continue
		}
		c.pref.Store(int32(idx))
		var resp response
		if err := json.Unmarshal(raw, &resp); err != nil {
			return fmt.Errorf("rpc: %s: undecodable answer to %s: %w", c.endpoints[idx], method, err)
		}
		if resp.Error != nil {
			if resp.Error.Code == api.CodeUnavailable && i+1 < n {
				last = resp.Error
				continue
			}
			return resp.Error
		}
		if result == nil {
			return nil
		}
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return fmt.Errorf("rpc: %s: decode result of %s: %w", c.endpoints[idx], method, err)
		}
		return nil
	}
	return &TransportError{Tried: n, Last: last}
}

// post sends one body and returns the answer body. HTTP errors whose body
// is a JSON-RPC error (413, 415) come back as *Error.
func (c *Client) post(ctx context.Context, endpoint string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxResponseBytes {
		return nil, fmt.Errorf("answer larger than %d bytes", MaxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		var r response
		if json.Unmarshal(raw, &r) == nil && r.Error != nil && resp.StatusCode < 500 {
			return nil, r.Error
		}
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	return raw, nil
}

// --- typed calls ---

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	var out api.Status
	return &out, c.Call(ctx, api.MethodStatus, &out)
}

// SendTx submits a signed transaction and returns its hash once the
// node admitted it to its mempool.
func (c *Client) SendTx(ctx context.Context, tx *ledger.Tx) (crypto.Hash, error) {
	var out api.SendResult
	if err := c.Call(ctx, api.MethodSendTransaction, &out, api.TxParam{Tx: tx}); err != nil {
		return crypto.Hash{}, err
	}
	if out.Hash != tx.Hash() {
		return out.Hash, fmt.Errorf("rpc: node answered hash %s for transaction %s", out.Hash, tx.Hash())
	}
	return out.Hash, nil
}

// SendTxAndWait submits a signed transaction and waits until it commits
// (timeout 0: the node's default). The answer holds the receipt and the
// inclusion proof.
func (c *Client) SendTxAndWait(ctx context.Context, tx *ledger.Tx, timeout time.Duration) (*api.Transaction, error) {
	params := []any{api.TxParam{Tx: tx}}
	if timeout > 0 {
		params = append(params, timeout.String())
	}
	var out api.Transaction
	if err := c.Call(ctx, api.MethodSendTransactionAndWait, &out, params...); err != nil {
		return nil, err
	}
	return &out, nil
}

// Tx returns a transaction wherever it is (pending, committed or
// unknown), with its inclusion proof when prove is set and it committed.
func (c *Client) Tx(ctx context.Context, hash crypto.Hash, prove bool) (*api.Transaction, error) {
	var out api.Transaction
	return &out, c.Call(ctx, api.MethodGetTransaction, &out, hash, prove)
}

// Account returns addr's latest committed account and its pending nonce.
func (c *Client) Account(ctx context.Context, addr crypto.Address) (*api.Account, error) {
	var out api.Account
	return &out, c.Call(ctx, api.MethodGetAccount, &out, addr)
}

// AccountAt returns addr's account after height, with a proof against
// that state's app hash when prove is set.
func (c *Client) AccountAt(ctx context.Context, addr crypto.Address, height api.Height, prove bool) (*api.Account, error) {
	var out api.Account
	return &out, c.Call(ctx, api.MethodGetAccount, &out, addr, height, prove)
}

// AccountTxs returns one page of the committed transactions addr sent or
// received, oldest first: at most limit (1 to 1000) from position
// (fromHeight, fromIndex), a height and an index in that block. When more
// follow, the answer's NextFromHeight and NextFromIndex are where the next
// page starts; AccountHistory follows them.
func (c *Client) AccountTxs(ctx context.Context, addr crypto.Address, fromHeight uint64, fromIndex uint32, limit int) (*api.AccountTxs, error) {
	var out api.AccountTxs
	return &out, c.Call(ctx, api.MethodGetAccountTransactions, &out, addr, api.Uint64(fromHeight), limit, fromIndex)
}

// maxHistoryPage is the node's largest page of ledger_getAccountTransactions.
const maxHistoryPage = 1000

// AccountHistory returns up to max of addr's committed transactions from
// position (fromHeight, fromIndex), fetching as many pages as that takes.
// The answer's NextFromHeight and NextFromIndex are set when more remain.
func (c *Client) AccountHistory(ctx context.Context, addr crypto.Address, fromHeight uint64, fromIndex uint32, max int) (*api.AccountTxs, error) {
	if max < 1 {
		return nil, fmt.Errorf("account history: max must be positive, got %d", max)
	}
	out := &api.AccountTxs{Address: addr, Txs: []api.AccountTx{}}
	for len(out.Txs) < max {
		page, err := c.AccountTxs(ctx, addr, fromHeight, fromIndex, min(max-len(out.Txs), maxHistoryPage))
		if err != nil {
			return nil, err
		}
		out.Txs = append(out.Txs, page.Txs...)
		out.NextFromHeight, out.NextFromIndex = page.NextFromHeight, page.NextFromIndex
		if page.NextFromHeight == nil {
			break
		}
		if len(page.Txs) == 0 {
			return nil, fmt.Errorf("account history: the node answered an empty page with a next position")
		}
		nextH, nextI := uint64(*page.NextFromHeight), uint32(0)
		if page.NextFromIndex != nil {
			nextI = *page.NextFromIndex
		}
		// The next page must start after this one's last transaction, or
		// a faulty node would keep the loop going forever.
		last := page.Txs[len(page.Txs)-1]
		if nextH < uint64(last.Height) || (nextH == uint64(last.Height) && nextI <= last.Index) {
			return nil, fmt.Errorf("account history: the node's next position (%d, %d) is not after its last transaction (%d, %d)",
				nextH, nextI, last.Height, last.Index)
		}
		fromHeight, fromIndex = nextH, nextI
	}
	return out, nil
}

// Block returns the block at height.
func (c *Client) Block(ctx context.Context, height api.Height) (*api.Block, error) {
	var out api.Block
	return &out, c.Call(ctx, api.MethodGetBlockByHeight, &out, height)
}

// BlockByHash returns the block with hash h.
func (c *Client) BlockByHash(ctx context.Context, h crypto.Hash) (*api.Block, error) {
	var out api.Block
	return &out, c.Call(ctx, api.MethodGetBlockByHash, &out, h)
}

// Commit returns the header of height and the commit that decided it.
func (c *Client) Commit(ctx context.Context, height api.Height) (*api.Commit, error) {
	var out api.Commit
	return &out, c.Call(ctx, api.MethodGetCommit, &out, height)
}

// Validators returns the validator set at height.
func (c *Client) Validators(ctx context.Context, height api.Height) (*api.Validators, error) {
	var out api.Validators
	return &out, c.Call(ctx, api.MethodValidators, &out, height)
}

// Genesis fetches the chain's genesis document, parsed and validated, and
// its hash computed here (not taken from the node).
func (c *Client) Genesis(ctx context.Context) (*genesis.Doc, crypto.Hash, error) {
	var out api.Genesis
	if err := c.Call(ctx, api.MethodGenesis, &out); err != nil {
		return nil, crypto.Hash{}, err
	}
	doc, err := genesis.Parse(out.Genesis)
	if err != nil {
		return nil, crypto.Hash{}, fmt.Errorf("rpc: node's genesis: %w", err)
	}
	return doc, doc.Hash(), nil
}

// Mempool returns the mempool's size.
func (c *Client) Mempool(ctx context.Context) (*api.Mempool, error) {
	var out api.Mempool
	return &out, c.Call(ctx, api.MethodMempool, &out)
}

// PendingTxs lists up to limit pending transactions (1 to 1000).
func (c *Client) PendingTxs(ctx context.Context, limit int) (*api.Pending, error) {
	var out api.Pending
	return &out, c.Call(ctx, api.MethodPendingTransactions, &out, limit)
}

// Peers lists the node's peers.
func (c *Client) Peers(ctx context.Context) (*api.Peers, error) {
	var out api.Peers
	return &out, c.Call(ctx, api.MethodPeers, &out)
}

// SuggestFee returns the node's fee suggestion.
func (c *Client) SuggestFee(ctx context.Context) (*api.FeeSuggestion, error) {
	var out api.FeeSuggestion
	return &out, c.Call(ctx, api.MethodSuggestFee, &out)
}

// Health reads /health of the preferred endpoint. A node that answers
// 503 is reported with Healthy false and no error.
func (c *Client) Health(ctx context.Context) (*api.Health, error) {
	endpoint := c.endpoints[int(c.pref.Load())%len(c.endpoints)]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/health", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var h api.Health
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h); err != nil {
		return nil, fmt.Errorf("health: HTTP %s: %w", resp.Status, err)
	}
	return &h, nil
}

// --- staking ---

// StakingPool returns the staking module's tokens (bonded, unbonding,
// burned) after height, with a proof of the pool record when prove is set
// (api.StakingPool.VerifyProof checks it against the answer's app hash).
func (c *Client) StakingPool(ctx context.Context, height api.Height, prove bool) (*api.StakingPool, error) {
	var out api.StakingPool
	return &out, c.Call(ctx, api.MethodStakingPool, &out, height, prove)
}

// StakingValidator returns the validator operated by op after height: its
// stake, power, jail status, membership of the active set and of the next
// height's validator set, and its signing record; with proofs of its
// records when prove is set (api.ValidatorStatus.VerifyProof). A node
// that holds no such validator answers api.CodeNotFound.
func (c *Client) StakingValidator(ctx context.Context, op crypto.Address, height api.Height, prove bool) (*api.ValidatorStatus, error) {
	var out api.ValidatorStatus
	return &out, c.Call(ctx, api.MethodGetValidator, &out, op, height, prove)
}

// ValidatorsByPower returns one page of at most limit (1 to
// api.MaxStakingPage) validators of the latest state, those that may be
// in the active set by power first: from nil for the first page, else the
// Next of the page before.
func (c *Client) ValidatorsByPower(ctx context.Context, from []byte, limit int) (*api.ValidatorsByPower, error) {
	var out api.ValidatorsByPower
	var f any
	if len(from) > 0 {
		f = api.HexBytes(from)
	}
	return &out, c.Call(ctx, api.MethodValidatorsByPower, &out, f, limit)
}

// AllValidatorsByPower follows ValidatorsByPower's pages until it has
// max validators or the listing ends. The pages are read one after
// another, each of the latest state then.
func (c *Client) AllValidatorsByPower(ctx context.Context, max int) ([]api.StakingValidator, error) {
	if max < 1 {
		return nil, fmt.Errorf("validators by power: max must be positive, got %d", max)
	}
	var out []api.StakingValidator
	var from []byte
	for len(out) < max {
		page, err := c.ValidatorsByPower(ctx, from, min(max-len(out), api.MaxStakingPage))
		if err != nil {
			return nil, err
		}
		out = append(out, page.Validators...)
		if len(page.Next) == 0 {
			break
		}
		if len(page.Validators) == 0 {
			return nil, errors.New("validators by power: the node answered an empty page with a next position")
		}
		from = page.Next
	}
	return out, nil
}

// stakingCursor is the after parameter: absent for the zero address.
func stakingCursor(after crypto.Address) any {
	if after.IsZero() {
		return nil
	}
	return after
}

// DelegationsByDelegator returns one page of del's delegations of the
// latest state, by operator after the operator after (zero: from the
// start), at most limit (1 to api.MaxStakingPage), each with its shares'
// token value. NextAfter is set when more follow.
func (c *Client) DelegationsByDelegator(ctx context.Context, del, after crypto.Address, limit int) (*api.Delegations, error) {
	var out api.Delegations
	return &out, c.Call(ctx, api.MethodDelegationsByDelegator, &out, del, stakingCursor(after), limit)
}

// DelegationsByValidator returns one page of the delegations to the
// validator op of the latest state, by delegator after the delegator
// after (zero: from the start), at most limit (1 to api.MaxStakingPage).
func (c *Client) DelegationsByValidator(ctx context.Context, op, after crypto.Address, limit int) (*api.Delegations, error) {
	var out api.Delegations
	return &out, c.Call(ctx, api.MethodDelegationsByValidator, &out, op, stakingCursor(after), limit)
}

// Unbondings returns one page of del's unbonding entries of the latest
// state, grouped by validator in operator order after the operator after
// (zero: from the start), at most limit groups (1 to api.MaxStakingPage).
func (c *Client) Unbondings(ctx context.Context, del, after crypto.Address, limit int) (*api.Unbondings, error) {
	var out api.Unbondings
	return &out, c.Call(ctx, api.MethodGetUnbondings, &out, del, stakingCursor(after), limit)
}
