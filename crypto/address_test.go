package crypto_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
)

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

func TestAddressRoundTrip(t *testing.T) {
	r, seed := testRand(t)
	addrs := []crypto.Address{{}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for range 200 {
		var a crypto.Address
		for i := range a {
			a[i] = byte(r.Uint32())
		}
		addrs = append(addrs, a)
	}
	for _, a := range addrs {
		s := a.String()
		if !strings.HasPrefix(s, crypto.AddressHRP+"1") || len(s) != len(crypto.AddressHRP)+1+32+6 {
			t.Fatalf("seed %d: %x written as %q", seed, a[:], s)
		}
		for _, form := range []string{s, strings.ToUpper(s)} {
			got, err := crypto.ParseAddress(form)
			if err != nil || got != a {
				t.Fatalf("seed %d: ParseAddress(%q) = %x, %v; want %x", seed, form, got[:], err, a[:])
			}
		}
		var u crypto.Address
		if err := u.UnmarshalText([]byte(s)); err != nil || u != a {
			t.Fatalf("UnmarshalText(%q) = %x, %v", s, u[:], err)
		}
	}
}

func TestAddressFromPubKey(t *testing.T) {
	k := fixedKey(t, 0)
	p := k.PubKey()
	h := crypto.Sum(p[:])
	a := k.PubKey().Address()
	if string(a[:]) != string(h[:crypto.AddressSize]) {
		t.Fatalf("address %x is not the first %d bytes of SHA-256(pubkey) %x", a[:], crypto.AddressSize, h[:])
	}
	if fixedKey(t, 1).PubKey().Address() == a {
		t.Fatal("two keys share an address")
	}
}

func TestAddressJSON(t *testing.T) {
	a := fixedKey(t, 0).PubKey().Address()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `"`+a.String()+`"` {
		t.Fatalf("JSON %s, want the bech32 string", b)
	}
	var got crypto.Address
	if err := json.Unmarshal(b, &got); err != nil || got != a {
		t.Fatalf("JSON round trip: %x, %v", got[:], err)
	}
	if err := json.Unmarshal([]byte(`"ldg1qqqq"`), &got); err == nil {
		t.Fatal("JSON accepted a bad address")
	}
}

// Bech32 detects every single-character error, so every substitution of
// one character of a valid address must be rejected.
func TestParseAddressRejectsEverySubstitution(t *testing.T) {
	for _, a := range []crypto.Address{{}, fixedKey(t, 0).PubKey().Address(), fixedKey(t, 1).PubKey().Address()} {
		s := a.String()
		checked := 0
		for i := range len(s) {
			alphabet := bech32Charset
			if i < len(crypto.AddressHRP)+1 {
				alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
			}
			for _, c := range []byte(alphabet) {
				if c == s[i] {
					continue
				}
				bad := s[:i] + string(c) + s[i+1:]
				if got, err := crypto.ParseAddress(bad); err == nil {
					t.Fatalf("ParseAddress(%q) (position %d of %q changed) = %s, want an error", bad, i, s, got)
				}
				checked++
			}
		}
		if want := 4*35 + 38*31; checked != want {
			t.Fatalf("checked %d substitutions, want %d", checked, want)
		}
	}
}

func TestParseAddressRejects(t *testing.T) {
	a := fixedKey(t, 0).PubKey().Address()
	s := a.String()
	data := s[len(crypto.AddressHRP)+1:]
	cases := map[string]string{
		"empty":                 "",
		"separator only":        "1",
		"no separator":          strings.ReplaceAll(s, "1", ""),
		"no prefix":             data,
		"empty prefix":          "1" + data,
		"mixed case":            strings.ToUpper(s[:10]) + s[10:],
		"one upper":             s[:len(s)-1] + strings.ToUpper(s[len(s)-1:]),
		"dropped char":          s[:20] + s[21:],
		"extra char":            s[:20] + "q" + s[20:],
		"swapped chars":         s[:10] + s[11:12] + s[10:11] + s[12:],
		"truncated":             s[:len(s)-1],
		"checksum only":         crypto.AddressHRP + "1" + data[len(data)-6:],
		"space":                 " " + s,
		"trailing space":        s + " ",
		"char outside charset":  s[:8] + "b" + s[9:],
		"too long":              crypto.AddressHRP + "1" + strings.Repeat("q", 90),
		"non-ascii":             s[:8] + "é" + s[9:],
		"kelvin sign for k":     strings.ToUpper(s[:8]) + "\u212a" + strings.ToUpper(s[9:]),
		"nul":                   s[:8] + "\x00" + s[9:],
		"valid bech32 bc":       "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
		"another hrp":           "a12uel5l",
		"wrong prefix, valid":   bech32EncodeRef("xyz", a[:]),
		"prefix prefix":         bech32EncodeRef("ldgx", a[:]),
		"19 bytes":              bech32EncodeRef(crypto.AddressHRP, a[:19]),
		"21 bytes":              bech32EncodeRef(crypto.AddressHRP, append(a[:], 0)),
		"32 bytes":              bech32EncodeRef(crypto.AddressHRP, make([]byte, 32)),
		"0 bytes":               bech32EncodeRef(crypto.AddressHRP, nil),
		"uppercase wrong hrp":   strings.ToUpper(bech32EncodeRef("xyz", a[:])),
		"hrp with space inside": bech32EncodeRef("l g", a[:]),
	}
	// The Kelvin sign case is only meaningful if the address has a 'k' at 8.
	if s[8] != 'k' {
		for i := len(crypto.AddressHRP) + 1; i < len(s); i++ {
			if s[i] == 'k' {
				cases["kelvin sign for k"] = strings.ToUpper(s[:i]) + "\u212a" + strings.ToUpper(s[i+1:])
				break
			}
		}
	}
	for name, in := range cases {
		if got, err := crypto.ParseAddress(in); err == nil {
			t.Errorf("%s: ParseAddress(%q) = %s, want an error", name, in, got)
		}
	}
}

// bech32EncodeRef is an independent BIP-173 encoder (the reference code
// of the specification, transcribed), used to build inputs.
func bech32EncodeRef(hrp string, payload []byte) string {
	gen := []uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	polymod := func(values []byte) uint32 {
		chk := uint32(1)
		for _, v := range values {
			b := chk >> 25
			chk = (chk&0x1ffffff)<<5 ^ uint32(v)
			for i := range 5 {
				if (b>>i)&1 == 1 {
					chk ^= gen[i]
				}
			}
		}
		return chk
	}
	var data []byte
	acc, bits := 0, 0
	for _, v := range payload {
		acc = acc<<8 | int(v)
		bits += 8
		for bits >= 5 {
			bits -= 5
			data = append(data, byte(acc>>bits&31))
		}
	}
	if bits > 0 {
		data = append(data, byte(acc<<(5-bits)&31))
	}
	var values []byte
	for i := 0; i < len(hrp); i++ {
		values = append(values, hrp[i]>>5)
	}
	values = append(values, 0)
	for i := 0; i < len(hrp); i++ {
		values = append(values, hrp[i]&31)
	}
	values = append(values, data...)
	mod := polymod(append(values, 0, 0, 0, 0, 0, 0)) ^ 1
	var sb strings.Builder
	sb.WriteString(hrp)
	sb.WriteByte('1')
	for _, d := range data {
		sb.WriteByte(bech32Charset[d])
	}
	for i := range 6 {
		sb.WriteByte(bech32Charset[mod>>(5*(5-i))&31])
	}
	return sb.String()
}

func TestAddressStringMatchesReference(t *testing.T) {
	for i := range 20 {
		a := fixedKey(t, i).PubKey().Address()
		if got, want := a.String(), bech32EncodeRef(crypto.AddressHRP, a[:]); got != want {
			t.Fatalf("String() = %q, reference encoder says %q", got, want)
		}
	}
}

// FuzzParseAddress: ParseAddress never panics, and whatever it accepts is
// the address's own string, in lower or upper case.
func FuzzParseAddress(f *testing.F) {
	f.Add(crypto.Address{}.String())
	f.Add(fixedKey(f, 0).PubKey().Address().String())
	f.Add(strings.ToUpper(fixedKey(f, 1).PubKey().Address().String()))
	f.Add("ldg1")
	f.Add("a12uel5l")
	f.Add("LDG1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\u212aQQQQQQ")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := crypto.ParseAddress(s)
		if err != nil {
			return
		}
		canon := a.String()
		if s != canon && s != strings.ToUpper(canon) {
			t.Fatalf("ParseAddress(%q) accepted a string that is not the canonical %q (or its upper case)", s, canon)
		}
		if b, err := crypto.ParseAddress(canon); err != nil || b != a {
			t.Fatalf("canonical form %q does not parse back: %v", canon, err)
		}
	})
}

// A rejected address says what is wrong with it: the prefix, the length,
// a character, the checksum, and mixed case only when the letters really
// mix cases and nothing else is wrong.
func TestParseAddressSaysWhatIsWrong(t *testing.T) {
	a := fixedKey(t, 0).PubKey().Address()
	s := a.String()
	upperAt := func(s string) string {
		for i := len(s) - 1; i > len(crypto.AddressHRP); i-- {
			if c := s[i]; c >= 'a' && c <= 'z' {
				return s[:i] + strings.ToUpper(s[i:i+1]) + s[i+1:]
			}
		}
		t.Fatalf("no letter in %s", s)
		return ""
	}
	swapped := ""
	for i := len(crypto.AddressHRP) + 1; i+1 < len(s); i++ {
		if s[i] != s[i+1] {
			swapped = s[:i] + s[i+1:i+2] + s[i:i+1] + s[i+2:]
			break
		}
	}
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "empty"},
		{"prefix and letters, no separator", "ldgXYZ", `no "1" separator`},
		{"prefix, separator, upper-case junk", "ldg1XYZ", `3 characters after "ldg1", want 38`},
		{"another chain's address", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", `prefix "bc", want "ldg"`},
		{"wrong prefix, valid checksum", bech32EncodeRef("xyz", a[:]), `prefix "xyz", want "ldg"`},
		{"upper-case wrong prefix", strings.ToUpper(bech32EncodeRef("xyz", a[:])), `prefix "xyz", want "ldg"`},
		{"19 bytes", bech32EncodeRef(crypto.AddressHRP, a[:19]), `37 characters after "ldg1", want 38`},
		{"21 bytes", bech32EncodeRef(crypto.AddressHRP, append(a[:], 0)), `40 characters after "ldg1", want 38`},
		{"dropped character", s[:20] + s[21:], `37 characters after "ldg1", want 38`},
		{"far too long", crypto.AddressHRP + "1" + strings.Repeat("q", 90), "94 characters, an address has 42"},
		{"b is not bech32", s[:8] + "b" + s[9:], `invalid character "b" at position 8`},
		{"non-ascii", s[:8] + "é" + s[9:], "invalid character"},
		{"leading space", " " + s, `invalid character " " at position 0`},
		{"swapped characters", swapped, "checksum"},
		{"one upper-case letter", upperAt(s), "mixed case"},
		{"upper-case prefix only", strings.ToUpper(s[:3]) + s[3:], "mixed case"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := crypto.ParseAddress(tc.in)
			if err == nil {
				t.Fatalf("ParseAddress(%q) = %s, want an error saying %q", tc.in, got, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseAddress(%q): %q, want it to say %q", tc.in, err, tc.want)
			}
			if tc.want != "mixed case" && strings.Contains(err.Error(), "mixed case") {
				t.Errorf("ParseAddress(%q): %q blames the case", tc.in, err)
			}
		})
	}
	if got, err := crypto.ParseAddress(strings.ToUpper(s)); err != nil || got != a {
		t.Errorf("upper-case address: %s, %v; want %s", got, err, a)
	}
}
