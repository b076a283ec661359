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

// ParseAddress parses a bech32 address, rejecting a wrong prefix, a bad
// checksum, mixed case, or a payload that is not 20 bytes.
func ParseAddress(s string) (Address, error) {
	hrp, data, err := bech32Decode(s)
	if err != nil {
		return Address{}, fmt.Errorf("address %q: %w", s, err)
	}
	if hrp != AddressHRP {
		return Address{}, fmt.Errorf("address %q: prefix %q, want %q", s, hrp, AddressHRP)
	}
	if len(data) != AddressSize {
		return Address{}, fmt.Errorf("address %q: %d bytes, want %d", s, len(data), AddressSize)
	}
	var a Address
	copy(a[:], data)
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

func bech32Decode(s string) (string, []byte, error) {
	if len(s) > 90 {
		return "", nil, errors.New("too long")
	}
	// Check bytes, not runes: strings.ToLower would map non-ASCII letters
	// such as the Kelvin sign onto ASCII ones.
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return "", nil, fmt.Errorf("invalid character at position %d", i)
		}
	}
	if strings.ToLower(s) != s && strings.ToUpper(s) != s {
		return "", nil, errors.New("mixed case")
	}
	s = strings.ToLower(s)
	pos := strings.LastIndexByte(s, '1')
	if pos < 1 || pos+7 > len(s) {
		return "", nil, errors.New("missing separator or checksum")
	}
	hrp := s[:pos]
	data := make([]byte, 0, len(s)-pos-1)
	for i := pos + 1; i < len(s); i++ {
		d := strings.IndexByte(bech32Charset, s[i])
		if d < 0 {
			return "", nil, fmt.Errorf("invalid character %q", s[i])
		}
		data = append(data, byte(d))
	}
	if bech32Polymod(append(bech32HRPExpand(hrp), data...)) != 1 {
		return "", nil, errors.New("checksum mismatch (mistyped address?)")
	}
	payload, err := convertBits(data[:len(data)-6], 5, 8, false)
	if err != nil {
		return "", nil, err
	}
	return hrp, payload, nil
}
