package rpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/mempool"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// Bounds on list answers.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

func (s *Server) methodTable() map[string]*method {
	ms := []*method{
		{name: api.MethodSendTransaction, params: []string{"tx"}, fn: s.sendTransaction},
		{name: api.MethodSendTransactionAndWait, params: []string{"tx", "timeout?"}, fn: s.sendTransactionAndWait},
		{name: api.MethodGetTransaction, params: []string{"hash", "prove?"}, fn: s.getTransaction},
		{name: api.MethodGetAccount, params: []string{"address", "height?", "prove?"}, fn: s.getAccount},
		{name: api.MethodGetAccountTransactions, params: []string{"address", "from_height?", "limit?", "from_index?"}, fn: s.getAccountTransactions},
		{name: api.MethodGetBlockByHeight, params: []string{"height"}, fn: s.getBlockByHeight},
		{name: api.MethodGetBlockByHash, params: []string{"hash"}, fn: s.getBlockByHash},
		{name: api.MethodGetCommit, params: []string{"height?"}, fn: s.getCommit},
		{name: api.MethodStatus, fn: s.status},
		{name: api.MethodValidators, params: []string{"height?"}, fn: s.validators},
		{name: api.MethodGenesis, fn: s.genesis},
		{name: api.MethodMempool, fn: s.mempool},
		{name: api.MethodPendingTransactions, params: []string{"limit?"}, fn: s.pendingTransactions},
		{name: api.MethodPeers, fn: s.peers},
		{name: api.MethodSuggestFee, fn: s.suggestFee},
		{name: api.MethodStakingPool, params: []string{"height?", "prove?"}, fn: s.stakingPool},
		{name: api.MethodGetValidator, params: []string{"operator", "height?", "prove?"}, fn: s.getValidator},
		{name: api.MethodValidatorsByPower, params: []string{"from?", "limit?"}, fn: s.validatorsByPower},
		{name: api.MethodDelegationsByDelegator, params: []string{"delegator", "after?", "limit?"}, fn: s.delegationsByDelegator},
		{name: api.MethodDelegationsByValidator, params: []string{"operator", "after?", "limit?"}, fn: s.delegationsByValidator},
		{name: api.MethodGetUnbondings, params: []string{"delegator", "after?", "limit?"}, fn: s.getUnbondings},
		{name: api.MethodSubscribe, params: []string{"kind", "arg?"}, wsOnly: true, fn: s.subscribe},
		{name: api.MethodUnsubscribe, params: []string{"subscription"}, wsOnly: true, fn: s.unsubscribe},
	}
	t := make(map[string]*method, len(ms))
	for _, m := range ms {
		t[m.name] = m
	}
	return t
}

// --- transactions ---

func (s *Server) sendTransaction(ctx context.Context, c *call) (any, error) {
	var p api.TxParam
	if err := c.bind(&p); err != nil {
		return nil, err
	}
	if err := s.b.SubmitTx(ctx, p.Tx); err != nil {
		return nil, s.rejection(err, p.Tx)
	}
	return api.SendResult{Hash: p.Tx.Hash()}, nil
}

// rejection turns SubmitTx's error into the documented application error.
func (s *Server) rejection(err error, tx *ledger.Tx) error {
	reason, ok := mempool.CodeOf(err)
	if !ok {
		return err
	}
	code, ok := api.CodeForMempoolReason(int(reason))
	if !ok {
		return err
	}
	data := &api.ErrorData{Reason: api.CodeName(code)}
	switch code {
	case api.CodeNonceTooLow, api.CodeNonceGap, api.CodeDuplicate:
		if n, err := s.pendingNonce(tx.Sender()); err == nil {
			data.PendingNonce = api.Uint64(n).Ptr()
		}
	}
	return &api.Error{Code: code, Message: err.Error(), Data: data}
}

// pendingNonce is the nonce addr should sign with next: after its pending
// transactions, else its committed nonce.
func (s *Server) pendingNonce(addr crypto.Address) (uint64, error) {
	if n, ok := s.b.Pool().NextNonce(addr); ok {
		return n, nil
	}
	chain := s.b.Chain()
	acc, err := chain.Account(chain.Height(), addr)
	return acc.Nonce, err
}

func (s *Server) sendTransactionAndWait(ctx context.Context, c *call) (any, error) {
	var p api.TxParam
	timeout := s.cfg.DefaultWait
	var t string
	if err := c.bind(&p, &t); err != nil {
		return nil, err
	}
	if t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			return nil, api.Errorf(api.CodeInvalidParams, `invalid params: parameter "timeout": want a positive duration such as "30s", got %q`, truncate(t))
		}
		if d > s.cfg.MaxWait {
			return nil, api.Errorf(api.CodeInvalidParams, `invalid params: parameter "timeout": %s is above the limit %s`, d, s.cfg.MaxWait)
		}
		timeout = d
	}
	tx := p.Tx
	h := tx.Hash()
	w := s.hub.wait(h)
	defer s.hub.unwait(h, w)
	if err := s.b.SubmitTx(ctx, tx); err != nil {
		reason, _ := mempool.CodeOf(err)
		switch {
		case reason == mempool.Duplicate:
			// Already pending: wait for it like the first sender.
		case reason == mempool.NonceTooLow && s.isCommitted(h):
			return s.committedTx(h, true)
		default:
			return nil, s.rejection(err, tx)
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case out := <-w.ch:
		if out.dropped != nil {
			hs := h.String()
			return nil, &api.Error{Code: api.CodeTxDropped,
				Message: fmt.Sprintf("transaction %s left the mempool without committing: %s", h, out.dropped),
				Data:    &api.ErrorData{Reason: out.dropped.String(), Hash: &hs}}
		}
		return s.committedTx(h, true)
	case <-timer.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// The hub may have fallen behind; the store is the truth.
	if s.isCommitted(h) {
		return s.committedTx(h, true)
	}
	status := api.TxUnknown
	if s.b.Pool().Has(h) {
		status = api.TxPending
	}
	hs := h.String()
	return nil, &api.Error{Code: api.CodeTimeout,
		Message: fmt.Sprintf("transaction %s not committed within %s (status: %s)", h, timeout, status),
		Data:    &api.ErrorData{Reason: api.CodeName(api.CodeTimeout), Hash: &hs, Status: status}}
}

func (s *Server) isCommitted(h crypto.Hash) bool {
	_, err := s.b.Chain().TxLocation(h)
	return err == nil
}

func (s *Server) getTransaction(ctx context.Context, c *call) (any, error) {
	var h crypto.Hash
	prove := true
	if err := c.bind(&h, &prove); err != nil {
		return nil, err
	}
	return s.lookupTx(h, prove)
}

// lookupTx reports a transaction wherever it is. The store is read before
// and after the mempool, so a transaction committing in between is never
// reported unknown.
func (s *Server) lookupTx(h crypto.Hash, prove bool) (*api.Transaction, error) {
	if s.isCommitted(h) {
		return s.committedTx(h, prove)
	}
	if tx, ok := s.b.Pool().Get(h); ok {
		sender := tx.Sender()
		return &api.Transaction{Hash: h, Status: api.TxPending, Tx: tx, Raw: tx.Encode(), Sender: &sender}, nil
	}
	if s.isCommitted(h) {
		return s.committedTx(h, prove)
	}
	return &api.Transaction{Hash: h, Status: api.TxUnknown}, nil
}

// committedTx describes the committed transaction h with its receipt and,
// when prove is set, its inclusion proof against the block's TxRoot.
func (s *Server) committedTx(h crypto.Hash, prove bool) (*api.Transaction, error) {
	chain := s.b.Chain()
	loc, err := chain.TxLocation(h)
	if err != nil {
		return nil, err
	}
	b, err := chain.Block(loc.Height)
	if err != nil {
		return nil, err
	}
	if int(loc.Index) >= len(b.Txs) {
		return nil, fmt.Errorf("tx %s: index %d beyond block %d", h, loc.Index, loc.Height)
	}
	var proof *api.TxProof
	if prove {
		p := txProof(b, int(loc.Index))
		proof = &p
	}
	reason, err := s.txError(b.Txs[loc.Index], h)
	if err != nil {
		return nil, err
	}
	return describeCommitted(b, int(loc.Index), h, proof, reason), nil
}

// txError is why the committed transaction tx (hash h) failed, "" when it
// succeeded. Only a staking transaction can fail.
func (s *Server) txError(tx *ledger.Tx, h crypto.Hash) (string, error) {
	if tx.Kind == ledger.TxTransfer {
		return "", nil
	}
	return s.b.Chain().TxError(h)
}

func txProof(b *ledger.Block, i int) api.TxProof {
	hashes := b.TxHashes()
	items := make([][]byte, len(hashes))
	for j := range hashes {
		items[j] = hashes[j][:]
	}
	_, proofs := crypto.MerkleProofs(items)
	return api.TxProof{TxRoot: b.Header.TxRoot, Proof: proofs[i]}
}

// describeCommitted describes the committed transaction i of b (hash h);
// reason is its receipt's error, "" when it succeeded.
func describeCommitted(b *ledger.Block, i int, h crypto.Hash, proof *api.TxProof, reason string) *api.Transaction {
	tx := b.Txs[i]
	sender := tx.Sender()
	bh := b.Hash()
	idx := uint32(i)
	return &api.Transaction{
		Hash: h, Status: api.TxCommitted, Tx: tx, Raw: tx.Encode(), Sender: &sender,
		Height: api.Uint64(b.Height()).Ptr(), Index: &idx, BlockHash: &bh,
		Receipt: &ledger.Receipt{TxHash: h, Height: b.Height(), Index: idx, Fee: tx.Fee, Error: reason},
		Failed:  reason != "",
		Proof:   proof,
	}
}

// --- accounts ---

func (s *Server) getAccount(ctx context.Context, c *call) (any, error) {
	var addr crypto.Address
	height := api.Latest
	var prove bool
	if err := c.bind(&addr, &height, &prove); err != nil {
		return nil, err
	}
	chain := s.b.Chain()
	latest := chain.Height()
	h := latest
	if !height.Latest {
		if height.Value > latest {
			return nil, api.Errorf(api.CodeNotFound, "height %d is above the latest committed height %d", height.Value, latest)
		}
		h = height.Value
	}
	out := &api.Account{Address: addr, Height: api.Uint64(h)}
	var acc ledger.Account
	var err error
	if prove {
		var proof = new(api.AccountProof)
		acc, proof.Proof, err = chain.AccountProof(h, addr)
		if err != nil {
			return nil, err
		}
		if proof.AppHash, err = chain.AppHash(h); err != nil {
			return nil, err
		}
		proof.HeaderHeight = api.Uint64(h + 1)
		out.Proof = proof
	} else if acc, err = chain.Account(h, addr); err != nil {
		return nil, err
	}
	out.Balance, out.Nonce = api.Uint64(acc.Balance), api.Uint64(acc.Nonce)
	if height.Latest {
		n := acc.Nonce
		if pn, ok := s.b.Pool().NextNonce(addr); ok && pn > n {
			n = pn
		}
		out.PendingNonce = api.Uint64(n).Ptr()
	}
	return out, nil
}

// getAccountTransactions answers one page of an account's history. The
// cursor is a position (height, index in the block), so a page ends after
// exactly limit transactions, inside a block if need be, and the next one
// resumes right after it.
func (s *Server) getAccountTransactions(ctx context.Context, c *call) (any, error) {
	var addr crypto.Address
	var from api.Uint64
	var fromIndex uint32
	limit := defaultListLimit
	if err := c.bind(&addr, &from, &limit, &fromIndex); err != nil {
		return nil, err
	}
	if limit < 1 || limit > maxListLimit {
		return nil, api.Errorf(api.CodeInvalidParams, `invalid params: parameter "limit": want 1 to %d, got %d`, maxListLimit, limit)
	}
	chain := s.b.Chain()
	refs, more, err := chain.AccountTxs(addr, store.TxLocation{Height: uint64(from), Index: fromIndex}, limit)
	if err != nil {
		return nil, err
	}
	out := &api.AccountTxs{Address: addr, Txs: make([]api.AccountTx, 0, len(refs))}
	if more {
		next := refs[len(refs)-1].Location.Next()
		out.NextFromHeight = api.Uint64(next.Height).Ptr()
		out.NextFromIndex = &next.Index
	}
	// Entries come in height order: hold one decoded block at a time.
	var b *ledger.Block
	for _, r := range refs {
		if b == nil || b.Height() != r.Location.Height {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if b, err = chain.Block(r.Location.Height); err != nil {
				return nil, err
			}
		}
		if int(r.Location.Index) >= len(b.Txs) {
			return nil, fmt.Errorf("account tx index: %s beyond block %d", r.Hash, r.Location.Height)
		}
		out.Txs = append(out.Txs, accountTx(b, int(r.Location.Index), r.Hash))
	}
	return out, nil
}

func accountTx(b *ledger.Block, i int, h crypto.Hash) api.AccountTx {
	tx := b.Txs[i]
	return api.AccountTx{Hash: h, Height: api.Uint64(b.Height()), Index: uint32(i), Kind: tx.Kind, From: tx.Sender(), To: tx.To,
		Amount: api.Uint64(tx.Amount), Fee: api.Uint64(tx.Fee), Nonce: api.Uint64(tx.Nonce)}
}

// --- blocks ---

// resolveHeight turns a height parameter into a committed height.
func (s *Server) resolveHeight(h api.Height) (uint64, error) {
	latest := s.b.Chain().Height()
	if h.Latest {
		if latest == 0 {
			return 0, api.Errorf(api.CodeNotFound, "no block committed yet")
		}
		return latest, nil
	}
	if h.Value == 0 || h.Value > latest {
		return 0, api.Errorf(api.CodeNotFound, "no block at height %d (latest is %d)", h.Value, latest)
	}
	return h.Value, nil
}

func (s *Server) getBlockByHeight(ctx context.Context, c *call) (any, error) {
	var hp api.Height
	if err := c.bind(&hp); err != nil {
		return nil, err
	}
	h, err := s.resolveHeight(hp)
	if err != nil {
		return nil, err
	}
	b, err := s.b.Chain().Block(h)
	if err != nil {
		return nil, notFound(err)
	}
	return describeBlock(b), nil
}

func (s *Server) getBlockByHash(ctx context.Context, c *call) (any, error) {
	var h crypto.Hash
	if err := c.bind(&h); err != nil {
		return nil, err
	}
	b, err := s.b.Chain().BlockByHash(h)
	if err != nil {
		return nil, notFound(err)
	}
	return describeBlock(b), nil
}

func describeBlock(b *ledger.Block) *api.Block {
	if b.Txs == nil {
		b.Txs = []*ledger.Tx{}
	}
	if b.Evidence == nil {
		b.Evidence = []*ledger.Evidence{}
	}
	return &api.Block{Hash: b.Hash(), Size: len(b.Encode()), TxHashes: b.TxHashes(), Block: b}
}

// notFound maps the store's ErrNotFound to CodeNotFound.
func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return api.Errorf(api.CodeNotFound, "%v", err)
	}
	return err
}

func (s *Server) getCommit(ctx context.Context, c *call) (any, error) {
	hp := api.Latest
	if err := c.bind(&hp); err != nil {
		return nil, err
	}
	h, err := s.resolveHeight(hp)
	if err != nil {
		return nil, err
	}
	chain := s.b.Chain()
	b, err := chain.Block(h)
	if err != nil {
		return nil, notFound(err)
	}
	cm, err := chain.Commit(h)
	if err != nil {
		return nil, notFound(err)
	}
	return &api.Commit{Height: api.Uint64(h), BlockHash: b.Hash(), Header: &b.Header, Commit: cm}, nil
}

// --- node ---

func (s *Server) status(ctx context.Context, c *call) (any, error) {
	if err := c.bind(); err != nil {
		return nil, err
	}
	st := s.b.Status()
	out := &api.Status{
		ChainID: st.ChainID, GenesisHash: s.genesisHash, NodeID: st.NodeID, Moniker: st.Moniker,
		LatestHeight: api.Uint64(st.Height), LatestBlockHash: st.Hash, LatestBlockTime: st.Time, LatestAppHash: st.AppHash,
		CatchingUp: st.CatchingUp, Peers: len(s.b.Peers()),
		ConsensusHeight: api.Uint64(st.ConsensusHeight), ConsensusRound: st.ConsensusRound,
	}
	if st.IsValidator {
		v := st.Validator
		out.ValidatorAddress = &v
	}
	return out, nil
}

func (s *Server) validators(ctx context.Context, c *call) (any, error) {
	hp := api.Latest
	if err := c.bind(&hp); err != nil {
		return nil, err
	}
	latest := s.b.Chain().Height()
	h := max(latest, 1)
	if !hp.Latest {
		// A set is known for every committed height and the two after
		// the latest (changes take effect two heights after their block).
		if hp.Value == 0 || hp.Value > latest+2 {
			return nil, api.Errorf(api.CodeNotFound, "no validator set for height %d (latest is %d; sets are known up to %d)", hp.Value, latest, latest+2)
		}
		h = hp.Value
	}
	vs, err := s.b.ValidatorsAt(h)
	if err != nil {
		return nil, api.Errorf(api.CodeNotFound, "validator set of height %d: %v", h, err)
	}
	return describeSet(h, vs), nil
}

// describeSet is the API form of vs, the validator set of height h.
func describeSet(h uint64, vs *ledger.ValidatorSet) *api.Validators {
	out := &api.Validators{Height: api.Uint64(h), Hash: vs.Hash(), TotalPower: api.Uint64(vs.TotalPower()),
		Validators: make([]api.Validator, 0, vs.Size())}
	for _, v := range vs.Validators() {
		out.Validators = append(out.Validators, api.Validator{Address: v.Address(), PubKey: v.PubKey, Power: api.Uint64(v.Power), Name: v.Name, Operator: v.Operator})
	}
	return out
}

func (s *Server) genesis(ctx context.Context, c *call) (any, error) {
	if err := c.bind(); err != nil {
		return nil, err
	}
	return &api.Genesis{Hash: s.genesisHash, Genesis: s.genesisJSON}, nil
}

func (s *Server) mempool(ctx context.Context, c *call) (any, error) {
	if err := c.bind(); err != nil {
		return nil, err
	}
	txs, bytes := s.b.Pool().Size()
	return &api.Mempool{Txs: txs, Bytes: bytes}, nil
}

func (s *Server) pendingTransactions(ctx context.Context, c *call) (any, error) {
	limit := defaultListLimit
	if err := c.bind(&limit); err != nil {
		return nil, err
	}
	if limit < 1 || limit > maxListLimit {
		return nil, api.Errorf(api.CodeInvalidParams, `invalid params: parameter "limit": want 1 to %d, got %d`, maxListLimit, limit)
	}
	pool := s.b.Pool()
	total, _ := pool.Size()
	txs := pool.Pending(limit)
	out := &api.Pending{Total: total, Txs: make([]api.PendingTx, len(txs))}
	for i, tx := range txs {
		out.Txs[i] = api.PendingTx{Hash: tx.Hash(), Tx: tx}
	}
	return out, nil
}

func (s *Server) peers(ctx context.Context, c *call) (any, error) {
	if err := c.bind(); err != nil {
		return nil, err
	}
	ps := s.b.Peers()
	if ps == nil {
		ps = []api.Peer{}
	}
	return &api.Peers{Count: len(ps), Peers: ps}, nil
}

// suggestFee suggests 0 while one block holds every pending transaction
// (the pool then takes any fee), and otherwise one more than the lowest
// fee among the transactions the next block would take.
func (s *Server) suggestFee(ctx context.Context, c *call) (any, error) {
	if err := c.bind(); err != nil {
		return nil, err
	}
	maxTxs := s.b.Genesis().Params.MaxBlockTxs
	pool := s.b.Pool()
	n, _ := pool.Size()
	out := &api.FeeSuggestion{PendingTxs: n, MaxBlockTxs: api.Uint64(maxTxs)}
	if uint64(n) <= maxTxs {
		return out, nil
	}
	next := pool.Pending(int(maxTxs))
	if len(next) == 0 {
		return out, nil
	}
	lowest := next[0].Fee
	for _, tx := range next[1:] {
		lowest = min(lowest, tx.Fee)
	}
	out.Congested = true
	if lowest < ^uint64(0) {
		out.Fee = api.Uint64(lowest + 1)
	}
	return out, nil
}
