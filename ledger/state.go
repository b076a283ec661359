package ledger

import (
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger/staking"
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

// Leaf metas: the state commitment keeps with every leaf the preimage of
// its key (statetree.Change.Meta), so that a state restored from a snapshot
// can rebuild the flat indexes the ledger executes on. A meta is a kind
// byte and the preimage.
const (
	MetaAccount  = 'a' // 'a' || address (20 bytes): an account
	MetaRecord   = 'k' // 'k' || natural key: a state record (staking)
	MetaEvidence = 'e' // 'e' || evidence key (32 bytes): punished evidence
	// MaxLeafMeta bounds a meta; it is statetree.MaxMetaSize, which the
	// ledger cannot import (a test checks that they agree).
	MaxLeafMeta = 256
)

// AccountMeta is the meta of addr's account leaf.
func AccountMeta(addr crypto.Address) []byte { return append([]byte{MetaAccount}, addr[:]...) }

// RecordMeta is the meta of the leaf of the state record with natural key k.
func RecordMeta(k []byte) []byte { return append([]byte{MetaRecord}, k...) }

// EvidenceMeta is the meta of the leaf recording evidence with key k.
func EvidenceMeta(k crypto.Hash) []byte { return append([]byte{MetaEvidence}, k[:]...) }

// LeafKeyOf maps a leaf's meta to the state-commitment key it belongs
// under: AccountKey of an account's address, RecordKey of a record's natural
// key, the evidence key itself. A snapshot restorer checks each leaf's key
// against it before it trusts the meta. Anything else (empty, an unknown
// kind, a wrong length, more than MaxLeafMeta bytes) is an error.
func LeafKeyOf(meta []byte) ([32]byte, error) {
	if len(meta) == 0 {
		return [32]byte{}, fmt.Errorf("leaf meta: empty")
	}
	if len(meta) > MaxLeafMeta {
		return [32]byte{}, fmt.Errorf("leaf meta: %d bytes, at most %d", len(meta), MaxLeafMeta)
	}
	body := meta[1:]
	switch meta[0] {
	case MetaAccount:
		if len(body) != crypto.AddressSize {
			return [32]byte{}, fmt.Errorf("leaf meta: account address of %d bytes, want %d", len(body), crypto.AddressSize)
		}
		return AccountKey(crypto.Address(body)), nil
	case MetaRecord:
		if len(body) == 0 {
			return [32]byte{}, fmt.Errorf("leaf meta: record with an empty key")
		}
		return RecordKey(body), nil
	case MetaEvidence:
		if len(body) != len(crypto.Hash{}) {
			return [32]byte{}, fmt.Errorf("leaf meta: evidence key of %d bytes, want %d", len(body), len(crypto.Hash{}))
		}
		return [32]byte(body), nil
	}
	return [32]byte{}, fmt.Errorf("leaf meta: unknown kind %#x", meta[0])
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
	// ValidatorsAt returns the validator set that decides height h, for
	// any h from 1 to the next block's height + 1; evidence of an old
	// height is checked against the set of that height.
	ValidatorsAt(h uint64) (*ValidatorSet, error)
	// Record returns the state record under a natural key (the staking
	// records), nil if absent.
	Record(key []byte) ([]byte, error)
	// IterateRecords calls fn for every record whose key has prefix, in
	// ascending key order, until fn returns an error.
	IterateRecords(prefix []byte, fn func(key, value []byte) error) error
}

// RecordKey is the key in the state commitment of the record under the
// natural key k: SHA-256 over a domain tag and k, like AccountKey.
func RecordKey(k []byte) [32]byte {
	buf := make([]byte, 0, 7+len(k))
	buf = append(buf, "record/"...)
	buf = append(buf, k...)
	return crypto.Sum(buf)
}

// State is everything besides accounts that validating the next block
// needs: the chain's identity and parameters and the last block's
// identity. It is small and copied by value; accounts stay in the store.
type State struct {
	ChainID       string      `json:"chain_id"`
	GenesisTime   Timestamp   `json:"genesis_time"`
	Height        uint64      `json:"height,string"` // last committed block; 0 before the first
	LastBlockHash crypto.Hash `json:"last_block_hash"`
	LastBlockTime Timestamp   `json:"last_block_time"`
	AppHash       crypto.Hash `json:"app_hash"` // state commitment after Height
	// The validator sets around the next block. LastValidators decided
	// block Height (its commit is the next block's LastCommit), Validators
	// decides block Height+1 and NextValidators block Height+2: a change
	// caused by block H takes effect at H+2. At genesis all three are the
	// genesis set.
	LastValidators *ValidatorSet `json:"-"`
	Validators     *ValidatorSet `json:"-"`
	NextValidators *ValidatorSet `json:"-"`
	// Priorities are the proposer priorities of Validators at the start
	// of height Height+1, NextPriorities those of NextValidators at the
	// start of Height+2 (see ProposerPriorities). At genesis Priorities
	// are zero and NextPriorities one height on from them.
	Priorities     *ProposerPriorities `json:"-"`
	NextPriorities *ProposerPriorities `json:"-"`
	Params         ConsensusParams     `json:"params"`
	Staking        staking.Params      `json:"staking"`
	// TotalSupply is every token: balances, bonded and unbonding stake,
	// and the stake burned by slashing. Fixed at genesis.
	TotalSupply uint64 `json:"total_supply,string"`
}

// Copy returns a copy of s (validator sets are immutable and shared).
func (s *State) Copy() *State {
	c := *s
	return &c
}

// String is a one-line summary for logs.
func (s *State) String() string {
	return fmt.Sprintf("State{%s h=%d app=%.8s}", s.ChainID, s.Height, s.AppHash)
}

// WithValidators returns s with vals as the set of every height around
// the next block, with the priorities of the first heights: the state at
// genesis, before any change.
func (s *State) WithValidators(vals *ValidatorSet) *State {
	c := *s
	c.LastValidators, c.Validators, c.NextValidators = vals, vals, vals
	c.Priorities = GenesisPriorities(vals)
	c.NextPriorities = c.Priorities.Next(vals)
	return &c
}

// Next is the state after block b, whose execution on s gave res and left
// the state commitment at appHash. The validator sets move one height
// on: the set that decided b verifies the next block's last commit, the
// next set decides the next block, and a change b made is the set of the
// height after that. The proposer priorities move on with them: those of
// the height after next are the next height's, incremented once and
// carried over to its set.
func (s *State) Next(b *Block, res *Result, appHash crypto.Hash) *State {
	n := s.Copy()
	n.Height = b.Height()
	n.LastBlockHash = b.Hash()
	n.LastBlockTime = b.Header.Time
	n.AppHash = appHash
	n.LastValidators = s.Validators
	n.Validators = s.NextValidators
	n.Priorities = s.NextPriorities
	if res.NextValidators != nil {
		n.NextValidators = res.NextValidators
	}
	n.NextPriorities = s.NextPriorities.Next(n.NextValidators)
	return n
}

// PrioritiesAt returns the proposer priorities at the start of height h
// if s knows them: the heights Height+1 and Height+2.
func (s *State) PrioritiesAt(h uint64) (*ProposerPriorities, bool) {
	switch h {
	case s.Height + 1:
		return s.Priorities, s.Priorities != nil
	case s.Height + 2:
		return s.NextPriorities, s.NextPriorities != nil
	}
	return nil, false
}

// ValidatorsAt returns the set of height h if s knows it: the heights
// Height to Height+2.
func (s *State) ValidatorsAt(h uint64) (*ValidatorSet, bool) {
	switch h {
	case s.Height + 1:
		return s.Validators, true
	case s.Height + 2:
		return s.NextValidators, true
	case s.Height:
		if h > 0 {
			return s.LastValidators, true
		}
	}
	return nil, false
}
