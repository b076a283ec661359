package ledger

import (
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/wire"
)

const accountVersion = 1

// Account is an account's state. An account that was never credited has
// the zero Account and is absent from the state commitment.
type Account struct {
	Balance uint64 `json:"balance,string"`
	Nonce   uint64 `json:"nonce,string"` // the next nonce the account must use
}

// Encode returns the canonical encoding, the value committed in the app hash.
func (a Account) Encode() []byte {
	e := wire.NewWriter(make([]byte, 0, 17))
	e.U8(accountVersion)
	e.U64(a.Balance)
	e.U64(a.Nonce)
	return e.Bytes()
}

// DecodeAccount decodes a canonical account encoding.
func DecodeAccount(b []byte) (Account, error) {
	d := wire.NewReader(b)
	var a Account
	d.Version("account", accountVersion)
	a.Balance = d.U64()
	a.Nonce = d.U64()
	return a, d.Finish("account")
}

// AccountKey is the key under which addr's account sits in the state
// commitment: SHA-256 over a domain tag and the address.
func AccountKey(addr crypto.Address) [32]byte {
	buf := make([]byte, 0, 8+crypto.AddressSize)
	buf = append(buf, "account/"...)
	buf = append(buf, addr[:]...)
	return crypto.Sum(buf)
}

// EvidenceRecord is the value committed in the state, under Evidence.Key,
// for a punished equivocation: the height of the block that carried it.
func EvidenceRecord(height uint64) []byte {
	e := wire.NewWriter(nil)
	e.U8(1)
	e.U64(height)
	return e.Bytes()
}

// StateReader reads the committed state a block executes on.
type StateReader interface {
	// Account returns addr's account, the zero Account if absent.
	Account(addr crypto.Address) (Account, error)
	// EvidenceCommitted reports whether evidence with this Key was
	// already committed in an earlier block.
	EvidenceCommitted(key crypto.Hash) (bool, error)
}

// State is everything besides accounts that validating the next block
// needs: the chain's identity and parameters and the last block's
// identity. It is small and copied by value; accounts stay in the store.
type State struct {
	ChainID       string          `json:"chain_id"`
	GenesisTime   Timestamp       `json:"genesis_time"`
	Height        uint64          `json:"height,string"` // last committed block; 0 before the first
	LastBlockHash crypto.Hash     `json:"last_block_hash"`
	LastBlockTime Timestamp       `json:"last_block_time"`
	AppHash       crypto.Hash     `json:"app_hash"` // state commitment after Height
	Validators    *ValidatorSet   `json:"-"`
	Params        ConsensusParams `json:"params"`
	TotalSupply   uint64          `json:"total_supply,string"` // sum of balances, fixed at genesis
}

// Copy returns a copy of s (the validator set is immutable and shared).
func (s *State) Copy() *State {
	c := *s
	return &c
}

// String is a one-line summary for logs.
func (s *State) String() string {
	return fmt.Sprintf("State{%s h=%d app=%.8s}", s.ChainID, s.Height, s.AppHash)
}
