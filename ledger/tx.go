package ledger

import (
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/wire"
)

// Encoding versions of Tx. A transfer is encoded as version 1, exactly as
// before transaction kinds existed, so every stored block, signature and
// hash of a transfer stays valid; every other kind is version 2, which
// carries the kind byte. Each transaction has one encoding: version 2 with
// the transfer's kind is refused.
const (
	txVersionTransfer = 1
	txVersionKinds    = 2
)

// MaxTxBytes bounds one encoded transaction; a transfer is about 170
// bytes, a validator's creation at most 270.
const MaxTxBytes = 1024

// minTxSize is the smallest possible encoded transaction: an unjail with an
// empty chain ID. A block decoder bounds its transaction count with it.
const minTxSize = 1 + 1 + 1 + crypto.PubKeySize + 8 + 8 + crypto.SignatureSize

// Tx is a signed transaction from the account of From, paying Fee to the
// block's proposer. Nonce must equal the sender's next nonce. Kind says
// what it does and which other fields it uses:
//
//	transfer:         To (recipient), Amount
//	create_validator: ConsKey, Moniker, Amount (self-bond)
//	delegate:         To (validator operator), Amount
//	undelegate:       To (validator operator), Amount (tokens)
//	unjail:           none (the sender is the operator)
//
// Fields a kind does not use must be zero (ValidateBasic), since its
// encoding, and so its signature, does not hold them. In JSON, kind is
// omitted for a transfer, cons_key and moniker when empty.
type Tx struct {
	ChainID string           `json:"chain_id"`
	Kind    TxKind           `json:"kind,omitzero"`
	From    crypto.PubKey    `json:"from"`
	To      crypto.Address   `json:"to"`
	ConsKey crypto.PubKey    `json:"cons_key,omitzero"`
	Moniker string           `json:"moniker,omitempty"`
	Amount  uint64           `json:"amount,string"`
	Fee     uint64           `json:"fee,string"`
	Nonce   uint64           `json:"nonce,string"`
	Sig     crypto.Signature `json:"signature"`
}

// Sender returns the address of the signing account.
func (tx *Tx) Sender() crypto.Address { return tx.From.Address() }

// encodeBody writes the transaction without its signature. A transfer is
// version 1: chain ID, From, To, Amount, Fee, Nonce. Any other kind is
// version 2: the kind, chain ID, From, the kind's own fields in the order
// ConsKey, Moniker, To, Amount (only those it uses), then Fee, Nonce.
func (tx *Tx) encodeBody(e *wire.Writer) {
	if tx.Kind == TxTransfer {
		e.U8(txVersionTransfer)
		e.PrefixedString(tx.ChainID)
		e.Fixed(tx.From[:])
		e.Fixed(tx.To[:])
		e.U64(tx.Amount)
		e.U64(tx.Fee)
		e.U64(tx.Nonce)
		return
	}
	e.U8(txVersionKinds)
	e.U8(uint8(tx.Kind))
	e.PrefixedString(tx.ChainID)
	e.Fixed(tx.From[:])
	if tx.Kind.Known() {
		f := kindFields[tx.Kind]
		if f.consKey {
			e.Fixed(tx.ConsKey[:])
		}
		if f.moniker {
			e.PrefixedString(tx.Moniker)
		}
		if f.to {
			e.Fixed(tx.To[:])
		}
		if f.amount {
			e.U64(tx.Amount)
		}
	}
	e.U64(tx.Fee)
	e.U64(tx.Nonce)
}

// SignBytes returns the bytes the sender signs: the body without the
// signature, under the transaction domain and the transaction's chain ID.
func (tx *Tx) SignBytes() []byte {
	e := wire.NewWriter(nil)
	tx.encodeBody(e)
	return crypto.SignBytes(crypto.DomainTx, tx.ChainID, e.Bytes())
}

// Sign fills in Sig using k, whose public key must be tx.From.
func (tx *Tx) Sign(k crypto.PrivKey) {
	tx.From = k.PubKey()
	tx.Sig = k.Sign(tx.SignBytes())
}

// Encode returns the canonical encoding.
func (tx *Tx) Encode() []byte {
	e := wire.NewWriter(make([]byte, 0, 180))
	tx.encodeBody(e)
	e.Fixed(tx.Sig[:])
	return e.Bytes()
}

// Hash is SHA-256 of the canonical encoding; it identifies the transaction.
func (tx *Tx) Hash() crypto.Hash { return crypto.Sum(tx.Encode()) }

// DecodeTx decodes a canonical transaction encoding.
func DecodeTx(b []byte) (*Tx, error) {
	if len(b) > MaxTxBytes {
		return nil, fmt.Errorf("decode tx: %d bytes, at most %d", len(b), MaxTxBytes)
	}
	d := wire.NewReader(b)
	tx := decodeTxFrom(d)
	if err := d.Finish("tx"); err != nil {
		return nil, err
	}
	return tx, nil
}

// decodeTxFrom reads one transaction. It refuses an unknown version, an
// unknown kind and version 2 with the transfer's kind, so every accepted
// input re-encodes to itself.
func decodeTxFrom(d *wire.Reader) *Tx {
	tx := new(Tx)
	switch v := d.U8(); {
	case d.Err() != nil:
	case v == txVersionTransfer:
		tx.ChainID = d.PrefixedString("chain id", crypto.MaxChainIDLen)
		d.Fixed(tx.From[:])
		d.Fixed(tx.To[:])
		tx.Amount = d.U64()
	case v == txVersionKinds:
		tx.Kind = TxKind(d.U8())
		switch {
		case d.Err() != nil:
		case tx.Kind == TxTransfer:
			d.Fail(errors.New("tx: version 2 with the transfer kind (a transfer is version 1)"))
		case !tx.Kind.Known():
			d.Fail(fmt.Errorf("tx: %w %d", ErrUnknownTxKind, uint8(tx.Kind)))
		default:
			tx.ChainID = d.PrefixedString("chain id", crypto.MaxChainIDLen)
			d.Fixed(tx.From[:])
			f := kindFields[tx.Kind]
			if f.consKey {
				d.Fixed(tx.ConsKey[:])
			}
			if f.moniker {
				tx.Moniker = d.PrefixedString("moniker", MaxValidatorNameLen)
			}
			if f.to {
				d.Fixed(tx.To[:])
			}
			if f.amount {
				tx.Amount = d.U64()
			}
		}
	default:
		d.Fail(fmt.Errorf("tx: unknown encoding version %d, want %d or %d", v, txVersionTransfer, txVersionKinds))
	}
	tx.Fee = d.U64()
	tx.Nonce = d.U64()
	d.Fixed(tx.Sig[:])
	return tx
}

// ValidateBasic checks what can be checked without state: the chain ID, a
// known kind, the fields the kind uses (a non-zero amount, a validator
// address, a consensus key, a moniker that prints safely) and that the
// fields it does not use are zero, no overflow of amount+fee, no transfer
// to oneself. It does not verify the signature (see VerifySig), so
// callers can batch that.
func (tx *Tx) ValidateBasic(chainID string) error {
	if tx.ChainID != chainID {
		return fmt.Errorf("%w: tx for chain %q, this is %q", ErrWrongChain, tx.ChainID, chainID)
	}
	return tx.validateKind()
}

// VerifySig reports whether the signature is valid for the transaction.
func (tx *Tx) VerifySig() error {
	if !tx.From.Verify(tx.SignBytes(), tx.Sig) {
		return ErrBadSignature
	}
	return nil
}
