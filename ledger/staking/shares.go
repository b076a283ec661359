package staking

import (
	"math"
	"math/bits"
)

// The share arithmetic: every product is taken in 128 bits (math/bits), so
// it is exact, and every quotient is rounded in the chain's favour, against
// the party the tokens or shares go to (see the package doc).

// mulFull returns the 128-bit product a*b as (hi, lo).
func mulFull(a, b uint64) (hi, lo uint64) { return bits.Mul64(a, b) }

// mulDiv returns floor(a*b/c) and whether it fits in 64 bits. c must not
// be zero.
func mulDiv(a, b, c uint64) (uint64, bool) {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, c)
	return q, true
}

// mulDivCeil returns ceil(a*b/c) and whether it fits in 64 bits. c must
// not be zero.
func mulDivCeil(a, b, c uint64) (uint64, bool) {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, c)
	if r != 0 {
		if q == math.MaxUint64 {
			return 0, false
		}
		q++
	}
	return q, true
}

// sharesForTokens is the number of shares amount tokens buy from a
// validator holding tokens for shares: floor(amount*shares/tokens), or
// amount itself (one share per token) while the validator has no shares.
// ok is false when the result does not fit in 64 bits, or the validator's
// shares are worthless (shares but no tokens).
func sharesForTokens(amount, tokens, shares uint64) (uint64, bool) {
	switch {
	case shares == 0:
		return amount, tokens == 0
	case tokens == 0:
		return 0, false
	}
	return mulDiv(amount, shares, tokens)
}

// tokensForShares is what n of a validator's shares are worth, rounded
// down: floor(n*tokens/shares). n must not exceed shares.
func tokensForShares(n, tokens, shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	q, _ := mulDiv(n, tokens, shares) // n <= shares, so q <= tokens
	return q
}
