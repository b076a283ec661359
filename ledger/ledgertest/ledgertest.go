// Package ledgertest builds valid chains for tests: deterministic keys, a
// genesis state, blocks that execute, and commits signed by the validators.
// It is imported only by tests.
package ledgertest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/memstate"
	"github.com/ledgerd/ledgerd/ledger/staking"
)

// ChainID is the chain ID of test chains.
const ChainID = "ledgerd-test"

// Key returns the deterministic private key number i of a test namespace.
func Key(namespace string, i int) crypto.PrivKey {
	seed := crypto.Sum([]byte(fmt.Sprintf("ledgertest/%s/%d", namespace, i)))
	k, err := crypto.PrivKeyFromSeed(seed[:])
	if err != nil {
		panic(err) // a 32-byte seed cannot fail
	}
	return k
}

// Chain is a test chain: validators with their keys, funded accounts with
// theirs, and the genesis state.
type Chain struct {
	ValKeys  []crypto.PrivKey // indexed like Genesis.Validators
	Accounts []crypto.PrivKey
	Genesis  *ledger.State
	Balances []ledger.AccountUpdate
	// Records are the genesis staking records: each validator's stake
	// bonded as its own self-delegation.
	Records []ledger.Record
}

// NewChain returns a chain with nVals validators of power 10 and nAccts
// accounts holding balance each.
func NewChain(nVals, nAccts int, balance uint64) *Chain {
	c := &Chain{}
	vals := make([]ledger.Validator, nVals)
	keys := make(map[crypto.Address]crypto.PrivKey, nVals)
	for i := range vals {
		k := Key("validator", i)
		vals[i] = ledger.Validator{PubKey: k.PubKey(), Power: 10, Name: fmt.Sprintf("val%d", i), Operator: k.PubKey().Address()}
		keys[k.PubKey().Address()] = k
	}
	vs, err := ledger.NewValidatorSet(vals)
	if err != nil {
		panic(err)
	}
	for i := 0; i < vs.Size(); i++ {
		c.ValKeys = append(c.ValKeys, keys[vs.Get(i).Address()])
	}
	var supply uint64
	for i := 0; i < nAccts; i++ {
		k := Key("account", i)
		c.Accounts = append(c.Accounts, k)
		c.Balances = append(c.Balances, ledger.AccountUpdate{Address: k.PubKey().Address(), Account: ledger.Account{Balance: balance}})
		supply += balance
	}
	sort.Slice(c.Balances, func(i, j int) bool {
		return bytes.Compare(c.Balances[i].Address[:], c.Balances[j].Address[:]) < 0
	})
	sp := staking.DefaultParams()
	gvs := make([]staking.GenesisValidator, len(vals))
	for i, v := range vals {
		gvs[i] = staking.GenesisValidator{Operator: v.Operator, ConsKey: v.PubKey, Moniker: v.Name, Power: v.Power}
		supply += v.Power * sp.PowerUnit
	}
	changes, err := staking.InitGenesis(sp, gvs)
	if err != nil {
		panic(fmt.Sprintf("ledgertest: staking genesis: %v", err))
	}
	for _, ch := range changes {
		c.Records = append(c.Records, ledger.Record{Key: ch.Key, Value: ch.Value})
	}
	c.Genesis = (&ledger.State{
		ChainID:     ChainID,
		GenesisTime: ledger.TimestampOf(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		Params:      ledger.DefaultConsensusParams(),
		Staking:     sp,
		TotalSupply: supply,
	}).WithValidators(vs)
	return c
}

// Transfer returns a signed transfer.
func Transfer(from crypto.PrivKey, to crypto.Address, amount, fee, nonce uint64) *ledger.Tx {
	tx := &ledger.Tx{ChainID: ChainID, To: to, Amount: amount, Fee: fee, Nonce: nonce}
	tx.Sign(from)
	return tx
}

// CreateValidator returns a signed create_validator transaction: from
// becomes the operator of a validator signing with consKey, self-bonding
// selfBond.
func CreateValidator(from crypto.PrivKey, consKey crypto.PubKey, moniker string, selfBond, fee, nonce uint64) *ledger.Tx {
	return sign(from, &ledger.Tx{Kind: ledger.TxCreateValidator, ConsKey: consKey, Moniker: moniker, Amount: selfBond, Fee: fee, Nonce: nonce})
}

// Delegate returns a signed delegation of amount to the validator whose
// operator is operator.
func Delegate(from crypto.PrivKey, operator crypto.Address, amount, fee, nonce uint64) *ledger.Tx {
	return sign(from, &ledger.Tx{Kind: ledger.TxDelegate, To: operator, Amount: amount, Fee: fee, Nonce: nonce})
}

// Undelegate returns a signed undelegation of amount tokens from the
// validator whose operator is operator.
func Undelegate(from crypto.PrivKey, operator crypto.Address, amount, fee, nonce uint64) *ledger.Tx {
	return sign(from, &ledger.Tx{Kind: ledger.TxUndelegate, To: operator, Amount: amount, Fee: fee, Nonce: nonce})
}

// Unjail returns a signed unjail of the validator from operates.
func Unjail(from crypto.PrivKey, fee, nonce uint64) *ledger.Tx {
	return sign(from, &ledger.Tx{Kind: ledger.TxUnjail, Fee: fee, Nonce: nonce})
}

func sign(from crypto.PrivKey, tx *ledger.Tx) *ledger.Tx {
	tx.ChainID = ChainID
	tx.Sign(from)
	return tx
}

// NextBlock builds the block following st with txs and lastCommit (nil at
// height 1), proposed by validator proposer, one second after the last block.
func (c *Chain) NextBlock(st *ledger.State, txs []*ledger.Tx, lastCommit *ledger.Commit, proposer int) *ledger.Block {
	t := st.LastBlockTime + ledger.Timestamp(time.Second)
	if st.Height == 0 {
		t = st.GenesisTime + ledger.Timestamp(time.Second)
	}
	b := &ledger.Block{
		Header: ledger.Header{
			ChainID:            st.ChainID,
			Height:             st.Height + 1,
			Time:               t,
			LastBlockHash:      st.LastBlockHash,
			AppHash:            st.AppHash,
			ValidatorsHash:     st.Validators.Hash(),
			NextValidatorsHash: st.NextValidators.Hash(),
			Proposer:           st.Validators.Get(proposer % st.Validators.Size()).Address(),
		},
		Txs:        txs,
		LastCommit: lastCommit,
	}
	b.FillHeader()
	return b
}

// Commit returns a commit for b at round 0 signed by the validators whose
// indices are listed (all of them when none are).
func (c *Chain) Commit(b *ledger.Block, signers ...int) *ledger.Commit {
	if len(signers) == 0 {
		for i := range c.ValKeys {
			signers = append(signers, i)
		}
	}
	sort.Ints(signers)
	id := b.Hash()
	msg := ledger.VoteSignBytes(ChainID, ledger.Precommit, b.Height(), 0, id)
	cm := &ledger.Commit{Height: b.Height(), Round: 0, BlockID: id}
	for _, i := range signers {
		cm.Sigs = append(cm.Sigs, ledger.CommitSig{ValidatorIndex: uint32(i), Sig: c.ValKeys[i].Sign(msg)})
	}
	return cm
}

// MapState is an in-memory ledger.StateReader for unit tests.
type MapState = memstate.State

// NewMapState returns a MapState holding the chain's genesis balances and
// validator set.
func (c *Chain) NewMapState() *MapState {
	return memstate.New(c.Genesis.Validators, c.Balances, c.Records)
}

// Seed returns a PCG source for seed, so tests draw from math/rand/v2 reproducibly.
func Seed(seed uint64) *rand.Rand {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	return rand.New(rand.NewPCG(seed, binary.LittleEndian.Uint64(b[:])^0x9e3779b97f4a7c15))
}
