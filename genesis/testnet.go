package genesis

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/staking"
)

// DefaultPower is the voting power of a generated validator unless the
// spec says otherwise.
const DefaultPower = 10

// MaxTestnetAccounts bounds TestnetSpec.FundedAccounts, keeping a
// generated document well below MaxDocBytes.
const MaxTestnetAccounts = 100_000

// TestnetSpec describes a test network for GenerateTestnet.
type TestnetSpec struct {
	ChainID string
	// Validators is the number of validators, 1 to ledger.MaxValidators.
	Validators int
	// Powers, when not empty, gives validator i the power Powers[i]; it
	// must have one entry per validator. Empty means DefaultPower for all.
	Powers []uint64
	// Names, when not empty, names validator i Names[i]; it must have one
	// entry per validator, each a valid display name. Empty means
	// "validator-i".
	Names []string
	// FundedAccounts is the number of accounts funded with Balance each,
	// 1 to MaxTestnetAccounts.
	FundedAccounts int
	Balance        uint64
	// GenesisTime is required (callers usually pass time.Now()).
	GenesisTime time.Time
	// Params are the consensus parameters; nil means
	// ledger.DefaultConsensusParams().
	Params *ledger.ConsensusParams
	// Staking are the staking parameters; nil means staking.DefaultParams().
	Staking *staking.Params
	// Rand supplies the key material; nil means crypto/rand. Keys are
	// drawn in order, validators first, so a deterministic reader yields
	// the same testnet every time.
	Rand io.Reader
}

// Testnet is a generated genesis document with the private keys behind it.
type Testnet struct {
	Doc *Doc
	// ValidatorKeys[i] is the key of Doc.Validators[i].
	ValidatorKeys []crypto.PrivKey
	// AccountKeys[i] owns the account Doc.Balances[i] funds.
	AccountKeys []crypto.PrivKey
}

// GenerateTestnet draws a key for every validator and funded account and
// returns a valid genesis document for them. Validator i is named
// spec.Names[i], or "validator-i" without names. The document is complete
// when returned: callers write it as it is, so every copy of it is the same
// bytes. The result depends only on the spec and the bytes read
// from spec.Rand.
func GenerateTestnet(spec TestnetSpec) (*Testnet, error) {
	if err := spec.check(); err != nil {
		return nil, fmt.Errorf("testnet spec: %w", err)
	}
	ts, err := genesisTimeOf(spec.GenesisTime)
	if err != nil {
		return nil, fmt.Errorf("testnet spec: spec.GenesisTime: %w", err)
	}
	params := ledger.DefaultConsensusParams()
	if spec.Params != nil {
		params = *spec.Params
	}
	stakingParams := staking.DefaultParams()
	if spec.Staking != nil {
		stakingParams = *spec.Staking
	}
	tn := &Testnet{
		Doc: &Doc{
			ChainID:     spec.ChainID,
			GenesisTime: ts,
			Params:      params,
			Staking:     stakingParams,
			Validators:  make([]ledger.Validator, spec.Validators),
			Balances:    make([]Balance, spec.FundedAccounts),
		},
		ValidatorKeys: make([]crypto.PrivKey, spec.Validators),
		AccountKeys:   make([]crypto.PrivKey, spec.FundedAccounts),
	}
	for i := range tn.ValidatorKeys {
		k, err := crypto.GenerateKey(spec.Rand)
		if err != nil {
			return nil, fmt.Errorf("testnet: validator %d: %w", i, err)
		}
		power := uint64(DefaultPower)
		if len(spec.Powers) > 0 {
			power = spec.Powers[i]
		}
		name := fmt.Sprintf("validator-%d", i)
		if len(spec.Names) > 0 {
			name = spec.Names[i]
		}
		tn.ValidatorKeys[i] = k
		tn.Doc.Validators[i] = ledger.Validator{PubKey: k.PubKey(), Power: power, Name: name}
	}
	for i := range tn.AccountKeys {
		k, err := crypto.GenerateKey(spec.Rand)
		if err != nil {
			return nil, fmt.Errorf("testnet: account %d: %w", i, err)
		}
		tn.AccountKeys[i] = k
		tn.Doc.Balances[i] = Balance{Address: k.PubKey().Address(), Amount: spec.Balance}
	}
	if err := tn.Doc.Validate(); err != nil {
		return nil, fmt.Errorf("testnet: generated genesis is invalid: %w", err)
	}
	return tn, nil
}

// check rejects a spec before any key is drawn.
func (s *TestnetSpec) check() error {
	switch {
	case s.Validators < 1 || s.Validators > ledger.MaxValidators:
		return fmt.Errorf("spec.Validators is %d, want 1 to %d", s.Validators, ledger.MaxValidators)
	case len(s.Powers) != 0 && len(s.Powers) != s.Validators:
		return fmt.Errorf("spec.Powers has %d entries for %d validators", len(s.Powers), s.Validators)
	case len(s.Names) != 0 && len(s.Names) != s.Validators:
		return fmt.Errorf("spec.Names has %d entries for %d validators", len(s.Names), s.Validators)
	case s.FundedAccounts < 1 || s.FundedAccounts > MaxTestnetAccounts:
		return fmt.Errorf("spec.FundedAccounts is %d, want 1 to %d", s.FundedAccounts, MaxTestnetAccounts)
	case s.Balance == 0:
		return errors.New("spec.Balance is zero; fund the accounts with a positive amount")
	case s.Balance > math.MaxUint64/uint64(s.FundedAccounts):
		return fmt.Errorf("spec.Balance %d for %d accounts makes a total supply above %d", s.Balance, s.FundedAccounts, uint64(math.MaxUint64))
	case s.GenesisTime.IsZero():
		return errors.New("spec.GenesisTime is not set")
	}
	if err := crypto.ValidateChainID(s.ChainID); err != nil {
		return fmt.Errorf("spec.ChainID: %w", err)
	}
	for i, n := range s.Names {
		if err := checkName(n); err != nil {
			return fmt.Errorf("spec.Names[%d] %q: %w", i, n, err)
		}
	}
	return nil
}

// DevDoc returns the genesis of a single-validator dev chain (`ledgerd
// dev`): validator, named "dev", with DefaultPower, devAccount funded with
// balance, the default consensus parameters, genesis time t. It is valid
// when its arguments are: a valid chain ID, a non-zero key and address, a
// positive balance and a time between 1970 and 2262.
func DevDoc(chainID string, validator crypto.PubKey, devAccount crypto.Address, balance uint64, t time.Time) *Doc {
	return &Doc{
		ChainID:     chainID,
		GenesisTime: ledger.TimestampOf(t),
		Params:      ledger.DefaultConsensusParams(),
		Staking:     staking.DefaultParams(),
		Validators:  []ledger.Validator{{PubKey: validator, Power: DefaultPower, Name: "dev"}},
		Balances:    []Balance{{Address: devAccount, Amount: balance}},
	}
}
