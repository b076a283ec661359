package api

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/staking"
	"github.com/ledgerd/ledgerd/ledger/statetree"
)

// MaxStakingPage is the largest page of the staking listings
// (ledger_validatorsByPower, ledger_getDelegationsBy*, ledger_getUnbondings).
const MaxStakingPage = staking.MaxPage

// RecordProof proves one state record, or its absence, in the state a
// StateProof names: statetree.Verify(AppHash, ledger.RecordKey(Key), Value,
// Proof) holds.
type RecordProof struct {
	// Key is the record's natural key (for example "stk/pool").
	Key HexBytes `json:"key"`
	// Value is the record's canonical encoding; absent when the record
	// does not exist (the proof then proves its absence).
	Value HexBytes         `json:"value,omitempty"`
	Proof *statetree.Proof `json:"proof"`
}

// StateProof proves state records against AppHash, the commitment to the
// state after a height, which the header at HeaderHeight (that height + 1)
// carries. Verify checks the records against AppHash only: a light client
// also checks that AppHash is the one of a header it verified.
type StateProof struct {
	AppHash      crypto.Hash   `json:"app_hash"`
	HeaderHeight Uint64        `json:"header_height"`
	Records      []RecordProof `json:"records"`
}

// ErrProof is wrapped by the errors of the staking answers' VerifyProof.
var ErrProof = errors.New("staking answer does not match its proof")

// Verify checks every record's proof against AppHash.
func (p *StateProof) Verify() error {
	if p == nil {
		return fmt.Errorf("%w: no proof", ErrProof)
	}
	for _, r := range p.Records {
		if err := statetree.Verify(p.AppHash, ledger.RecordKey(r.Key), r.Value, r.Proof); err != nil {
			return fmt.Errorf("%w: record %q: %v", ErrProof, []byte(r.Key), err)
		}
	}
	return nil
}

// record returns the proven value of key: nil when proven absent, an
// error when the proof does not cover key.
func (p *StateProof) record(key []byte) ([]byte, error) {
	for _, r := range p.Records {
		if bytes.Equal(r.Key, key) {
			return r.Value, nil
		}
	}
	return nil, fmt.Errorf("%w: no proof of record %q", ErrProof, key)
}

// StakingPool is the answer of ledger_stakingPool: the staking module's
// tokens after Height. Bonded + Unbonding + Burned are every token outside
// the balances: with them the balances sum to the genesis total supply.
type StakingPool struct {
	Height    Uint64 `json:"height"`
	Bonded    Uint64 `json:"bonded"`
	Unbonding Uint64 `json:"unbonding"`
	Burned    Uint64 `json:"burned"`
	// Candidates is the number of validator records.
	Candidates uint32 `json:"candidates"`
	// Proof, when asked for, proves the pool record.
	Proof *StateProof `json:"proof,omitempty"`
}

// Staked is Bonded + Unbonding + Burned; ok is false if the sum
// overflows (no honest node answers that).
func (p *StakingPool) Staked() (uint64, bool) {
	s := uint64(p.Bonded) + uint64(p.Unbonding)
	if s < uint64(p.Bonded) || s+uint64(p.Burned) < s {
		return 0, false
	}
	return s + uint64(p.Burned), true
}

// VerifyProof checks that the answer carries a proof that holds against
// its AppHash and that the proven pool record is the answer.
func (p *StakingPool) VerifyProof() error {
	if err := p.Proof.Verify(); err != nil {
		return err
	}
	v, err := p.Proof.record(staking.PoolKey)
	if err != nil {
		return err
	}
	var pool staking.Pool
	if v != nil {
		if pool, err = staking.DecodePool(v); err != nil {
			return fmt.Errorf("%w: %v", ErrProof, err)
		}
	}
	if pool.Bonded != uint64(p.Bonded) || pool.Unbonding != uint64(p.Unbonding) || pool.Burned != uint64(p.Burned) || pool.Candidates != p.Candidates {
		return fmt.Errorf("%w: pool %+v, the proven record holds %+v", ErrProof, *p, pool)
	}
	return nil
}

// SigningRecord is a validator's liveness record: how many of the last
// Window heights since WindowStart its consensus key missed signing.
type SigningRecord struct {
	// WindowStart is the height its current window started at (its entry
	// into the active set, or its last downtime jailing); downtime is
	// judged only a full window after it.
	WindowStart    Uint64 `json:"window_start"`
	MissedInWindow Uint64 `json:"missed_in_window"`
	// Window is the genesis signed_blocks_window.
	Window Uint64 `json:"window"`
}

// StakingValidator is a validator as the staking module keeps it.
type StakingValidator struct {
	Operator    crypto.Address `json:"operator"`
	ConsKey     crypto.PubKey  `json:"cons_key"`
	ConsAddress crypto.Address `json:"cons_address"`
	Moniker     string         `json:"moniker"`
	// Tokens are its bonded tokens; Shares its delegations' shares (a
	// share is worth Tokens/Shares).
	Tokens Uint64 `json:"tokens"`
	Shares Uint64 `json:"shares"`
	// Power is Tokens / the genesis power unit, whether or not it is in
	// the active set.
	Power  Uint64 `json:"power"`
	Jailed bool   `json:"jailed"`
	// JailedUntil is the first height at which a jailed validator may
	// unjail (18446744073709551615 once tombstoned).
	JailedUntil   Uint64 `json:"jailed_until"`
	Tombstoned    bool   `json:"tombstoned"`
	CreatedHeight Uint64 `json:"created_height"`
	// Active: in the active set the staking module computed after the
	// answer's height; a change of it validates from two heights after
	// the block that made it.
	Active bool `json:"active"`
}

// ValidatorStatus is the answer of ledger_getValidator: a validator after
// Height, whether it signs the next block, its signing record, and
// optionally the proofs of its records.
type ValidatorStatus struct {
	Height Uint64 `json:"height"`
	StakingValidator
	// Validating: its consensus key is in the validator set of Height+1,
	// the set that decides the next block (the one ledger_validators
	// serves for that height; not covered by Proof: verify that set with
	// the light client).
	Validating bool `json:"validating"`
	// Signing is absent until the validator first enters the active set.
	Signing *SigningRecord `json:"signing,omitempty"`
	// Proof, when asked for, proves the validator, signing-info and
	// active-set records.
	Proof *StateProof `json:"proof,omitempty"`
}

// VerifyProof checks that the answer carries a proof that holds against
// its AppHash and that the proven records are the answer: the validator
// record (all its fields, and Power under powerUnit, the genesis
// power_unit), the signing record (or its absence), and membership in the
// active set. Validating is not covered.
func (v *ValidatorStatus) VerifyProof(powerUnit uint64) error {
	if err := v.Proof.Verify(); err != nil {
		return err
	}
	raw, err := v.Proof.record(staking.ValidatorKey(v.Operator))
	if err != nil {
		return err
	}
	if raw == nil {
		return fmt.Errorf("%w: the proof shows no validator is operated by %s", ErrProof, v.Operator)
	}
	rec, err := staking.DecodeValidator(raw)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProof, err)
	}
	if powerUnit == 0 {
		return fmt.Errorf("%w: power unit 0", ErrProof)
	}
	want := describeValidator(rec, powerUnit)
	want.Active = v.Active // checked against the active set below
	if want != v.StakingValidator {
		return fmt.Errorf("%w: validator %+v, the proven record gives %+v", ErrProof, v.StakingValidator, want)
	}
	if raw, err = v.Proof.record(staking.SigningInfoKey(rec.ConsAddr())); err != nil {
		return err
	}
	switch {
	case raw == nil && v.Signing != nil:
		return fmt.Errorf("%w: a signing record, proven absent", ErrProof)
	case raw != nil:
		si, err := staking.DecodeSigningInfo(raw)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrProof, err)
		}
		if v.Signing == nil || uint64(v.Signing.WindowStart) != si.StartHeight || uint64(v.Signing.MissedInWindow) != si.MissedCount {
			return fmt.Errorf("%w: signing record %+v, the proven one %+v", ErrProof, v.Signing, si)
		}
	}
	if raw, err = v.Proof.record(staking.ActiveKey); err != nil {
		return err
	}
	active := false
	if raw != nil {
		members, err := staking.DecodeActive(raw)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrProof, err)
		}
		for _, m := range members {
			active = active || m.Operator == v.Operator
		}
	}
	if active != v.Active {
		return fmt.Errorf("%w: active %v, the proven active set says %v", ErrProof, v.Active, active)
	}
	return nil
}

// DescribeValidator is the API form of a staking record under powerUnit
// tokens per unit of power; active says whether it is in the active set.
func DescribeValidator(v staking.Validator, powerUnit uint64, active bool) StakingValidator {
	out := describeValidator(v, powerUnit)
	out.Active = active
	return out
}

func describeValidator(v staking.Validator, powerUnit uint64) StakingValidator {
	return StakingValidator{Operator: v.Operator, ConsKey: v.ConsKey, ConsAddress: v.ConsAddr(), Moniker: v.Moniker,
		Tokens: Uint64(v.Tokens), Shares: Uint64(v.Shares), Power: Uint64(v.Power(powerUnit)),
		Jailed: v.Jailed, JailedUntil: Uint64(v.JailedUntil), Tombstoned: v.Tombstoned, CreatedHeight: Uint64(v.CreatedHeight)}
}

// ValidatorsByPower is the answer of ledger_validatorsByPower: one page of
// every validator after Height, first those that may be in the active set
// by power (descending; ties by consensus address, the order the active
// set is taken in), then the others (jailed, tombstoned or below one power
// unit) by operator. Next, when set, is the from of the next page.
type ValidatorsByPower struct {
	Height     Uint64             `json:"height"`
	Validators []StakingValidator `json:"validators"`
	Next       HexBytes           `json:"next,omitempty"`
}

// Delegation is one delegation and what its shares are worth now.
type Delegation struct {
	Delegator crypto.Address `json:"delegator"`
	Operator  crypto.Address `json:"operator"`
	Shares    Uint64         `json:"shares"`
	// Tokens is the shares' worth, rounded down: what undelegating them
	// all would unbond.
	Tokens Uint64 `json:"tokens"`
}

// Delegations is the answer of ledger_getDelegationsByDelegator (ordered
// by operator) and ledger_getDelegationsByValidator (ordered by
// delegator), after Height. NextAfter, when set, is the after of the next
// page.
type Delegations struct {
	Height      Uint64          `json:"height"`
	Delegations []Delegation    `json:"delegations"`
	NextAfter   *crypto.Address `json:"next_after,omitempty"`
}

// UnbondingEntry is one undelegation waiting for its completion height.
type UnbondingEntry struct {
	CreationHeight   Uint64 `json:"creation_height"`
	CompletionHeight Uint64 `json:"completion_height"`
	InitialBalance   Uint64 `json:"initial_balance"`
	// Balance is what it pays out at CompletionHeight (slashing lowers it).
	Balance Uint64 `json:"balance"`
}

// Unbonding is one (delegator, validator) pair's unbonding entries.
type Unbonding struct {
	Delegator crypto.Address   `json:"delegator"`
	Operator  crypto.Address   `json:"operator"`
	Entries   []UnbondingEntry `json:"entries"`
}

// Unbondings is the answer of ledger_getUnbondings, ordered by operator,
// after Height. NextAfter, when set, is the after of the next page.
type Unbondings struct {
	Height     Uint64          `json:"height"`
	Unbondings []Unbonding     `json:"unbondings"`
	NextAfter  *crypto.Address `json:"next_after,omitempty"`
}

// ValidatorSetChange is the notification of validatorSet subscriptions:
// block BlockHeight changed the validator set, and the set below decides
// the heights from Height (BlockHeight + 2) on.
type ValidatorSetChange struct {
	BlockHeight Uint64 `json:"block_height"`
	Validators
}
