package ledger

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/crypto"
)

// TxKind says what a transaction does. Its values are part of the
// canonical encoding (the kind byte of version 2) and are never renumbered
// or reused.
type TxKind uint8

// Transaction kinds.
const (
	// TxTransfer moves Amount from the sender to To (encoding version 1).
	TxTransfer TxKind = 0
	// TxCreateValidator makes the sender the operator of a new validator
	// signing with ConsKey, named Moniker, self-bonding Amount.
	TxCreateValidator TxKind = 1
	// TxDelegate bonds Amount of the sender's tokens to the validator
	// whose operator is To.
	TxDelegate TxKind = 2
	// TxUndelegate unbonds Amount tokens of the sender's delegation to the
	// validator whose operator is To; they return after the unbonding
	// period.
	TxUndelegate TxKind = 3
	// TxUnjail asks that the validator the sender operates leave jail.
	TxUnjail TxKind = 4
)

// maxTxKind is the highest kind this version knows.
const maxTxKind = TxUnjail

// txKindNames are the JSON names of the kinds, by value.
var txKindNames = [...]string{
	TxTransfer:        "transfer",
	TxCreateValidator: "create_validator",
	TxDelegate:        "delegate",
	TxUndelegate:      "undelegate",
	TxUnjail:          "unjail",
}

// ErrUnknownTxKind is wrapped by every error for a kind this version does
// not know, in the binary encoding or in JSON.
var ErrUnknownTxKind = errors.New("unknown transaction kind")

// Known reports whether k is a kind this version knows.
func (k TxKind) Known() bool { return k <= maxTxKind }

// Staking reports whether k is one of the staking kinds (every known kind
// but the transfer).
func (k TxKind) Staking() bool { return k != TxTransfer && k.Known() }

// String returns the JSON name of k, or "kind(N)" for an unknown kind.
func (k TxKind) String() string {
	if k.Known() {
		return txKindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MarshalText writes the JSON name; an unknown kind is an error, so no
// JSON names a kind no decoder accepts.
func (k TxKind) MarshalText() ([]byte, error) {
	if !k.Known() {
		return nil, fmt.Errorf("%w: %d", ErrUnknownTxKind, uint8(k))
	}
	return []byte(txKindNames[k]), nil
}

// UnmarshalText reads a JSON name; the empty string is a transfer.
func (k *TxKind) UnmarshalText(b []byte) error {
	v, err := ParseTxKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// ParseTxKind parses a kind's name ("transfer", "create_validator",
// "delegate", "undelegate", "unjail"); "" is a transfer.
func ParseTxKind(s string) (TxKind, error) {
	if s == "" {
		return TxTransfer, nil
	}
	for k, name := range txKindNames {
		if s == name {
			return TxKind(k), nil
		}
	}
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return 0, fmt.Errorf("%w %q: want transfer, create_validator, delegate, undelegate or unjail", ErrUnknownTxKind, s)
}

// txFields says which of the optional fields a kind uses; Fee and Nonce
// are used by every kind. A field a kind does not use must be zero: it is
// not encoded, so the signature would not cover it.
type txFields struct {
	to, consKey, moniker, amount bool
}

var kindFields = [...]txFields{
	TxTransfer:        {to: true, amount: true},
	TxCreateValidator: {consKey: true, moniker: true, amount: true},
	TxDelegate:        {to: true, amount: true},
	TxUndelegate:      {to: true, amount: true},
	TxUnjail:          {},
}

// spendsAmount reports whether executing tx debits Amount from the sender
// (a transfer, a self-bond, a delegation). An undelegation's Amount is
// tokens leaving a delegation, not the account.
func (k TxKind) spendsAmount() bool {
	return k == TxTransfer || k == TxCreateValidator || k == TxDelegate
}

// Cost is what the sender's balance must cover for tx to execute: Amount
// plus Fee for a transfer, a validator's creation and a delegation, Fee
// alone for an undelegation and an unjail. ValidateBasic rules out
// overflow.
func (tx *Tx) Cost() uint64 {
	if tx.Kind.spendsAmount() {
		return tx.Amount + tx.Fee
	}
	return tx.Fee
}

// Counterparty is the account besides the sender that tx concerns: the
// recipient of a transfer, the validator operator of a delegation or an
// undelegation. ok is false for kinds that name none.
func (tx *Tx) Counterparty() (addr crypto.Address, ok bool) {
	if tx.Kind.Known() && kindFields[tx.Kind].to {
		return tx.To, true
	}
	return crypto.Address{}, false
}

// validateKind checks the rules of tx's kind other than the chain ID.
func (tx *Tx) validateKind() error {
	k := tx.Kind
	if !k.Known() {
		return fmt.Errorf("%w: %d", ErrUnknownTxKind, uint8(k))
	}
	f := kindFields[k]
	switch {
	case !f.to && !tx.To.IsZero():
		return fmt.Errorf("%s: to must be empty, is %s", k, tx.To)
	case !f.consKey && !tx.ConsKey.IsZero():
		return fmt.Errorf("%s: cons_key must be empty", k)
	case !f.moniker && tx.Moniker != "":
		return fmt.Errorf("%s: moniker must be empty", k)
	case !f.amount && tx.Amount != 0:
		return fmt.Errorf("%s: amount must be zero, is %d", k, tx.Amount)
	case f.amount && tx.Amount == 0:
		return fmt.Errorf("%s of zero amount", k)
	case k.spendsAmount() && addOverflows(tx.Amount, tx.Fee):
		return fmt.Errorf("%w: %s: amount + fee overflows", ErrInsufficientFunds, k)
	}
	switch k {
	case TxTransfer:
		if tx.Sender() == tx.To {
			return errors.New("transfer to the sender's own account")
		}
	case TxCreateValidator:
		if tx.ConsKey.IsZero() {
			return errors.New("create_validator: no consensus key")
		}
		if err := CheckValidatorName(tx.Moniker); err != nil {
			return fmt.Errorf("create_validator: moniker: %w", err)
		}
	case TxDelegate, TxUndelegate:
		if tx.To.IsZero() {
			return fmt.Errorf("%s: no validator operator address (to)", k)
		}
	}
	return nil
}

// CheckValidatorName accepts the validator names that print safely in
// logs: at most MaxValidatorNameLen bytes of valid UTF-8 without control
// characters. The empty name is allowed. Genesis validator names follow
// the same rule.
func CheckValidatorName(name string) error {
	if len(name) > MaxValidatorNameLen {
		return fmt.Errorf("%d bytes, at most %d", len(name), MaxValidatorNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%q is not valid UTF-8", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("%q contains a control character", name)
		}
	}
	return nil
}
