package ledger

import (
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/wire"
)

// txVersion is the encoding version of Tx.
const txVersion = 1

// MaxTxBytes bounds one encoded transaction; a transfer is about 170 bytes.
const MaxTxBytes = 1024

// Tx is a signed transfer of Amount from the account of From to To, paying
// Fee to the block's proposer. Nonce must equal the sender's next nonce.
type Tx struct {
	ChainID string           `json:"chain_id"`
	From    crypto.PubKey    `json:"from"`
	To      crypto.Address   `json:"to"`
	Amount  uint64           `json:"amount,string"`
	Fee     uint64           `json:"fee,string"`
	Nonce   uint64           `json:"nonce,string"`
	Sig     crypto.Signature `json:"signature"`
}

// Sender returns the address of the signing account.
func (tx *Tx) Sender() crypto.Address { return tx.From.Address() }

func (tx *Tx) encodeBody(e *wire.Writer) {
	e.U8(txVersion)
	e.PrefixedString(tx.ChainID)
	e.Fixed(tx.From[:])
	e.Fixed(tx.To[:])
	e.U64(tx.Amount)
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

func decodeTxFrom(d *wire.Reader) *Tx {
	tx := new(Tx)
	d.Version("tx", txVersion)
	tx.ChainID = d.PrefixedString("chain id", crypto.MaxChainIDLen)
	d.Fixed(tx.From[:])
	d.Fixed(tx.To[:])
	tx.Amount = d.U64()
	tx.Fee = d.U64()
	tx.Nonce = d.U64()
	d.Fixed(tx.Sig[:])
	return tx
}

// ValidateBasic checks what can be checked without state: chain ID, a
// non-zero amount, no overflow of amount+fee. It does not verify the
// signature (see VerifySig), so callers can batch that.
func (tx *Tx) ValidateBasic(chainID string) error {
	if tx.ChainID != chainID {
		return fmt.Errorf("%w: tx for chain %q, this is %q", ErrWrongChain, tx.ChainID, chainID)
	}
	if tx.Amount == 0 {
		return errors.New("transfer of zero amount")
	}
	if addOverflows(tx.Amount, tx.Fee) {
		return fmt.Errorf("%w: amount + fee overflows", ErrInsufficientFunds)
	}
	if tx.Sender() == tx.To {
		return errors.New("transfer to the sender's own account")
	}
	return nil
}

// VerifySig reports whether the signature is valid for the transaction.
func (tx *Tx) VerifySig() error {
	if !tx.From.Verify(tx.SignBytes(), tx.Sig) {
		return ErrBadSignature
	}
	return nil
}
