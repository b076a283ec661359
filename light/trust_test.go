package light

import (
	"errors"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/rpc/client/clienttest"
)

func trustOf(t *testing.T, c *clienttest.Chain) *Trust {
	t.Helper()
	tr, err := NewTrust(c.Doc)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// storedHash returns the hash of the trusted header of height h, if the
// store holds one.
func (t *Trust) storedHash(h uint64) *crypto.Hash {
	hdr := t.TrustedHeader(h)
	if hdr == nil {
		return nil
	}
	hash := hdr.Hash()
	return &hash
}

// TestDecodeTrustedStateRejects: each malformed state fails with a reason,
// never a panic.
func TestDecodeTrustedStateRejects(t *testing.T) {
	c, err := clienttest.NewChain(clienttest.Options{Seed: 3, Heights: 20})
	if err != nil {
		t.Fatal(err)
	}
	good := (&TrustedState{ChainID: clienttest.ChainID, Header: &c.Blocks[10].Header, Validators: c.Sets[10], NextValidators: c.Sets[11]}).Encode()
	if _, err := DecodeTrustedState(good); err != nil {
		t.Fatalf("good state: %v", err)
	}
	other := c.Sets[1]
	if other.Hash() == c.Sets[11].Hash() {
		other = c.Sets[c.Height()]
	}
	mismatch := (&TrustedState{ChainID: clienttest.ChainID, Header: &c.Blocks[10].Header, NextValidators: other}).Encode()
	for name, tc := range map[string]struct {
		in   string
		want string
	}{
		"empty":         {"", "EOF"},
		"too large":     {strings.Repeat(" ", MaxTrustedStateBytes+1), "at most"},
		"not json":      {"{", "unexpected EOF"},
		"trailing data": {string(good) + "{}", "after the object"},
		"unknown field": {strings.Replace(string(good), `"version"`, `"extra": 1, "version"`, 1), "unknown field"},
		"version":       {strings.Replace(string(good), `"version": 1`, `"version": 2`, 1), "version 2"},
		"no header":     {`{"version":1,"chain_id":"x"}`, "no header"},
		"other chain":   {strings.Replace(string(good), `"chain_id": "`+clienttest.ChainID+`",`+"\n  \"genesis", `"chain_id": "other",`+"\n  \"genesis", 1), "header of chain"},
		"set mismatch":  {string(mismatch), "next validators hash to"},
		"bad set":       {strings.Replace(string(good), `"validators": "`, `"validators": "AAAA`, 1), "validators"},
		"height 0":      {`{"version":1,"chain_id":"x","header":{"chain_id":"x","height":"0"}}`, "height 0"},
		"bad chain id":  {`{"version":1,"chain_id":"","header":{"chain_id":"","height":"1"}}`, "chain id"},
	} {
		if _, err := DecodeTrustedState([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}

// FuzzDecodeTrustedState: the decoder never panics, and what it accepts
// encodes back to a state it decodes the same.
func FuzzDecodeTrustedState(f *testing.F) {
	c, err := clienttest.NewChain(clienttest.Options{Seed: 5, Heights: 12})
	if err != nil {
		f.Fatal(err)
	}
	f.Add((&TrustedState{ChainID: clienttest.ChainID, Header: &c.Blocks[10].Header, Validators: c.Sets[10], NextValidators: c.Sets[11]}).Encode())
	f.Add((&TrustedState{ChainID: clienttest.ChainID, Header: &c.Blocks[3].Header}).Encode())
	f.Add([]byte(`{"version":1,"chain_id":"x","header":{"chain_id":"x","height":"1"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeTrustedState(b)
		if err != nil {
			return
		}
		again, err := DecodeTrustedState(s.Encode())
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		if again.Header.Hash() != s.Header.Hash() || again.ChainID != s.ChainID || again.GenesisHash != s.GenesisHash ||
			!again.Validators.Equal(s.Validators) || !again.NextValidators.Equal(s.NextValidators) {
			t.Fatal("re-encoded state decodes differently")
		}
	})
}

// TestTrustingPeriodOf: two thirds of the unbonding period, rounded down,
// at least 1; the default without one.
func TestTrustingPeriodOf(t *testing.T) {
	c, err := clienttest.NewChain(clienttest.Options{Seed: 1, Heights: 3})
	if err != nil {
		t.Fatal(err)
	}
	doc := *c.Doc
	for _, tc := range []struct{ unbonding, want uint64 }{
		{0, DefaultTrustingPeriod}, {1, 1}, {2, 1}, {3, 2}, {1000, 666}, {1001, 667}, {1 << 63, 6148914691236517205},
	} {
		doc.Staking.UnbondingHeights = tc.unbonding
		if got := TrustingPeriodOf(&doc); got != tc.want {
			t.Errorf("unbonding %d: trusting period %d, want %d", tc.unbonding, got, tc.want)
		}
	}
	if tr := trustOf(t, c); tr.TrustingPeriod != 666 {
		t.Errorf("NewTrust of a genesis unbonding in 1000 heights: trusting period %d, want 666", tr.TrustingPeriod)
	}
}

// TestStoreRefusesAConflictingHeader: two different headers of one height
// cannot both be trusted; the same header again is no conflict, and the
// store keeps the sets either copy brought.
func TestStoreRefusesAConflictingHeader(t *testing.T) {
	c, err := clienttest.NewChain(clienttest.Options{Seed: 2, Heights: 20})
	if err != nil {
		t.Fatal(err)
	}
	tr := trustOf(t, c)
	h := c.Blocks[10].Header
	entry := func(hdr ledger.Header) *trusted {
		return &trusted{height: hdr.Height, header: &hdr, hash: hdr.Hash(), nextHash: hdr.NextValidatorsHash}
	}
	if _, err := tr.add(entry(h)); err != nil {
		t.Fatal(err)
	}
	withSet := entry(h)
	withSet.next = c.Sets[11]
	if e, err := tr.add(withSet); err != nil || e.next != c.Sets[11] {
		t.Fatalf("the same header again: %v (next set kept: %v)", err, e != nil && e.next != nil)
	}
	other := h
	other.AppHash[0] ^= 1
	_, err = tr.add(entry(other))
	if !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), "conflicting headers at height 10") {
		t.Fatalf("a second header of height 10: %v", err)
	}
	if got := tr.storedHash(10); got == nil || *got != h.Hash() {
		t.Fatal("the conflicting header replaced the trusted one")
	}
}
