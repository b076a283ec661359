package staking

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Bounds on the parameters and on the state. Decoders enforce the record
// bounds, so a record written under valid parameters always decodes.
const (
	// MaxValidatorsLimit bounds Params.MaxValidators; it is the ledger's
	// bound on a validator set (ledger.MaxValidators, which this package
	// cannot import).
	MaxValidatorsLimit = 1000
	// MaxEntriesLimit bounds Params.MaxEntries and every unbonding record.
	MaxEntriesLimit = 100
	// MaxWindow bounds Params.SignedBlocksWindow: at most 1,024 chunks of
	// missed bits per validator.
	MaxWindow = 1 << 20
	// MaxHeights bounds the parameters counted in heights, so that a height
	// plus any of them never overflows.
	MaxHeights = 1 << 40
	// MinPowerUnit is the smallest PowerUnit: with at least 16 tokens per
	// unit of power, the total power of any set of validators is below
	// 2^60 (the ledger's MaxTotalVotingPower, MaxInt64/8) even if every
	// token of a 64-bit supply is bonded.
	MinPowerUnit = 16
	// MaxCandidates bounds the validators that exist at once (jailed and
	// unbonding ones included); create-validator is rejected beyond it.
	MaxCandidates = 10_000
	// MaxMonikerLen bounds a validator's moniker, in bytes.
	MaxMonikerLen = 64
)

// FractionUnit is the denominator of a Fraction: parts per million.
const FractionUnit = 1_000_000

// Fraction is a number between 0 and 1 in parts per million. In JSON it is
// a decimal string with at most 6 decimals ("0.05"), parsed and written
// exactly.
type Fraction uint32

// Of returns floor(f * amount): never more than amount.
func (f Fraction) Of(amount uint64) uint64 {
	q, _ := mulDiv(amount, uint64(f), FractionUnit) // f <= 1, so it fits
	return q
}

// OfCeil returns ceil(f * amount).
func (f Fraction) OfCeil(amount uint64) uint64 {
	q, _ := mulDivCeil(amount, uint64(f), FractionUnit)
	return q
}

// Validate reports a fraction above 1.
func (f Fraction) Validate() error {
	if f > FractionUnit {
		return fmt.Errorf("%d parts per million is above 1", uint32(f))
	}
	return nil
}

// String writes the fraction as its shortest decimal: "0", "1", "0.05".
func (f Fraction) String() string {
	whole, frac := uint32(f)/FractionUnit, uint32(f)%FractionUnit
	if frac == 0 {
		return strconv.FormatUint(uint64(whole), 10)
	}
	s := fmt.Sprintf("%d.%06d", whole, frac)
	return strings.TrimRight(s, "0")
}

// MarshalText writes String.
func (f Fraction) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText parses a decimal between 0 and 1 with at most 6 decimals.
func (f *Fraction) UnmarshalText(b []byte) error {
	v, err := ParseFraction(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// ParseFraction parses a decimal string between 0 and 1 with at most 6
// decimals: digits, optionally a point and more digits; no sign, exponent
// or spaces.
func ParseFraction(s string) (Fraction, error) {
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && frac == "") {
		return 0, fmt.Errorf("fraction %q: want a decimal such as 0.05", s)
	}
	if len(frac) > 6 {
		return 0, fmt.Errorf("fraction %q: at most 6 decimals", s)
	}
	digits := func(d string) bool {
		for i := 0; i < len(d); i++ {
			if d[i] < '0' || d[i] > '9' {
				return false
			}
		}
		return true
	}
	if !digits(whole) || !digits(frac) || len(whole) > 7 {
		return 0, fmt.Errorf("fraction %q: want a decimal such as 0.05", s)
	}
	w, _ := strconv.ParseUint(whole, 10, 32)
	var p uint64
	if frac != "" {
		p, _ = strconv.ParseUint(frac+strings.Repeat("0", 6-len(frac)), 10, 32)
	}
	v := w*FractionUnit + p
	if v > FractionUnit {
		return 0, fmt.Errorf("fraction %q is above 1", s)
	}
	return Fraction(v), nil
}

// Params are the staking parameters fixed in genesis (the "staking"
// object; numbers are decimal strings like the rest of the genesis file).
type Params struct {
	// PowerUnit is the number of tokens per unit of voting power: a
	// validator's power is floor(Tokens / PowerUnit).
	PowerUnit uint64 `json:"power_unit,string"`
	// MaxValidators is the size of the active set, the top validators by
	// power.
	MaxValidators uint32 `json:"max_validators,string"`
	// UnbondingHeights is how many heights undelegated tokens wait before
	// they are paid back (and stay slashable for).
	UnbondingHeights uint64 `json:"unbonding_heights,string"`
	// MaxEntries bounds the unbonding entries of one (delegator,
	// validator) pair.
	MaxEntries uint32 `json:"max_entries,string"`
	// SlashFractionDoubleSign is the fraction of the stake at the
	// infraction burned for a double sign.
	SlashFractionDoubleSign Fraction `json:"slash_fraction_double_sign"`
	// SlashFractionDowntime is the fraction burned for downtime.
	SlashFractionDowntime Fraction `json:"slash_fraction_downtime"`
	// SignedBlocksWindow is the number of recent heights downtime is
	// judged over.
	SignedBlocksWindow uint64 `json:"signed_blocks_window,string"`
	// MinSignedPerWindow is the fraction of the window a validator must
	// sign (rounded up to whole heights).
	MinSignedPerWindow Fraction `json:"min_signed_per_window"`
	// DowntimeJailHeights is how long a validator jailed for downtime
	// stays jailed before it may unjail.
	DowntimeJailHeights uint64 `json:"downtime_jail_heights,string"`
}

// DefaultParams are the parameters of dev and test genesis files: a
// validator of power 10 bonds 10,000 tokens.
func DefaultParams() Params {
	return Params{
		PowerUnit:               1000,
		MaxValidators:           100,
		UnbondingHeights:        1000,
		MaxEntries:              7,
		SlashFractionDoubleSign: 50_000, // 0.05
		SlashFractionDowntime:   100,    // 0.0001
		SignedBlocksWindow:      1000,
		MinSignedPerWindow:      500_000, // 0.5
		DowntimeJailHeights:     600,
	}
}

// Validate reports the first unusable parameter, in words an operator can
// act on.
func (p *Params) Validate() error {
	switch {
	case p.PowerUnit < MinPowerUnit:
		return fmt.Errorf("power_unit %d is below %d (the total power of all stake must stay below 2^60)", p.PowerUnit, MinPowerUnit)
	case p.MaxValidators == 0:
		return errors.New("max_validators must be at least 1")
	case p.MaxValidators > MaxValidatorsLimit:
		return fmt.Errorf("max_validators %d is above the limit %d", p.MaxValidators, MaxValidatorsLimit)
	case p.UnbondingHeights == 0:
		return errors.New("unbonding_heights must be at least 1")
	case p.UnbondingHeights > MaxHeights:
		return fmt.Errorf("unbonding_heights %d is above the limit %d", p.UnbondingHeights, uint64(MaxHeights))
	case p.MaxEntries == 0:
		return errors.New("max_entries must be at least 1")
	case p.MaxEntries > MaxEntriesLimit:
		return fmt.Errorf("max_entries %d is above the limit %d", p.MaxEntries, MaxEntriesLimit)
	case p.SignedBlocksWindow == 0:
		return errors.New("signed_blocks_window must be at least 1")
	case p.SignedBlocksWindow > MaxWindow:
		return fmt.Errorf("signed_blocks_window %d is above the limit %d", p.SignedBlocksWindow, MaxWindow)
	case p.DowntimeJailHeights > MaxHeights:
		return fmt.Errorf("downtime_jail_heights %d is above the limit %d", p.DowntimeJailHeights, uint64(MaxHeights))
	}
	for _, f := range []struct {
		name string
		v    Fraction
	}{
		{"slash_fraction_double_sign", p.SlashFractionDoubleSign},
		{"slash_fraction_downtime", p.SlashFractionDowntime},
		{"min_signed_per_window", p.MinSignedPerWindow},
	} {
		if err := f.v.Validate(); err != nil {
			return fmt.Errorf("%s: %v", f.name, err)
		}
	}
	return nil
}

// maxMissed is the number of heights of a window a validator may miss
// without being jailed: the window less MinSignedPerWindow of it, rounded
// up.
func (p *Params) maxMissed() uint64 {
	return p.SignedBlocksWindow - p.MinSignedPerWindow.OfCeil(p.SignedBlocksWindow)
}

// tokensOfPower returns power * PowerUnit, saturating at the largest
// uint64 (no real stake is that large).
func (p *Params) tokensOfPower(power uint64) uint64 {
	hi, lo := mulFull(power, p.PowerUnit)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}
