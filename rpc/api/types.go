package api

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/statetree"
)

// Uint64 is an unsigned integer written in JSON as a decimal string, so
// no JSON tool rounds it; it reads either a decimal string or a number.
type Uint64 uint64

// MarshalJSON writes "123".
func (u Uint64) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatUint(uint64(u), 10) + `"`), nil
}

// UnmarshalJSON reads "123" or 123.
func (u *Uint64) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := parseUint(s)
	if err != nil {
		return err
	}
	*u = Uint64(v)
	return nil
}

func parseUint(s string) (uint64, error) {
	if s == "" || len(s) > 20 {
		return 0, fmt.Errorf("want a decimal unsigned integer, got %q", truncate(s))
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want a decimal unsigned integer below 2^64, got %q", truncate(s))
	}
	return v, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Ptr returns a pointer to u, for optional fields.
func (u Uint64) Ptr() *Uint64 { return &u }

// Height selects a block height in parameters: a number, a decimal
// string, or "latest" (the zero Height) for the latest committed height.
type Height struct {
	Value  uint64
	Latest bool
}

// Latest is the Height "latest".
var Latest = Height{Latest: true}

// At returns the Height h.
func At(h uint64) Height { return Height{Value: h} }

// MarshalJSON writes "latest" or the decimal string.
func (h Height) MarshalJSON() ([]byte, error) {
	if h.Latest {
		return []byte(`"latest"`), nil
	}
	return Uint64(h.Value).MarshalJSON()
}

// UnmarshalJSON reads "latest", a decimal string or a number.
func (h *Height) UnmarshalJSON(b []byte) error {
	if string(b) == `"latest"` {
		*h = Latest
		return nil
	}
	var u Uint64
	if err := u.UnmarshalJSON(b); err != nil {
		return fmt.Errorf(`height: %w (or "latest")`, err)
	}
	*h = Height{Value: uint64(u)}
	return nil
}

// HexBytes is a byte string written as lower-case hex; it reads hex with
// or without a 0x prefix.
type HexBytes []byte

// MarshalText writes hex.
func (h HexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// UnmarshalText reads hex, with or without 0x.
func (h *HexBytes) UnmarshalText(b []byte) error {
	v, err := DecodeHex(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// DecodeHex decodes hex with an optional 0x prefix, with an error that
// says what was wrong.
func DecodeHex(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("invalid hex: odd length %d", len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		var ie hex.InvalidByteError
		if errors.As(err, &ie) {
			return nil, fmt.Errorf("invalid hex: character %q", rune(ie))
		}
		return nil, fmt.Errorf("invalid hex: %v", err)
	}
	return b, nil
}

// TxParam is a signed transaction as a parameter: a string holding the hex
// of its canonical encoding (ledger.Tx.Encode, with or without 0x), or its
// JSON object form (amounts as decimal strings or numbers). The object's
// "kind" is optional (absent or "" is a transfer); chain_id, from, fee,
// nonce and signature are required, and so are the fields the kind uses
// (to and amount for a transfer, a delegation and an undelegation;
// cons_key and amount for a validator's creation; moniker is optional).
// A field the kind does not use may appear only with its zero value, as
// ledger.Tx writes it (ledger_sendTransaction refuses anything else as
// invalid). Hex longer than ledger.MaxTxBytes bytes fails with
// ErrTxTooLarge.
type TxParam struct {
	Tx *ledger.Tx
}

// ErrTxTooLarge is returned by TxParam.UnmarshalJSON for an encoding over
// ledger.MaxTxBytes; the server answers it with CodeTxTooLarge.
var ErrTxTooLarge = errors.New("transaction too large")

// MarshalJSON writes the hex form.
func (p TxParam) MarshalJSON() ([]byte, error) {
	if p.Tx == nil {
		return []byte("null"), nil
	}
	return json.Marshal(hex.EncodeToString(p.Tx.Encode()))
}

// UnmarshalJSON reads the hex or the object form.
func (p *TxParam) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if len(strings.TrimPrefix(s, "0x")) > 2*ledger.MaxTxBytes {
			return fmt.Errorf("%w: %d hex digits, at most %d", ErrTxTooLarge, len(s), 2*ledger.MaxTxBytes)
		}
		raw, err := DecodeHex(s)
		if err != nil {
			return err
		}
		tx, err := ledger.DecodeTx(raw)
		if err != nil {
			return err
		}
		p.Tx = tx
		return nil
	case len(b) > 0 && b[0] == '{':
		var j struct {
			ChainID   *string           `json:"chain_id"`
			Kind      ledger.TxKind     `json:"kind"`
			From      *crypto.PubKey    `json:"from"`
			To        *crypto.Address   `json:"to"`
			ConsKey   *crypto.PubKey    `json:"cons_key"`
			Moniker   *string           `json:"moniker"`
			Amount    *Uint64           `json:"amount"`
			Fee       *Uint64           `json:"fee"`
			Nonce     *Uint64           `json:"nonce"`
			Signature *crypto.Signature `json:"signature"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&j); err != nil {
			return err
		}
		var (
			needTo     = j.Kind == ledger.TxTransfer || j.Kind == ledger.TxDelegate || j.Kind == ledger.TxUndelegate
			needAmount = j.Kind != ledger.TxUnjail
			needCons   = j.Kind == ledger.TxCreateValidator
		)
		if j.ChainID == nil || j.From == nil || j.Fee == nil || j.Nonce == nil || j.Signature == nil ||
			needTo && j.To == nil || needAmount && j.Amount == nil || needCons && j.ConsKey == nil {
			switch j.Kind {
			case ledger.TxTransfer:
				return errors.New("transaction object needs chain_id, from, to, amount, fee, nonce and signature")
			case ledger.TxCreateValidator:
				return errors.New("create_validator transaction object needs chain_id, from, cons_key, amount, fee, nonce and signature")
			case ledger.TxUnjail:
				return errors.New("unjail transaction object needs chain_id, from, fee, nonce and signature")
			default:
				return fmt.Errorf("%s transaction object needs chain_id, from, to, amount, fee, nonce and signature", j.Kind)
			}
		}
		tx := &ledger.Tx{ChainID: *j.ChainID, Kind: j.Kind, From: *j.From, Fee: uint64(*j.Fee), Nonce: uint64(*j.Nonce), Sig: *j.Signature}
		if j.To != nil {
			tx.To = *j.To
		}
		if j.ConsKey != nil {
			tx.ConsKey = *j.ConsKey
		}
		if j.Moniker != nil {
			tx.Moniker = *j.Moniker
		}
		if j.Amount != nil {
			tx.Amount = uint64(*j.Amount)
		}
		if len(tx.ChainID) > crypto.MaxChainIDLen {
			return fmt.Errorf("chain_id longer than %d bytes", crypto.MaxChainIDLen)
		}
		if len(tx.Moniker) > ledger.MaxValidatorNameLen {
			return fmt.Errorf("moniker longer than %d bytes", ledger.MaxValidatorNameLen)
		}
		p.Tx = tx
		return nil
	}
	return errors.New("transaction: want a hex string or an object")
}

// Status is the answer of ledger_status.
type Status struct {
	ChainID     string      `json:"chain_id"`
	GenesisHash crypto.Hash `json:"genesis_hash"`
	NodeID      string      `json:"node_id"`
	Moniker     string      `json:"moniker"`
	// LatestHeight is the latest committed block; 0 before the first.
	LatestHeight    Uint64           `json:"latest_height"`
	LatestBlockHash crypto.Hash      `json:"latest_block_hash"`
	LatestBlockTime ledger.Timestamp `json:"latest_block_time"`
	// LatestAppHash commits to the state after LatestHeight; it appears
	// in the header of the next block.
	LatestAppHash crypto.Hash `json:"latest_app_hash"`
	CatchingUp    bool        `json:"catching_up"`
	Peers         int         `json:"peers"`
	// ValidatorAddress is this node's validator address, null when the
	// node does not validate.
	ValidatorAddress *crypto.Address `json:"validator_address"`
	ConsensusHeight  Uint64          `json:"consensus_height"`
	ConsensusRound   uint32          `json:"consensus_round"`
}

// Account is the answer of ledger_getAccount.
type Account struct {
	Address crypto.Address `json:"address"`
	// Height is the block after which Balance and Nonce hold.
	Height  Uint64 `json:"height"`
	Balance Uint64 `json:"balance"`
	// Nonce is the committed next nonce.
	Nonce Uint64 `json:"nonce"`
	// PendingNonce counts the sender's pending transactions: the nonce a
	// wallet should sign with next. Present for the latest height only.
	PendingNonce *Uint64 `json:"pending_nonce,omitempty"`
	// Proof is present when requested.
	Proof *AccountProof `json:"proof,omitempty"`
}

// AccountProof proves an account's value (or absence) in the state after
// a height.
type AccountProof struct {
	// AppHash is the state commitment the proof is against. It is the
	// AppHash of the header at HeaderHeight, which does not exist yet when
	// the proof is for the latest height.
	AppHash      crypto.Hash      `json:"app_hash"`
	HeaderHeight Uint64           `json:"header_height"`
	Proof        *statetree.Proof `json:"proof"`
}

// TxStatus says where a transaction is.
type TxStatus string

// Transaction statuses.
const (
	TxPending   TxStatus = "pending"   // in this node's mempool
	TxCommitted TxStatus = "committed" // in a committed block
	TxUnknown   TxStatus = "unknown"   // neither (never seen, dropped, or not yet gossiped here)
	TxDropped   TxStatus = "dropped"   // only in tx subscriptions: left the mempool uncommitted
)

// Transaction is the answer of ledger_getTransaction and
// ledger_sendTransactionAndWait, and the notification of tx subscriptions.
type Transaction struct {
	Hash   crypto.Hash `json:"hash"`
	Status TxStatus    `json:"status"`
	// Tx is the transaction (absent when unknown); Raw its encoding.
	Tx     *ledger.Tx      `json:"tx,omitempty"`
	Raw    HexBytes        `json:"raw,omitempty"`
	Sender *crypto.Address `json:"sender,omitempty"`
	// For committed transactions: where it sits, its receipt, and the
	// proof that its hash is leaf Index of the block's TxRoot.
	Height    *Uint64         `json:"height,omitempty"`
	Index     *uint32         `json:"index,omitempty"`
	BlockHash *crypto.Hash    `json:"block_hash,omitempty"`
	Receipt   *ledger.Receipt `json:"receipt,omitempty"`
	// Failed marks a committed transaction that failed: a staking
	// transaction the staking rules refused when it executed (an unknown
	// validator, too few shares, ...); Receipt.Error says why. It is
	// committed all the same: it paid its fee and used its nonce, and did
	// nothing else.
	Failed bool     `json:"failed,omitempty"`
	Proof  *TxProof `json:"proof,omitempty"`
	// Reason is why a dropped transaction left the mempool.
	Reason string `json:"reason,omitempty"`
}

// TxProof proves a transaction's inclusion: Proof.Verify(TxRoot, hash[:])
// holds, and TxRoot is the TxRoot of the header at the transaction's height.
type TxProof struct {
	TxRoot crypto.Hash        `json:"tx_root"`
	Proof  crypto.MerkleProof `json:"proof"`
}

// SendResult is the answer of ledger_sendTransaction.
type SendResult struct {
	Hash crypto.Hash `json:"hash"`
}

// Block is the answer of ledger_getBlockByHeight and ledger_getBlockByHash.
type Block struct {
	Hash     crypto.Hash   `json:"hash"`
	Size     int           `json:"size"`
	TxHashes []crypto.Hash `json:"tx_hashes"`
	Block    *ledger.Block `json:"block"`
}

// Commit is the answer of ledger_getCommit: the header of a height and the
// +2/3 precommits that decided it (a signed header).
type Commit struct {
	Height    Uint64         `json:"height"`
	BlockHash crypto.Hash    `json:"block_hash"`
	Header    *ledger.Header `json:"header"`
	Commit    *ledger.Commit `json:"commit"`
}

// Validator is one member of a validator set.
type Validator struct {
	Address crypto.Address `json:"address"`
	PubKey  crypto.PubKey  `json:"pub_key"`
	Power   Uint64         `json:"power"`
	Name    string         `json:"name,omitempty"`
	// Operator is the account that operates the validator (its staking
	// identity, see ledger_getValidator).
	Operator crypto.Address `json:"operator"`
}

// Validators is the answer of ledger_validators.
type Validators struct {
	Height     Uint64      `json:"height"`
	Hash       crypto.Hash `json:"hash"`
	TotalPower Uint64      `json:"total_power"`
	Validators []Validator `json:"validators"`
}

// Genesis is the answer of ledger_genesis. Hash is genesis.Doc.Hash of
// the document, which a client pins.
type Genesis struct {
	Hash    crypto.Hash     `json:"hash"`
	Genesis json.RawMessage `json:"genesis"`
}

// Mempool is the answer of ledger_mempool.
type Mempool struct {
	Txs   int `json:"txs"`
	Bytes int `json:"bytes"`
}

// PendingTx is one pending transaction.
type PendingTx struct {
	Hash crypto.Hash `json:"hash"`
	Tx   *ledger.Tx  `json:"tx"`
}

// Pending is the answer of ledger_pendingTransactions.
type Pending struct {
	// Total is the pool's size; Txs holds at most the requested limit,
	// in the order the next blocks would take them.
	Total int         `json:"total"`
	Txs   []PendingTx `json:"txs"`
}

// Peer is one connected peer.
type Peer struct {
	ID         string   `json:"id"`
	Addrs      []string `json:"addrs"`
	Inbound    bool     `json:"inbound"`
	Persistent bool     `json:"persistent"`
	Height     Uint64   `json:"height"`
	Score      float64  `json:"score"`
	// Penalty is the application penalty the node charged the peer
	// (refused messages, unbacked height claims), decaying with a
	// one-minute half-life; at 2600 the peer is banned.
	Penalty float64 `json:"penalty"`
}

// Peers is the answer of ledger_peers.
type Peers struct {
	Count int    `json:"count"`
	Peers []Peer `json:"peers"`
}

// FeeSuggestion is the answer of ledger_suggestFee.
type FeeSuggestion struct {
	// Fee is the fee to pay to be in the next block as things stand.
	Fee Uint64 `json:"fee"`
	// Congested is true when more transactions wait than one block holds;
	// Fee then outbids the last one that would make it in.
	Congested   bool   `json:"congested"`
	PendingTxs  int    `json:"pending_txs"`
	MaxBlockTxs Uint64 `json:"max_block_txs"`
}

// AccountTx is one committed transaction touching an account: one it
// sent, or one that names it in To (a transfer it received; a delegation
// or an undelegation to the validator it operates).
type AccountTx struct {
	Hash   crypto.Hash `json:"hash"`
	Height Uint64      `json:"height"`
	Index  uint32      `json:"index"`
	// Kind is absent for a transfer.
	Kind ledger.TxKind  `json:"kind,omitzero"`
	From crypto.Address `json:"from"`
	// To is the recipient of a transfer, the validator operator of a
	// delegation or an undelegation, and the zero address for a kind that
	// names none (create_validator, unjail).
	To     crypto.Address `json:"to"`
	Amount Uint64         `json:"amount"`
	Fee    Uint64         `json:"fee"`
	Nonce  Uint64         `json:"nonce"`
}

// AccountTxs is the answer of ledger_getAccountTransactions, oldest first.
type AccountTxs struct {
	Address crypto.Address `json:"address"`
	Txs     []AccountTx    `json:"txs"`
	// NextFromHeight and NextFromIndex, set together when more
	// transactions follow, are the from_height and from_index of the
	// next page: the position of its first transaction.
	NextFromHeight *Uint64 `json:"next_from_height,omitempty"`
	NextFromIndex  *uint32 `json:"next_from_index,omitempty"`
}

// Head is the notification of newHeads subscriptions.
type Head struct {
	Height Uint64        `json:"height"`
	Hash   crypto.Hash   `json:"hash"`
	NumTxs int           `json:"num_txs"`
	Header ledger.Header `json:"header"`
}

// AccountEvent is the notification of account subscriptions: a committed
// transaction that the account sent ("sent") or that names it in To
// ("received": a transfer to it, or, when Kind says so, a delegation or
// an undelegation to the validator it operates).
type AccountEvent struct {
	Address   crypto.Address `json:"address"`
	Direction string         `json:"direction"`
	AccountTx
}

// Health is the body of /health.
type Health struct {
	Healthy         bool     `json:"healthy"`
	CatchingUp      bool     `json:"catching_up"`
	Peers           int      `json:"peers"`
	SingleValidator bool     `json:"single_validator"`
	LatestHeight    Uint64   `json:"latest_height"`
	Problems        []string `json:"problems,omitempty"`
}

// Subscription kinds for ledger_subscribe.
const (
	SubNewHeads = "newHeads" // no argument
	SubAccount  = "account"  // argument: an address
	SubTx       = "tx"       // argument: a transaction hash
	// SubValidatorSet: no argument; a ValidatorSetChange per block that
	// changes the validator set.
	SubValidatorSet = "validatorSet"
)

// SubscriptionNotice is the params of a "ledger_subscription" notification.
type SubscriptionNotice struct {
	Subscription string          `json:"subscription"`
	Result       json.RawMessage `json:"result"`
}
