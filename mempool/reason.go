package mempool

import (
	"errors"
	"fmt"
)

// Code is why a transaction was refused or later removed. The numeric
// values are stable: the RPC maps them to JSON-RPC application error codes
// and clients may store them, so a value is never renumbered or reused.
type Code int

// Reasons a transaction is refused by Add or AddBatch.
const (
	// Invalid: the transaction breaks a stateless rule other than those
	// below (a zero amount, a transfer to the sender itself, a nil tx).
	Invalid Code = 1
	// TxTooLarge: the encoding exceeds Config.MaxTxBytes.
	TxTooLarge Code = 2
	// WrongChain: the transaction names another chain ID.
	WrongChain Code = 3
	// BadSignature: the signature does not verify.
	BadSignature Code = 4
	// Duplicate: a transaction with the same hash is already pooled.
	Duplicate Code = 5
	// NonceTooLow: the nonce was already used by a committed transaction.
	// Also the removal reason for pooled transactions whose nonce a
	// committed transaction (for example one sent through another node)
	// consumed.
	NonceTooLow Code = 6
	// NonceGap: the nonce is Config.NonceWindow or more ahead of the
	// account's committed nonce.
	NonceGap Code = 7
	// InsufficientFunds: the sender's committed balance cannot pay this
	// transaction's amount plus fee on top of every pooled transaction of
	// the sender with a lower nonce (or amount + fee overflows). Also the
	// removal reason for pooled transactions that a commit, or a
	// lower-nonce arrival, left unaffordable.
	InsufficientFunds Code = 8
	// SenderLimit: the sender already holds Config.MaxPerSender pooled
	// transactions, all with lower nonces. Also the removal reason for the
	// sender's highest-nonce transaction when a lower nonce displaces it.
	SenderLimit Code = 9
	// FeeTooLowToReplace: a different transaction with the same sender
	// and nonce is pooled and this one's fee is not at least
	// Config.ReplaceBumpPercent higher.
	FeeTooLowToReplace Code = 10
	// MempoolFull: the pool is at a cap and holds nothing it may evict
	// for this transaction (see the package documentation).
	MempoolFull Code = 11
	// StateUnavailable: the sender's account could not be read.
	StateUnavailable Code = 12
)

// Reasons a pooled transaction is removed, carried by EventRemoved events
// (together with NonceTooLow, InsufficientFunds and SenderLimit above).
const (
	// Committed: the transaction was included in a committed block.
	Committed Code = 20
	// Replaced: a same-nonce transaction with a higher fee took its place.
	Replaced Code = 21
	// Evicted: the pool was full and a better-paying transaction needed room.
	Evicted Code = 22
	// Expired: it waited longer than Config.TTL.
	Expired Code = 23
)

var codeNames = map[Code]string{
	Invalid:            "invalid",
	TxTooLarge:         "tx_too_large",
	WrongChain:         "wrong_chain",
	BadSignature:       "bad_signature",
	Duplicate:          "duplicate",
	NonceTooLow:        "nonce_too_low",
	NonceGap:           "nonce_gap",
	InsufficientFunds:  "insufficient_funds",
	SenderLimit:        "sender_limit",
	FeeTooLowToReplace: "fee_too_low_to_replace",
	MempoolFull:        "mempool_full",
	StateUnavailable:   "state_unavailable",
	Committed:          "committed",
	Replaced:           "replaced",
	Evicted:            "evicted",
	Expired:            "expired",
}

// String returns the stable snake_case name of c, for logs and the RPC.
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code(%d)", int(c))
}

// MarshalText writes the name returned by String.
func (c Code) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// PeerFault reports whether a peer that relayed a transaction refused for
// c is at fault: the transaction could never be valid on this chain, so a
// gossip validator should reject (penalise) rather than ignore it. Every
// other reason depends on this node's state, pool or configuration and is
// no proof of misbehaviour.
func (c Code) PeerFault() bool {
	switch c {
	case Invalid, TxTooLarge, WrongChain, BadSignature:
		return true
	}
	return false
}

// RejectError is the error Add and AddBatch return for a refused
// transaction. Err carries the details and wraps the matching ledger
// sentinel where one exists (ledger.ErrWrongChain, ErrBadSignature,
// ErrNonceTooLow, ErrNonceGap, ErrInsufficientFunds), so errors.Is works.
type RejectError struct {
	Code Code
	Err  error
}

// Error returns "mempool: <reason>: <details>".
func (e *RejectError) Error() string { return fmt.Sprintf("mempool: %s: %v", e.Code, e.Err) }

// Unwrap returns Err.
func (e *RejectError) Unwrap() error { return e.Err }

// CodeOf returns the reason carried by err, if it is or wraps a RejectError.
func CodeOf(err error) (Code, bool) {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Code, true
	}
	return 0, false
}

func reject(c Code, err error) *RejectError { return &RejectError{Code: c, Err: err} }

func rejectf(c Code, format string, args ...any) *RejectError {
	return &RejectError{Code: c, Err: fmt.Errorf(format, args...)}
}
