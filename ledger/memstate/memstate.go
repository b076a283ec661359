// Package memstate is an in-memory ledger state: accounts, committed
// evidence, state records and the validator set of every height. It is
// the ledger.StateReader of the consensus simulator and of unit tests;
// nodes use ledger/store.
package memstate

import (
	"bytes"
	"maps"
	"sort"
	"strings"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// State implements ledger.StateReader over maps.
type State struct {
	Accounts map[crypto.Address]ledger.Account
	Evidence map[crypto.Hash]bool
	Records  map[string][]byte
	Sets     *ledger.ValidatorHistory
}

// New returns a state holding the given accounts and records, whose
// genesis validator set is vals.
func New(vals *ledger.ValidatorSet, accounts []ledger.AccountUpdate, records []ledger.Record) *State {
	m := &State{
		Accounts: make(map[crypto.Address]ledger.Account, len(accounts)),
		Evidence: map[crypto.Hash]bool{},
		Records:  make(map[string][]byte, len(records)),
		Sets:     ledger.NewValidatorHistory(vals),
	}
	for _, u := range accounts {
		m.Accounts[u.Address] = u.Account
	}
	for _, r := range records {
		if r.Value != nil {
			m.Records[string(r.Key)] = r.Value
		}
	}
	return m
}

// Account implements ledger.StateReader.
func (m *State) Account(a crypto.Address) (ledger.Account, error) { return m.Accounts[a], nil }

// EvidenceCommitted implements ledger.StateReader.
func (m *State) EvidenceCommitted(k crypto.Hash) (bool, error) { return m.Evidence[k], nil }

// ValidatorsAt implements ledger.StateReader.
func (m *State) ValidatorsAt(h uint64) (*ledger.ValidatorSet, error) { return m.Sets.At(h) }

// Record implements ledger.StateReader.
func (m *State) Record(key []byte) ([]byte, error) {
	v, ok := m.Records[string(key)]
	if !ok {
		return nil, nil
	}
	return bytes.Clone(v), nil
}

// IterateRecords implements ledger.StateReader.
func (m *State) IterateRecords(prefix []byte, fn func(key, value []byte) error) error {
	keys := make([]string, 0)
	for k := range m.Records {
		if strings.HasPrefix(k, string(prefix)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn([]byte(k), bytes.Clone(m.Records[k])); err != nil {
			return err
		}
	}
	return nil
}

// Apply applies the result of executing the block of height h.
func (m *State) Apply(h uint64, r *ledger.Result) error {
	for _, u := range r.Accounts {
		m.Accounts[u.Address] = u.Account
	}
	for _, k := range r.Evidence {
		m.Evidence[k] = true
	}
	for _, rec := range r.Records {
		if rec.Value == nil {
			delete(m.Records, string(rec.Key))
		} else {
			m.Records[string(rec.Key)] = bytes.Clone(rec.Value)
		}
	}
	if r.NextValidators != nil {
		return m.Sets.Set(h+2, r.NextValidators)
	}
	return nil
}

// Clone returns an independent copy.
func (m *State) Clone() *State {
	return &State{Accounts: maps.Clone(m.Accounts), Evidence: maps.Clone(m.Evidence), Records: maps.Clone(m.Records), Sets: m.Sets.Clone()}
}
