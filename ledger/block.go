package ledger

import (
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/wire"
)

const (
	headerVersion = 2
	blockVersion  = 1
)

// Timestamp is a time in Unix nanoseconds, written in JSON as RFC 3339.
// Blocks carry it as an integer so their encoding stays canonical.
type Timestamp int64

// TimestampOf converts t.
func TimestampOf(t time.Time) Timestamp { return Timestamp(t.UnixNano()) }

// Time converts the timestamp to a time.Time in UTC.
func (t Timestamp) Time() time.Time { return time.Unix(0, int64(t)).UTC() }

// MarshalText writes RFC 3339 with nanoseconds.
func (t Timestamp) MarshalText() ([]byte, error) {
	return []byte(t.Time().Format(time.RFC3339Nano)), nil
}

// UnmarshalText parses RFC 3339.
func (t *Timestamp) UnmarshalText(b []byte) error {
	v, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	// Unix nanoseconds in an int64 cover 1678 to 2262; outside, UnixNano wraps.
	if v.Year() < 1970 || v.Year() > 2261 {
		return fmt.Errorf("timestamp %s: year outside 1970-2261", v.Format(time.RFC3339))
	}
	*t = TimestampOf(v)
	return nil
}

// Header is a block's header. Its hash identifies the block; the header
// commits to everything else in the block through the roots it carries.
type Header struct {
	ChainID        string      `json:"chain_id"`
	Height         uint64      `json:"height,string"`
	Time           Timestamp   `json:"time"`
	LastBlockHash  crypto.Hash `json:"last_block_hash"`
	TxRoot         crypto.Hash `json:"tx_root"`
	AppHash        crypto.Hash `json:"app_hash"`        // state after the previous block
	ValidatorsHash crypto.Hash `json:"validators_hash"` // the set that decides this block
	// NextValidatorsHash is the set of the next height. A change of the
	// set that block H causes takes effect at H+2, so this header already
	// knows it: light clients follow the set from header to header.
	NextValidatorsHash crypto.Hash    `json:"next_validators_hash"`
	LastCommitHash     crypto.Hash    `json:"last_commit_hash"`
	EvidenceHash       crypto.Hash    `json:"evidence_hash"`
	Proposer           crypto.Address `json:"proposer"`
}

func (h *Header) encodeTo(e *wire.Writer) {
	e.U8(headerVersion)
	e.PrefixedString(h.ChainID)
	e.U64(h.Height)
	e.I64(int64(h.Time))
	e.Fixed(h.LastBlockHash[:])
	e.Fixed(h.TxRoot[:])
	e.Fixed(h.AppHash[:])
	e.Fixed(h.ValidatorsHash[:])
	e.Fixed(h.NextValidatorsHash[:])
	e.Fixed(h.LastCommitHash[:])
	e.Fixed(h.EvidenceHash[:])
	e.Fixed(h.Proposer[:])
}

// Encode returns the canonical encoding.
func (h *Header) Encode() []byte {
	e := wire.NewWriter(make([]byte, 0, 256))
	h.encodeTo(e)
	return e.Bytes()
}

// Hash is SHA-256 of the canonical encoding: the block's identity.
func (h *Header) Hash() crypto.Hash { return crypto.Sum(h.Encode()) }

func decodeHeaderFrom(d *wire.Reader) Header {
	var h Header
	d.Version("header", headerVersion)
	h.ChainID = d.PrefixedString("chain id", crypto.MaxChainIDLen)
	h.Height = d.U64()
	h.Time = Timestamp(d.I64())
	d.Fixed(h.LastBlockHash[:])
	d.Fixed(h.TxRoot[:])
	d.Fixed(h.AppHash[:])
	d.Fixed(h.ValidatorsHash[:])
	d.Fixed(h.NextValidatorsHash[:])
	d.Fixed(h.LastCommitHash[:])
	d.Fixed(h.EvidenceHash[:])
	d.Fixed(h.Proposer[:])
	return h
}

// DecodeHeader decodes a canonical header encoding.
func DecodeHeader(b []byte) (*Header, error) {
	d := wire.NewReader(b)
	h := decodeHeaderFrom(d)
	if err := d.Finish("header"); err != nil {
		return nil, err
	}
	return &h, nil
}

// Block is a header, the transactions it orders, evidence of misbehaviour,
// and the commit that decided the previous block (nil at height 1).
type Block struct {
	Header     Header      `json:"header"`
	Txs        []*Tx       `json:"txs"`
	Evidence   []*Evidence `json:"evidence"`
	LastCommit *Commit     `json:"last_commit"`
}

// Hash is the header's hash.
func (b *Block) Hash() crypto.Hash { return b.Header.Hash() }

// Height is the header's height.
func (b *Block) Height() uint64 { return b.Header.Height }

// MaxBlockDecodeBytes bounds any block the decoder accepts, whatever the
// chain's parameters say.
const MaxBlockDecodeBytes = MaxBlockBytesLimit + 1<<20

// Encode returns the canonical encoding.
func (b *Block) Encode() []byte {
	e := wire.NewWriter(make([]byte, 0, 512+len(b.Txs)*170))
	e.U8(blockVersion)
	b.Header.encodeTo(e)
	e.Uvarint(uint64(len(b.Txs)))
	for _, tx := range b.Txs {
		tx.encodeBody(e)
		e.Fixed(tx.Sig[:])
	}
	e.Uvarint(uint64(len(b.Evidence)))
	for _, ev := range b.Evidence {
		ev.encodeTo(e)
	}
	e.Bool(b.LastCommit != nil)
	if b.LastCommit != nil {
		b.LastCommit.encodeTo(e)
	}
	return e.Bytes()
}

// DecodeBlock decodes a canonical block encoding.
func DecodeBlock(buf []byte) (*Block, error) {
	if len(buf) > MaxBlockDecodeBytes {
		return nil, fmt.Errorf("decode block: %d bytes, at most %d", len(buf), MaxBlockDecodeBytes)
	}
	d := wire.NewReader(buf)
	b := new(Block)
	d.Version("block", blockVersion)
	b.Header = decodeHeaderFrom(d)
	n := d.Count("txs", MaxBlockTxsLimit, minTxSize)
	if n > 0 {
		b.Txs = make([]*Tx, 0, n)
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		b.Txs = append(b.Txs, decodeTxFrom(d))
	}
	n = d.Count("evidence", MaxEvidenceLimit, 2*voteSize)
	for i := 0; i < n && d.Err() == nil; i++ {
		b.Evidence = append(b.Evidence, decodeEvidenceFrom(d))
	}
	if d.Bool("last commit presence") {
		b.LastCommit = decodeCommitFrom(d)
	}
	if err := d.Finish("block"); err != nil {
		return nil, err
	}
	return b, nil
}

// TxHashes returns the hashes of the block's transactions in order.
func (b *Block) TxHashes() []crypto.Hash {
	out := make([]crypto.Hash, len(b.Txs))
	for i, tx := range b.Txs {
		out[i] = tx.Hash()
	}
	return out
}

// TxRootOf is the Merkle root over the hashes of txs, the header's TxRoot.
func TxRootOf(txs []*Tx) crypto.Hash {
	hs := make([]crypto.Hash, len(txs))
	for i, tx := range txs {
		hs[i] = tx.Hash()
	}
	return crypto.MerkleRootOfHashes(hs)
}

// EvidenceRootOf is the Merkle root over the encodings of evs.
func EvidenceRootOf(evs []*Evidence) crypto.Hash {
	items := make([][]byte, len(evs))
	for i, ev := range evs {
		e := wire.NewWriter(nil)
		ev.encodeTo(e)
		items[i] = e.Bytes()
	}
	return crypto.MerkleRoot(items)
}

// FillHeader sets the header's TxRoot, EvidenceHash and LastCommitHash
// from the block's contents; proposers call it after filling the block.
func (b *Block) FillHeader() {
	b.Header.TxRoot = TxRootOf(b.Txs)
	b.Header.EvidenceHash = EvidenceRootOf(b.Evidence)
	b.Header.LastCommitHash = b.LastCommit.Hash()
}
