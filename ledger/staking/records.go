package staking

import (
	"bytes"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/wire"
)

// Every record is a canonical wire encoding that starts with a version
// byte (1 for all of them today). Decoders are bounded, reject trailing
// bytes and values no valid state holds, and never panic.
const recordVersion = 1

// Pool is the staking module's account of tokens that left the accounts:
// Bonded is the sum of every validator's Tokens, Unbonding the sum of every
// unbonding entry's Balance, Burned everything slashed. The ledger's supply
// equation is balances + Bonded + Unbonding + Burned == genesis supply.
type Pool struct {
	Bonded    uint64 `json:"bonded,string"`
	Unbonding uint64 `json:"unbonding,string"`
	Burned    uint64 `json:"burned,string"`
	// Candidates is the number of validator records, bounded by
	// MaxCandidates.
	Candidates uint32 `json:"candidates"`
}

// Encode returns the canonical encoding.
func (p Pool) Encode() []byte {
	w := wire.NewWriter(make([]byte, 0, 29))
	w.U8(recordVersion)
	w.U64(p.Bonded)
	w.U64(p.Unbonding)
	w.U64(p.Burned)
	w.U32(p.Candidates)
	return w.Bytes()
}

// DecodePool decodes a canonical Pool encoding.
func DecodePool(b []byte) (Pool, error) {
	r := wire.NewReader(b)
	var p Pool
	r.Version("pool", recordVersion)
	p.Bonded = r.U64()
	p.Unbonding = r.U64()
	p.Burned = r.U64()
	p.Candidates = r.U32()
	if r.Err() == nil && p.Candidates > MaxCandidates {
		r.Fail(fmt.Errorf("%d candidates, at most %d", p.Candidates, MaxCandidates))
	}
	return p, r.Finish("pool")
}

// Validator is a validator's record, keyed by its operator.
//
// Tokens are the validator's bonded tokens; Shares the total of its
// delegations' shares. A share is worth Tokens/Shares tokens: slashing
// lowers Tokens only, so every delegator loses the same fraction. Shares
// is zero only when Tokens is (the last shares out take every token left).
type Validator struct {
	Operator crypto.Address `json:"operator"`
	ConsKey  crypto.PubKey  `json:"cons_key"`
	Moniker  string         `json:"moniker"`
	Tokens   uint64         `json:"tokens,string"`
	Shares   uint64         `json:"shares,string"`
	Jailed   bool           `json:"jailed"`
	// JailedUntil is the first height at which a jailed validator may
	// unjail (the largest uint64 once tombstoned).
	JailedUntil uint64 `json:"jailed_until,string"`
	// Tombstoned: punished for a double sign; jailed for good, and its
	// consensus key can never validate again.
	Tombstoned    bool   `json:"tombstoned"`
	CreatedHeight uint64 `json:"created_height,string"`
}

// ConsAddr is the validator's consensus address.
func (v Validator) ConsAddr() crypto.Address { return v.ConsKey.Address() }

// Power is the validator's voting power under powerUnit tokens per unit,
// whether or not it is in the active set.
func (v Validator) Power(powerUnit uint64) uint64 { return v.Tokens / powerUnit }

// eligible reports whether the validator may be in the active set.
func (v Validator) eligible(powerUnit uint64) bool {
	return !v.Jailed && !v.Tombstoned && v.Power(powerUnit) >= 1
}

// Encode returns the canonical encoding.
func (v *Validator) Encode() []byte {
	w := wire.NewWriter(make([]byte, 0, 1+addrLen+crypto.PubKeySize+1+len(v.Moniker)+8*4+3))
	w.U8(recordVersion)
	w.Fixed(v.Operator[:])
	w.Fixed(v.ConsKey[:])
	w.PrefixedString(v.Moniker)
	w.U64(v.Tokens)
	w.U64(v.Shares)
	w.Bool(v.Jailed)
	w.U64(v.JailedUntil)
	w.Bool(v.Tombstoned)
	w.U64(v.CreatedHeight)
	return w.Bytes()
}

// DecodeValidator decodes a canonical Validator encoding.
func DecodeValidator(b []byte) (Validator, error) {
	r := wire.NewReader(b)
	var v Validator
	r.Version("validator", recordVersion)
	r.Fixed(v.Operator[:])
	r.Fixed(v.ConsKey[:])
	v.Moniker = r.PrefixedString("moniker", MaxMonikerLen)
	v.Tokens = r.U64()
	v.Shares = r.U64()
	v.Jailed = r.Bool("jailed")
	v.JailedUntil = r.U64()
	v.Tombstoned = r.Bool("tombstoned")
	v.CreatedHeight = r.U64()
	if r.Err() == nil {
		switch {
		case v.Operator.IsZero():
			r.Fail(errors.New("zero operator"))
		case v.ConsKey.IsZero():
			r.Fail(errors.New("zero consensus key"))
		case v.Shares == 0 && v.Tokens != 0:
			r.Fail(fmt.Errorf("%d tokens and no shares", v.Tokens))
		case v.Tombstoned && !v.Jailed:
			r.Fail(errors.New("tombstoned but not jailed"))
		default:
			r.Fail(CheckMoniker(v.Moniker))
		}
	}
	return v, r.Finish("validator")
}

// CheckMoniker accepts the monikers that print safely in logs: at most
// MaxMonikerLen bytes of valid UTF-8 with no control characters (the rule
// of genesis validator names).
func CheckMoniker(m string) error {
	if len(m) > MaxMonikerLen {
		return fmt.Errorf("moniker is %d bytes, at most %d", len(m), MaxMonikerLen)
	}
	if !utf8.ValidString(m) {
		return fmt.Errorf("moniker %q is not valid UTF-8", m)
	}
	for _, c := range m {
		if unicode.IsControl(c) {
			return fmt.Errorf("moniker %q contains a control character", m)
		}
	}
	return nil
}

// ConsRecord names the validator a consensus address belongs to. It is
// kept after the validator record is gone, so a consensus key serves one
// validator, once, and a tombstoned key stays refused for good.
type ConsRecord struct {
	Operator   crypto.Address `json:"operator"`
	Tombstoned bool           `json:"tombstoned"`
}

// Encode returns the canonical encoding.
func (c ConsRecord) Encode() []byte {
	w := wire.NewWriter(make([]byte, 0, 2+addrLen))
	w.U8(recordVersion)
	w.Fixed(c.Operator[:])
	w.Bool(c.Tombstoned)
	return w.Bytes()
}

// DecodeConsRecord decodes a canonical ConsRecord encoding.
func DecodeConsRecord(b []byte) (ConsRecord, error) {
	r := wire.NewReader(b)
	var c ConsRecord
	r.Version("consensus record", recordVersion)
	r.Fixed(c.Operator[:])
	c.Tombstoned = r.Bool("tombstoned")
	if r.Err() == nil && c.Operator.IsZero() {
		r.Fail(errors.New("zero operator"))
	}
	return c, r.Finish("consensus record")
}

// PowerRecord is the value of a power-index entry: the eligible validator
// whose power and consensus address the key holds, with what an active-set
// Member needs, so the set is read off the index alone.
type PowerRecord struct {
	Operator crypto.Address
	ConsKey  crypto.PubKey
	Moniker  string
}

// Encode returns the canonical encoding.
func (p PowerRecord) Encode() []byte {
	w := wire.NewWriter(make([]byte, 0, 2+addrLen+crypto.PubKeySize+len(p.Moniker)))
	w.U8(recordVersion)
	w.Fixed(p.Operator[:])
	w.Fixed(p.ConsKey[:])
	w.PrefixedString(p.Moniker)
	return w.Bytes()
}

// DecodePowerRecord decodes a canonical PowerRecord encoding.
func DecodePowerRecord(b []byte) (PowerRecord, error) {
	r := wire.NewReader(b)
	var p PowerRecord
	r.Version("power record", recordVersion)
	r.Fixed(p.Operator[:])
	r.Fixed(p.ConsKey[:])
	p.Moniker = r.PrefixedString("moniker", MaxMonikerLen)
	if r.Err() == nil {
		switch {
		case p.Operator.IsZero():
			r.Fail(errors.New("zero operator"))
		case p.ConsKey.IsZero():
			r.Fail(errors.New("zero consensus key"))
		default:
			r.Fail(CheckMoniker(p.Moniker))
		}
	}
	return p, r.Finish("power record")
}

// Delegation is a delegator's holding of a validator's shares. A
// delegation with no shares is deleted.
type Delegation struct {
	Shares uint64 `json:"shares,string"`
}

// Encode returns the canonical encoding.
func (d Delegation) Encode() []byte {
	w := wire.NewWriter(make([]byte, 0, 9))
	w.U8(recordVersion)
	w.U64(d.Shares)
	return w.Bytes()
}

// DecodeDelegation decodes a canonical Delegation encoding.
func DecodeDelegation(b []byte) (Delegation, error) {
	r := wire.NewReader(b)
	var d Delegation
	r.Version("delegation", recordVersion)
	d.Shares = r.U64()
	if r.Err() == nil && d.Shares == 0 {
		r.Fail(errors.New("zero shares"))
	}
	return d, r.Finish("delegation")
}

// UnbondingEntry is one undelegation waiting for its completion height.
// Balance starts at InitialBalance and only slashing lowers it.
type UnbondingEntry struct {
	CreationHeight   uint64 `json:"creation_height,string"`
	CompletionHeight uint64 `json:"completion_height,string"`
	InitialBalance   uint64 `json:"initial_balance,string"`
	Balance          uint64 `json:"balance,string"`
}

const unbondingEntrySize = 32

// Unbonding is the list of one (delegator, validator) pair's unbonding
// entries, in increasing creation height (one entry per height: an
// undelegation at a height that has one adds to it), never empty.
type Unbonding struct {
	Entries []UnbondingEntry `json:"entries"`
}

// Encode returns the canonical encoding.
func (u *Unbonding) Encode() []byte {
	w := wire.NewWriter(make([]byte, 0, 2+unbondingEntrySize*len(u.Entries)))
	w.U8(recordVersion)
	w.Uvarint(uint64(len(u.Entries)))
	for _, e := range u.Entries {
		w.U64(e.CreationHeight)
		w.U64(e.CompletionHeight)
		w.U64(e.InitialBalance)
		w.U64(e.Balance)
	}
	return w.Bytes()
}

// DecodeUnbonding decodes a canonical Unbonding encoding.
func DecodeUnbonding(b []byte) (Unbonding, error) {
	r := wire.NewReader(b)
	var u Unbonding
	r.Version("unbonding", recordVersion)
	n := r.Count("unbonding entries", MaxEntriesLimit, unbondingEntrySize)
	if r.Err() == nil && n == 0 {
		r.Fail(errors.New("no unbonding entries"))
	}
	if r.Err() == nil {
		u.Entries = make([]UnbondingEntry, n)
	}
	for i := range u.Entries {
		e := &u.Entries[i]
		e.CreationHeight = r.U64()
		e.CompletionHeight = r.U64()
		e.InitialBalance = r.U64()
		e.Balance = r.U64()
		if r.Err() != nil {
			break
		}
		switch {
		case i > 0 && e.CreationHeight <= u.Entries[i-1].CreationHeight:
			r.Fail(fmt.Errorf("entry %d: creation heights not increasing", i))
		case e.CompletionHeight <= e.CreationHeight:
			r.Fail(fmt.Errorf("entry %d: completes at %d, not after its creation %d", i, e.CompletionHeight, e.CreationHeight))
		case e.Balance > e.InitialBalance:
			r.Fail(fmt.Errorf("entry %d: balance %d above its initial %d", i, e.Balance, e.InitialBalance))
		}
	}
	if r.Err() != nil {
		u.Entries = nil
	}
	return u, r.Finish("unbonding")
}

// SigningInfo is a consensus address's liveness record. Which of the last
// SignedBlocksWindow heights it missed is kept in chunks of missed bits
// indexed by height modulo the window; MissedCount is the number of set
// bits. Both change only when a bit flips, so a validator that keeps
// signing costs no writes.
type SigningInfo struct {
	// StartHeight is the height the current window started at: creation,
	// (re)entry into the active set, or the last downtime jail. Downtime
	// is judged only after a full window from it.
	StartHeight uint64 `json:"start_height,string"`
	MissedCount uint64 `json:"missed_count,string"`
}

// Encode returns the canonical encoding.
func (s SigningInfo) Encode() []byte {
	w := wire.NewWriter(make([]byte, 0, 17))
	w.U8(recordVersion)
	w.U64(s.StartHeight)
	w.U64(s.MissedCount)
	return w.Bytes()
}

// DecodeSigningInfo decodes a canonical SigningInfo encoding.
func DecodeSigningInfo(b []byte) (SigningInfo, error) {
	r := wire.NewReader(b)
	var s SigningInfo
	r.Version("signing info", recordVersion)
	s.StartHeight = r.U64()
	s.MissedCount = r.U64()
	if r.Err() == nil && s.MissedCount > MaxWindow {
		r.Fail(fmt.Errorf("missed count %d above the largest window %d", s.MissedCount, MaxWindow))
	}
	return s, r.Finish("signing info")
}

// ChunkBits is the number of missed bits one chunk record holds.
const ChunkBits = 1024

// MissChunk is one chunk of a consensus address's missed bits: bit i of
// chunk c stands for the heights h with h mod window == c*ChunkBits+i. A
// chunk with no bit set is deleted.
type MissChunk [ChunkBits / 8]byte

func (c *MissChunk) get(i uint64) bool { return c[i/8]&(1<<(i%8)) != 0 }
func (c *MissChunk) set(i uint64, v bool) {
	if v {
		c[i/8] |= 1 << (i % 8)
	} else {
		c[i/8] &^= 1 << (i % 8)
	}
}
func (c *MissChunk) zero() bool { return *c == MissChunk{} }

// Encode returns the canonical encoding.
func (c *MissChunk) Encode() []byte {
	w := wire.NewWriter(make([]byte, 0, 1+len(c)))
	w.U8(recordVersion)
	w.Fixed(c[:])
	return w.Bytes()
}

// DecodeMissChunk decodes a canonical MissChunk encoding.
func DecodeMissChunk(b []byte) (MissChunk, error) {
	r := wire.NewReader(b)
	var c MissChunk
	r.Version("missed chunk", recordVersion)
	r.Fixed(c[:])
	if r.Err() == nil && c.zero() {
		r.Fail(errors.New("no bit set"))
	}
	return c, r.Finish("missed chunk")
}

// Member is one validator of an active set.
type Member struct {
	Operator crypto.Address `json:"operator"`
	ConsKey  crypto.PubKey  `json:"cons_key"`
	Power    uint64         `json:"power,string"`
	Moniker  string         `json:"moniker"`
}

const memberMinSize = addrLen + crypto.PubKeySize + 8 + 1

// EncodeActive returns the canonical encoding of an active set, whose
// members must be sorted by consensus address.
func EncodeActive(members []Member) []byte {
	w := wire.NewWriter(nil)
	w.U8(recordVersion)
	w.Uvarint(uint64(len(members)))
	for _, m := range members {
		w.Fixed(m.Operator[:])
		w.Fixed(m.ConsKey[:])
		w.U64(m.Power)
		w.PrefixedString(m.Moniker)
	}
	return w.Bytes()
}

// DecodeActive decodes a canonical active-set encoding: at most
// MaxValidatorsLimit members, sorted by consensus address with no repeat,
// each with power at least 1.
func DecodeActive(b []byte) ([]Member, error) {
	r := wire.NewReader(b)
	r.Version("active set", recordVersion)
	n := r.Count("members", MaxValidatorsLimit, memberMinSize)
	var ms []Member
	if r.Err() == nil {
		ms = make([]Member, n)
	}
	var prev crypto.Address
	ops := make(map[crypto.Address]bool, n)
	for i := range ms {
		m := &ms[i]
		r.Fixed(m.Operator[:])
		r.Fixed(m.ConsKey[:])
		m.Power = r.U64()
		m.Moniker = r.PrefixedString("moniker", MaxMonikerLen)
		if r.Err() != nil {
			break
		}
		cons := m.ConsKey.Address()
		switch {
		case m.Operator.IsZero() || m.ConsKey.IsZero():
			r.Fail(fmt.Errorf("member %d: zero operator or consensus key", i))
		case m.Power == 0:
			r.Fail(fmt.Errorf("member %d: zero power", i))
		case i > 0 && bytes.Compare(cons[:], prev[:]) <= 0:
			r.Fail(fmt.Errorf("member %d: not sorted by consensus address", i))
		case ops[m.Operator]:
			r.Fail(fmt.Errorf("member %d: operator %s twice", i, m.Operator))
		default:
			r.Fail(CheckMoniker(m.Moniker))
		}
		prev = cons
		ops[m.Operator] = true
	}
	if err := r.Finish("active set"); err != nil {
		return nil, err
	}
	return ms, nil
}

// marker is the value of the index entries whose key says everything.
var marker = []byte{recordVersion}

// DecodeMarker checks an index marker's encoding.
func DecodeMarker(b []byte) error {
	r := wire.NewReader(b)
	r.Version("marker", recordVersion)
	return r.Finish("marker")
}
