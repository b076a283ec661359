package genesis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/staking"
)

// Doc is a genesis document. The zero Doc is not valid; Parse and Load
// return only valid documents, and Validate checks one built in Go.
type Doc struct {
	ChainID     string                 `json:"chain_id"`
	GenesisTime ledger.Timestamp       `json:"genesis_time"`
	Params      ledger.ConsensusParams `json:"consensus_params"`
	// Staking are the staking and slashing parameters; a file without a
	// "staking" object gets staking.DefaultParams.
	Staking    staking.Params     `json:"staking"`
	Validators []ledger.Validator `json:"validators"`
	Balances   []Balance          `json:"balances"`
}

// Balance is one account funded at genesis. In JSON the address is bech32
// ("ldg1...", checked against its checksum) and the amount a decimal
// string, so that no JSON tool rounds it.
type Balance struct {
	Address crypto.Address `json:"address"`
	Amount  uint64         `json:"amount,string"`
}

// Validate reports every problem of d at once (up to 50), as an
// *InvalidError whose problems name the field (and the index of the
// validator or balance) that holds each, in document order. A nil result
// guarantees that ValidatorSet and InitialState succeed.
func (d *Doc) Validate() error {
	var p problems
	if err := crypto.ValidateChainID(d.ChainID); err != nil {
		p.addf("chain_id: %v", err)
	}
	switch {
	case d.GenesisTime == 0:
		p.addf(`genesis_time: not set; write an RFC 3339 time such as "2026-01-01T00:00:00Z"`)
	case d.GenesisTime < 0:
		p.addf("genesis_time: %s is before 1970; choose a later time", d.GenesisTime.Time().Format(time.RFC3339Nano))
	}
	if err := d.Params.Validate(); err != nil {
		p.addf("consensus_params: %v", err)
	}
	if err := d.Staking.Validate(); err != nil {
		p.addf("staking: %v", err)
	}
	d.validateValidators(&p)
	d.validateBalances(&p)
	if p.count() == 0 {
		d.validateStake(&p)
	}
	return p.err()
}

func (d *Doc) validateValidators(p *problems) {
	switch n := len(d.Validators); {
	case n == 0:
		p.addf("validators: none given; a chain needs at least one validator")
		return
	case n > ledger.MaxValidators:
		p.addf("validators: %d given, at most %d allowed", n, ledger.MaxValidators)
		return
	}
	before := p.count()
	seen := make(map[crypto.Address]int, len(d.Validators))
	var total uint64
	overflow := false
	for i := range d.Validators {
		if p.stopped() {
			return
		}
		v := &d.Validators[i]
		if v.PubKey.IsZero() {
			p.addf("validators[%d].pub_key: missing; write the validator's ed25519 public key as 64 hex characters", i)
		} else if j, dup := seen[v.Address()]; dup {
			p.addf("validators[%d].pub_key: %s is also validators[%d]; every validator needs its own key", i, v.PubKey, j)
		} else {
			seen[v.Address()] = i
		}
		switch {
		case v.Power == 0:
			p.addf("validators[%d].power: zero; give every validator a positive voting power", i)
		case v.Power > ledger.MaxTotalVotingPower:
			p.addf("validators[%d].power: %d is above the limit %d", i, v.Power, uint64(ledger.MaxTotalVotingPower))
		case !overflow && total > ledger.MaxTotalVotingPower-v.Power:
			overflow = true
			p.addf("validators[%d].power: the total voting power passes the limit %d here; lower the powers", i, uint64(ledger.MaxTotalVotingPower))
		default:
			total += v.Power
		}
		if err := checkName(v.Name); err != nil {
			p.addf("validators[%d].name: %v", i, err)
		}
	}
	if p.count() > before {
		return
	}
	// Every rule of the set is checked above, with the index; this catches
	// any rule package ledger adds later.
	if _, err := ledger.NewValidatorSet(d.Validators); err != nil {
		p.addf("validators: %v", err)
	}
}

// checkName accepts the display names that print safely in logs.
func checkName(name string) error {
	if len(name) > ledger.MaxValidatorNameLen {
		return fmt.Errorf("%d bytes, at most %d", len(name), ledger.MaxValidatorNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%q is not valid UTF-8", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("%q contains a control character", name)
		}
	}
	return nil
}

func (d *Doc) validateBalances(p *problems) {
	if len(d.Balances) == 0 {
		p.addf("balances: none given; fund at least one account (the total supply is fixed at genesis)")
		return
	}
	seen := make(map[crypto.Address]int, len(d.Balances))
	var supply uint64
	overflow := false
	for i, b := range d.Balances {
		if p.stopped() {
			return
		}
		if b.Address.IsZero() {
			p.addf("balances[%d].address: the zero address %s belongs to nobody; funds sent there are lost", i, b.Address)
		} else if j, dup := seen[b.Address]; dup {
			p.addf("balances[%d].address: %s is already funded by balances[%d]; merge the two entries", i, b.Address, j)
		} else {
			seen[b.Address] = i
		}
		switch {
		case b.Amount == 0:
			p.addf("balances[%d].amount: zero; give the account a positive amount or remove the entry", i)
		case !overflow && supply > math.MaxUint64-b.Amount:
			overflow = true
			p.addf("balances[%d].amount: the total supply passes %d (the largest uint64) here; lower the amounts", i, uint64(math.MaxUint64))
		default:
			supply += b.Amount
		}
	}
}

// validateStake checks what the validators' stake needs: at most
// max_validators of them, and a bonded total (power times power_unit each)
// that fits in the supply with the balances.
func (d *Doc) validateStake(p *problems) {
	if n := len(d.Validators); n > int(d.Staking.MaxValidators) {
		p.addf("validators: %d given, but staking.max_validators is %d", n, d.Staking.MaxValidators)
		return
	}
	if _, err := d.StakingRecords(); err != nil {
		p.addf("validators: %v", err)
		return
	}
	supply := d.BalanceSum()
	for i, v := range d.Validators {
		bond := v.Power * d.Staking.PowerUnit // StakingRecords checked it fits
		if supply > math.MaxUint64-bond {
			p.addf("validators[%d].power: the total supply (balances and bonded stake, power times staking.power_unit) passes %d here", i, uint64(math.MaxUint64))
			return
		}
		supply += bond
	}
}

// BalanceSum is the sum of the genesis balances (the supply without the
// validators' bonded stake).
func (d *Doc) BalanceSum() uint64 {
	var s uint64
	for _, b := range d.Balances {
		s += b.Amount
	}
	return s
}

// TotalSupply is every token at genesis: the balances and the validators'
// bonded stake (power times staking.power_unit each). It is meaningful only
// for a valid document, whose sum never overflows.
func (d *Doc) TotalSupply() uint64 {
	s := d.BalanceSum()
	for _, v := range d.Validators {
		s += v.Power * d.Staking.PowerUnit
	}
	return s
}

// StakingRecords returns the staking state of genesis: each validator's
// stake bonded as its operator's self-delegation (the operator defaults to
// the account of the validator's key).
func (d *Doc) StakingRecords() ([]ledger.Record, error) {
	gvs := make([]staking.GenesisValidator, len(d.Validators))
	for i, v := range d.Validators {
		gvs[i] = staking.GenesisValidator{Operator: v.Operator, ConsKey: v.PubKey, Moniker: v.Name, Power: v.Power}
	}
	changes, err := staking.InitGenesis(d.Staking, gvs)
	if err != nil {
		return nil, err
	}
	out := make([]ledger.Record, len(changes))
	for i, c := range changes {
		out[i] = ledger.Record{Key: c.Key, Value: c.Value}
	}
	return out, nil
}

// Hash identifies the genesis: SHA-256 over the compact JSON encoding of d
// with its validators and its balances sorted by address. It is
// independent of the file's formatting and of the order in which the
// file lists validators and balances (neither changes the initial state),
// and changes with every other field, validator names included. Hash does
// not validate d.
func (d *Doc) Hash() crypto.Hash {
	c := *d
	c.Validators = slices.Clone(d.Validators)
	if c.Validators == nil {
		c.Validators = []ledger.Validator{}
	}
	slices.SortStableFunc(c.Validators, func(a, b ledger.Validator) int {
		aa, ba := a.Address(), b.Address()
		return bytes.Compare(aa[:], ba[:])
	})
	c.Balances = slices.Clone(d.Balances)
	if c.Balances == nil {
		c.Balances = []Balance{}
	}
	slices.SortStableFunc(c.Balances, func(a, b Balance) int { return bytes.Compare(a.Address[:], b.Address[:]) })
	enc, err := marshal(&c, "")
	if err != nil {
		// Every field's encoder is infallible: strings, integers and
		// MarshalText methods that never fail.
		panic(fmt.Sprintf("genesis: encode document: %v", err))
	}
	return crypto.Sum(enc)
}

// marshal encodes d as JSON without HTML escaping, indented when indent is
// not empty, with no trailing newline.
func marshal(d *Doc, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ValidatorSet returns the genesis validators as a set in canonical order.
func (d *Doc) ValidatorSet() (*ledger.ValidatorSet, error) {
	vals := slices.Clone(d.Validators)
	for i := range vals {
		if vals[i].Operator.IsZero() {
			vals[i].Operator = vals[i].PubKey.Address()
		}
	}
	vs, err := ledger.NewValidatorSet(vals)
	if err != nil {
		return nil, fmt.Errorf("genesis validators: %w", err)
	}
	return vs, nil
}

// InitialState validates d and returns the state before the first block
// (height 0, TotalSupply the sum of the balances, AppHash zero: the store
// computes it when it commits the accounts) and the funded accounts,
// sorted by address, each with nonce 0.
func (d *Doc) InitialState() (*ledger.State, []ledger.AccountUpdate, error) {
	if err := d.Validate(); err != nil {
		return nil, nil, fmt.Errorf("invalid genesis: %w", err)
	}
	vs, err := d.ValidatorSet()
	if err != nil {
		return nil, nil, err
	}
	accounts := make([]ledger.AccountUpdate, len(d.Balances))
	for i, b := range d.Balances {
		accounts[i] = ledger.AccountUpdate{Address: b.Address, Account: ledger.Account{Balance: b.Amount}}
	}
	slices.SortFunc(accounts, func(a, b ledger.AccountUpdate) int { return bytes.Compare(a.Address[:], b.Address[:]) })
	st := &ledger.State{
		ChainID:     d.ChainID,
		GenesisTime: d.GenesisTime,
		Height:      0,
		Params:      d.Params,
		Staking:     d.Staking,
		TotalSupply: d.TotalSupply(),
	}
	return st.WithValidators(vs), accounts, nil
}

// genesisTimeOf returns t as a genesis time, or an error when t lies
// outside what a ledger.Timestamp holds (1970 to 2262).
func genesisTimeOf(t time.Time) (ledger.Timestamp, error) {
	ts := ledger.TimestampOf(t)
	if ts <= 0 || !ts.Time().Equal(t) {
		return 0, fmt.Errorf("%s is outside the range of a timestamp (after 1970, before 2262)", t.Format(time.RFC3339Nano))
	}
	return ts, nil
}
