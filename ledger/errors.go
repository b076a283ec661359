package ledger

import "errors"

// Sentinel errors for transfers that fail validation. The mempool and the
// RPC map them to the reasons they return to clients; callers match them
// with errors.Is, the wrapped message carries the details.
var (
	ErrWrongChain        = errors.New("wrong chain ID")
	ErrBadSignature      = errors.New("bad signature")
	ErrNonceTooLow       = errors.New("nonce too low")
	ErrNonceGap          = errors.New("nonce gap")
	ErrInsufficientFunds = errors.New("insufficient funds")
	ErrOverflow          = errors.New("balance overflow")
)
