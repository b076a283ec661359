package crypto

import (
	"errors"
	"fmt"
	"strings"
)

// AddressSize is the size of an account address in bytes.
const AddressSize = 20

// AddressHRP is the human-readable part of every written address.
const AddressHRP = "ldg"

// Address identifies an account: the first 20 bytes of SHA-256 over the
// account's public key. It is written as bech32 (BIP-173) with the "ldg"
// prefix, whose checksum detects any single mistyped character and any
// error in up to four characters, so a mistyped address is rejected, not
// silently accepted.
type Address [AddressSize]byte

// AddressFromPubKey derives the address of p.
func AddressFromPubKey(p PubKey) Address {
	h := Sum(p[:])
	var a Address
	copy(a[:], h[:AddressSize])
	return a
}

// String returns the bech32 form, for example "ldg1...".
func (a Address) String() string { return bech32Encode(AddressHRP, a[:]) }

// IsZero reports whether a is all zeros (unset).
func (a Address) IsZero() bool { return a == Address{} }

// MarshalText writes the bech32 form.
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText parses the bech32 form; see ParseAddress.
func (a *Address) UnmarshalText(b []byte) error {
	p, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = p
	return nil
}

// addressDataLen is the number of bech32 characters after "ldg1": the
// 20-byte payload in 5-bit groups and the 6-character checksum.
const addressDataLen = (AddressSize*8+4)/5 + bech32ChecksumLen

// addressLen is the length of a written address.
const addressLen = len(AddressHRP) + 1 + addressDataLen

// ParseAddress parses a bech32 address, written in lower or upper case.
// A rejected string gets an error saying what is wrong with it, checked in
// this order: an invalid character, a missing "1" separator, a wrong
// prefix, a wrong length, mixed case, a checksum mismatch.
func ParseAddress(s string) (Address, error) {
	a, err := parseAddress(s)
	if err != nil {
		return Address{}, fmt.Errorf("address %q: %w", s, err)
	}
	return a, nil
}

func parseAddress(s string) (Address, error) {
	if s == "" {
		return Address{}, errors.New("empty")
	}
	if len(s) > bech32MaxLen {
		return Address{}, fmt.Errorf("%d characters, an address has %d", len(s), addressLen)
	}
	hrp, data, err := bech32Split(s)
	if err != nil {
		return Address{}, err
	}
	if hrp != AddressHRP {
		return Address{}, fmt.Errorf("prefix %q, want %q", hrp, AddressHRP)
	}
	if len(data) != addressDataLen {
		short := "too short"
		if len(data) > addressDataLen {
			short = "too long"
		}
		return Address{}, fmt.Errorf("%d characters after %q, want %d: %s", len(data), AddressHRP+"1", addressDataLen, short)
	}
	if strings.ToLower(s) != s && strings.ToUpper(s) != s {
		return Address{}, errors.New("mixed case: write it all in lower case (or all in upper case)")
	}
	payload, err := bech32Payload(hrp, data)
	if err != nil {
		return Address{}, err
	}
	var a Address
	copy(a[:], payload)
	return a, nil
}

// --- bech32 (BIP-173), written from the specification ---

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

var bech32Gen = [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}

func bech32Polymod(values []byte) uint32 {
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := 0; i < 5; i++ {
			if (top>>uint(i))&1 == 1 {
				chk ^= bech32Gen[i]
			}
		}
	}
	return chk
}

func bech32HRPExpand(hrp string) []byte {
	out := make([]byte, 0, 2*len(hrp)+1)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]>>5)
	}
	out = append(out, 0)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]&31)
	}
	return out
}

// convertBits regroups a bit stream from groups of `from` bits to groups of
// `to` bits. When decoding (pad false) leftover bits must be zero padding.
func convertBits(data []byte, from, to uint, pad bool) ([]byte, error) {
	var acc, bits uint
	maxv := uint(1)<<to - 1
	out := make([]byte, 0, len(data)*int(from)/int(to)+1)
	for _, v := range data {
		if uint(v)>>from != 0 {
			return nil, errors.New("invalid data value")
		}
		acc = acc<<from | uint(v)
		bits += from
		for bits >= to {
			bits -= to
			out = append(out, byte(acc>>bits&maxv))
		}
	}
	if pad {
		if bits > 0 {
			out = append(out, byte(acc<<(to-bits)&maxv))
		}
	} else if bits >= from || acc<<(to-bits)&maxv != 0 {
		return nil, errors.New("invalid padding")
	}
	return out, nil
}

func bech32Encode(hrp string, payload []byte) string {
	data, _ := convertBits(payload, 8, 5, true) // cannot fail on bytes
	values := append(bech32HRPExpand(hrp), data...)
	values = append(values, 0, 0, 0, 0, 0, 0)
	mod := bech32Polymod(values) ^ 1
	var sb strings.Builder
	sb.Grow(len(hrp) + 1 + len(data) + 6)
	sb.WriteString(hrp)
	sb.WriteByte('1')
	for _, d := range data {
		sb.WriteByte(bech32Charset[d])
	}
	for i := 0; i < 6; i++ {
		sb.WriteByte(bech32Charset[(mod>>uint(5*(5-i)))&31])
	}
	return sb.String()
}

const (
	bech32MaxLen      = 90
	bech32ChecksumLen = 6
)

// bech32Split splits a bech32 string, in either case, into its
// human-readable part (lower-cased) and its data values, checksum
// included. It checks the characters and the separator, not the case
// or the checksum.
func bech32Split(s string) (string, []byte, error) {
	// Check bytes, not runes: strings.ToLower would map non-ASCII letters
	// such as the Kelvin sign onto ASCII ones.
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return "", nil, fmt.Errorf("invalid character %q at position %d", s[i:i+1], i)
		}
	}
	lower := strings.ToLower(s)
	pos := strings.LastIndexByte(lower, '1')
	if pos < 1 {
		return "", nil, fmt.Errorf("no \"1\" separator after a prefix: an address is %q followed by %d characters", AddressHRP+"1", addressDataLen)
	}
	data := make([]byte, 0, len(lower)-pos-1)
	for i := pos + 1; i < len(lower); i++ {
		d := strings.IndexByte(bech32Charset, lower[i])
		if d < 0 {
			return "", nil, fmt.Errorf("invalid character %q at position %d (bech32 has no \"1\", \"b\", \"i\" or \"o\" after the separator)", s[i:i+1], i)
		}
		data = append(data, byte(d))
	}
	return lower[:pos], data, nil
}

// bech32Payload checks the checksum of hrp and data (as bech32Split
// returns them) and returns the payload bytes.
func bech32Payload(hrp string, data []byte) ([]byte, error) {
	if len(data) < bech32ChecksumLen {
		return nil, fmt.Errorf("%d characters after the separator, shorter than the %d-character checksum", len(data), bech32ChecksumLen)
	}
	if bech32Polymod(append(bech32HRPExpand(hrp), data...)) != 1 {
		return nil, errors.New("checksum mismatch (mistyped address?)")
	}
	payload, err := convertBits(data[:len(data)-bech32ChecksumLen], 5, 8, false)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return payload, nil
}
