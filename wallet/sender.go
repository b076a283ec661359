package wallet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// maxSendAttempts bounds how often Send re-syncs its nonce for one transfer.
const maxSendAttempts = 4

// Sender sends transfers from one key, numbering them itself: it asks
// the node for the account's pending nonce once, then counts locally, so
// any number of transfers sent in a row get consecutive nonces without
// waiting for each other. When the node says the nonce is off (used, too
// far ahead, or taken by a transfer sent elsewhere) it re-syncs from the
// node's answer and signs again. It is safe for concurrent use; transfers
// are numbered in the order Send is called.
type Sender struct {
	c       *client.Client
	key     crypto.PrivKey
	chainID string

	mu     sync.Mutex
	next   uint64
	synced bool
}

// NewSender returns a Sender for key on chainID through c.
func NewSender(c *client.Client, key crypto.PrivKey, chainID string) *Sender {
	return &Sender{c: c, key: key, chainID: chainID}
}

// Address is the sending account.
func (s *Sender) Address() crypto.Address { return s.key.PubKey().Address() }

// Resync makes the next Send ask the node for the pending nonce again.
func (s *Sender) Resync() {
	s.mu.Lock()
	s.synced = false
	s.mu.Unlock()
}

func (s *Sender) syncLocked(ctx context.Context) error {
	acc, err := s.c.Account(ctx, s.Address())
	if err != nil {
		return fmt.Errorf("fetch nonce of %s: %w", s.Address(), err)
	}
	s.next = uint64(acc.Nonce)
	if acc.PendingNonce != nil {
		s.next = uint64(*acc.PendingNonce)
	}
	s.synced = true
	return nil
}

// Send signs a transfer of amount (plus fee) to to with the next nonce
// and submits it. It returns the transaction once the node admitted it.
func (s *Sender) Send(ctx context.Context, to crypto.Address, amount, fee uint64) (*ledger.Tx, error) {
	return s.SendTx(ctx, ledger.Tx{To: to, Amount: amount, Fee: fee})
}

// SendTx signs tx, a transaction of any kind with the fields its kind
// uses filled in, as the next one from this key (the chain ID, sender,
// nonce and signature are set here) and submits it, numbering it like
// Send. It returns the signed transaction once the node admitted it.
func (s *Sender) SendTx(ctx context.Context, tmpl ledger.Tx) (*ledger.Tx, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last error
	for attempt := 0; attempt < maxSendAttempts; attempt++ {
		if !s.synced {
			if err := s.syncLocked(ctx); err != nil {
				return nil, err
			}
		}
		tx := new(ledger.Tx)
		*tx = tmpl
		tx.ChainID, tx.Nonce = s.chainID, s.next
		tx.Sign(s.key)
		_, err := s.c.SendTx(ctx, tx)
		if err == nil {
			s.next++
			return tx, nil
		}
		var rerr *client.Error
		if !errors.As(err, &rerr) {
			// The node may or may not have admitted it: ask again next time.
			s.synced = false
			return nil, err
		}
		switch rerr.Code {
		case api.CodeDuplicate:
			// This very transaction is already pending (a retry).
			s.next++
			return tx, nil
		case api.CodeNonceTooLow, api.CodeNonceGap, api.CodeFeeTooLowToReplace:
			if rerr.Code == api.CodeNonceTooLow {
				if t, err := s.c.Tx(ctx, tx.Hash(), false); err == nil && t.Status == api.TxCommitted {
					s.next++
					return tx, nil
				}
			}
			if pn := rerr.Details().PendingNonce; pn != nil && uint64(*pn) != s.next {
				s.next = uint64(*pn)
			} else {
				s.synced = false
			}
			last = err
			continue
		default:
			return nil, err
		}
	}
	return nil, fmt.Errorf("nonce still out of step after %d attempts: %w", maxSendAttempts, last)
}

// SendAndWait is Send, then waits until the transfer commits (timeout 0:
// the node's default) and returns its receipt.
func (s *Sender) SendAndWait(ctx context.Context, to crypto.Address, amount, fee uint64, timeout time.Duration) (*api.Transaction, error) {
	tx, err := s.Send(ctx, to, amount, fee)
	if err != nil {
		return nil, err
	}
	return Wait(ctx, s.c, tx, timeout)
}

// Wait blocks until tx commits, through ledger_sendTransactionAndWait:
// resending a pending or committed transaction is harmless, and it works
// through whichever endpoint answers.
func Wait(ctx context.Context, c *client.Client, tx *ledger.Tx, timeout time.Duration) (*api.Transaction, error) {
	return c.SendTxAndWait(ctx, tx, timeout)
}

// WaitProven blocks until the block after height exists: its header
// carries the app hash of the state after height, so a light client can
// prove what a transfer committed at height changed only from then on.
// (Nodes that make blocks only for transactions still make that one.)
func WaitProven(ctx context.Context, c *client.Client, height uint64) (*api.Status, error) {
	st, err := c.WaitForHeight(ctx, height+1)
	if err != nil {
		return nil, fmt.Errorf("committed at height %d; waiting for header %d, which proves the new state: %w", height, height+1, err)
	}
	return st, nil
}
