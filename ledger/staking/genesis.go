package staking

import (
	"fmt"
	"math"

	"github.com/ledgerd/ledgerd/crypto"
)

// GenesisValidator is a validator of the genesis file.
type GenesisValidator struct {
	// Operator is the account that operates the validator and owns its
	// self-delegation; zero means the consensus key's own address.
	Operator crypto.Address
	ConsKey  crypto.PubKey
	Moniker  string
	Power    uint64
}

// InitGenesis returns the staking records of genesis: every validator
// bonds Power * PowerUnit tokens as its operator's self-delegation, the
// pool's Bonded is their total (tokens the caller counts in the supply),
// and the active set holds them all. It fails on invalid parameters, more
// validators than MaxValidators (the genesis set must be the active set),
// a repeated operator or consensus key, zero power, a stake that
// overflows, or a bad moniker.
func InitGenesis(p Params, vals []GenesisValidator) ([]Change, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("staking genesis: %w", err)
	}
	if len(vals) > int(p.MaxValidators) {
		return nil, fmt.Errorf("staking genesis: %d validators, but max_validators is %d", len(vals), p.MaxValidators)
	}
	s := New(emptyReader{}, p)
	for i, gv := range vals {
		op := gv.Operator
		if op.IsZero() {
			op = gv.ConsKey.Address()
		}
		if gv.Power == 0 {
			return nil, fmt.Errorf("staking genesis: validators[%d]: zero power", i)
		}
		hi, bond := mulFull(gv.Power, p.PowerUnit)
		if hi != 0 || bond == math.MaxUint64 {
			return nil, fmt.Errorf("staking genesis: validators[%d]: power %d times power_unit %d overflows", i, gv.Power, p.PowerUnit)
		}
		if err := s.CreateValidator(0, op, gv.ConsKey, gv.Moniker, bond); err != nil {
			return nil, fmt.Errorf("staking genesis: validators[%d]: %w", i, err)
		}
	}
	if _, _, err := s.ActiveSet(); err != nil {
		return nil, fmt.Errorf("staking genesis: %w", err)
	}
	return s.Changes(), nil
}

// emptyReader is the state before genesis.
type emptyReader struct{}

func (emptyReader) Get([]byte) ([]byte, error)                          { return nil, nil }
func (emptyReader) Iterate([]byte, func(key, value []byte) error) error { return nil }
