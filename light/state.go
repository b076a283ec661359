package light

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// MaxTrustedStateBytes bounds an encoded TrustedState: a header and two
// sets of at most ledger.MaxValidators members, base64 in JSON, fit with
// room to spare.
const MaxTrustedStateBytes = 1 << 20

// trustedStateVersion is the version of the encoding.
const trustedStateVersion = 1

// TrustedState is the newest header a light client trusted, saved so that
// the next run starts from it instead of the genesis: the header with the
// validator sets of its height and the next (each nil when it was not
// fetched), and the chain and genesis it was verified from.
type TrustedState struct {
	ChainID        string
	GenesisHash    crypto.Hash
	Header         *ledger.Header
	Validators     *ledger.ValidatorSet
	NextValidators *ledger.ValidatorSet
}

// trustedStateJSON is the encoding: the sets in their canonical binary
// encoding (base64 in JSON), so that decoding them checks every rule of a
// set.
type trustedStateJSON struct {
	Version        int            `json:"version"`
	ChainID        string         `json:"chain_id"`
	GenesisHash    crypto.Hash    `json:"genesis_hash"`
	Header         *ledger.Header `json:"header"`
	Validators     []byte         `json:"validators,omitempty"`
	NextValidators []byte         `json:"next_validators,omitempty"`
}

// Encode returns the state as JSON.
func (s *TrustedState) Encode() []byte {
	j := trustedStateJSON{Version: trustedStateVersion, ChainID: s.ChainID, GenesisHash: s.GenesisHash, Header: s.Header}
	if s.Validators != nil {
		j.Validators = s.Validators.Encode()
	}
	if s.NextValidators != nil {
		j.NextValidators = s.NextValidators.Encode()
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("encode trusted state: %v", err)) // plain data always encodes
	}
	return append(b, '\n')
}

// DecodeTrustedState decodes an encoded state (at most
// MaxTrustedStateBytes) and checks that it is whole: a header of the chain
// it names at a height of 1 or more, and sets that hash to what the header
// names. It says nothing about whether the state should be trusted; see
// Trust.RestoreState.
func DecodeTrustedState(b []byte) (*TrustedState, error) {
	if len(b) > MaxTrustedStateBytes {
		return nil, fmt.Errorf("trusted state: %d bytes, at most %d", len(b), MaxTrustedStateBytes)
	}
	var j trustedStateJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("trusted state: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trusted state: data after the object")
	}
	if j.Version != trustedStateVersion {
		return nil, fmt.Errorf("trusted state: version %d, this client reads version %d", j.Version, trustedStateVersion)
	}
	if err := crypto.ValidateChainID(j.ChainID); err != nil {
		return nil, fmt.Errorf("trusted state: chain id: %w", err)
	}
	h := j.Header
	switch {
	case h == nil:
		return nil, errors.New("trusted state: no header")
	case h.Height == 0:
		return nil, errors.New("trusted state: header of height 0")
	case h.ChainID != j.ChainID:
		return nil, fmt.Errorf("trusted state: header of chain %q in the state of chain %q", h.ChainID, j.ChainID)
	}
	s := &TrustedState{ChainID: j.ChainID, GenesisHash: j.GenesisHash, Header: h}
	var err error
	if s.Validators, err = decodeStateSet(j.Validators, h.ValidatorsHash, "validators"); err != nil {
		return nil, err
	}
	if s.NextValidators, err = decodeStateSet(j.NextValidators, h.NextValidatorsHash, "next validators"); err != nil {
		return nil, err
	}
	return s, nil
}

func decodeStateSet(b []byte, want crypto.Hash, what string) (*ledger.ValidatorSet, error) {
	if b == nil {
		return nil, nil
	}
	vs, err := ledger.DecodeValidatorSet(b)
	if err != nil {
		return nil, fmt.Errorf("trusted state: %s: %w", what, err)
	}
	if vs.Hash() != want {
		return nil, fmt.Errorf("trusted state: %s hash to %s, the header names %s", what, vs.Hash(), want)
	}
	return vs, nil
}

// State returns the newest header the light client trusts, or nil when it
// trusts only the genesis.
func (t *Trust) State() *TrustedState {
	e := t.newest()
	if e.header == nil {
		return nil
	}
	return &TrustedState{ChainID: t.ChainID, GenesisHash: t.GenesisHash, Header: e.header, Validators: e.vals, NextValidators: e.next}
}

// RestoreState makes the light client trust s, a state an earlier run
// saved (see Persist): verification then starts from it instead of the
// genesis. s must be of the trusted chain and genesis. The saved header is
// trusted as much as the pinned genesis is: keep it where the genesis is.
func (t *Trust) RestoreState(s *TrustedState) error {
	switch {
	case s.ChainID != t.ChainID:
		return fmt.Errorf("trusted state is of chain %q, the trusted genesis of %q", s.ChainID, t.ChainID)
	case s.GenesisHash != t.GenesisHash:
		return fmt.Errorf("trusted state was verified from genesis %s, the trusted genesis is %s", s.GenesisHash, t.GenesisHash)
	case s.Header == nil || s.Header.Height == 0 || s.Header.ChainID != t.ChainID:
		return errors.New("trusted state has no header of the trusted chain")
	}
	e := &trusted{height: s.Header.Height, header: s.Header, hash: s.Header.Hash(), nextHash: s.Header.NextValidatorsHash}
	if s.Validators != nil && s.Validators.Hash() == s.Header.ValidatorsHash {
		e.vals = s.Validators
	}
	if s.NextValidators != nil && s.NextValidators.Hash() == s.Header.NextValidatorsHash {
		e.next = s.NextValidators
	}
	if _, err := t.add(e); err != nil {
		return err
	}
	t.light.persistMu.Lock()
	t.light.persisted = max(t.light.persisted, e.height)
	t.light.persistMu.Unlock()
	return nil
}

// persist hands the newest trusted header to t.Persist when it is newer
// than the last one handed over. A failing Persist is tried again after
// the next verification.
func (t *Trust) persist() {
	if t.Persist == nil {
		return
	}
	t.light.persistMu.Lock()
	defer t.light.persistMu.Unlock()
	s := t.State()
	if s == nil || s.Header.Height <= t.light.persisted {
		return
	}
	if t.Persist(s) == nil {
		t.light.persisted = s.Header.Height
	}
}
