package api

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// FuzzTxParam feeds arbitrary JSON to the transaction parameter decoder:
// it must never panic, and whatever it accepts must survive a round trip
// through the hex form unchanged.
func FuzzTxParam(f *testing.F) {
	k, _ := crypto.PrivKeyFromSeed(make([]byte, 32))
	tx := &ledger.Tx{ChainID: "c", To: crypto.Address{1}, Amount: 5, Fee: 1, Nonce: 2}
	tx.Sign(k)
	obj, _ := json.Marshal(tx)
	for _, s := range []string{`"` + hex.EncodeToString(tx.Encode()) + `"`, string(obj), `"0x"`, `{}`, `[]`, `"zz"`, `{"chain_id":1}`} {
		f.Add([]byte(s))
	}
	for _, st := range []*ledger.Tx{
		{ChainID: "c", Kind: ledger.TxCreateValidator, ConsKey: crypto.PubKey{7}, Moniker: "m", Amount: 5, Fee: 1, Nonce: 2},
		{ChainID: "c", Kind: ledger.TxDelegate, To: crypto.Address{1}, Amount: 5, Fee: 1, Nonce: 2},
		{ChainID: "c", Kind: ledger.TxUndelegate, To: crypto.Address{1}, Amount: 5, Fee: 1, Nonce: 2},
		{ChainID: "c", Kind: ledger.TxUnjail, Fee: 1, Nonce: 2},
	} {
		st.Sign(k)
		obj, _ := json.Marshal(st)
		f.Add(obj)
		f.Add([]byte(`"` + hex.EncodeToString(st.Encode()) + `"`))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p TxParam
		if err := json.Unmarshal(b, &p); err != nil {
			return
		}
		if p.Tx == nil {
			t.Fatal("accepted without a transaction")
		}
		enc, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var q TxParam
		if err := json.Unmarshal(enc, &q); err != nil {
			t.Fatalf("own encoding refused: %v", err)
		}
		if q.Tx.Hash() != p.Tx.Hash() {
			t.Fatal("round trip changed the transaction")
		}
	})
}

// FuzzHeight checks the height parameter decoder never panics and
// round-trips what it accepts.
func FuzzHeight(f *testing.F) {
	for _, s := range []string{`"latest"`, `12`, `"12"`, `-1`, `"1e3"`, `18446744073709551616`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Height
		if json.Unmarshal(b, &h) != nil {
			return
		}
		enc, _ := json.Marshal(h)
		var g Height
		if err := json.Unmarshal(enc, &g); err != nil || g != h {
			t.Fatalf("round trip of %s: %v %v", enc, g, err)
		}
	})
}

// FuzzStakingProofs feeds arbitrary JSON to the staking answers that
// carry proofs: decoding and VerifyProof never panic, whatever a node
// sends.
func FuzzStakingProofs(f *testing.F) {
	f.Add([]byte(`{"height":"1","bonded":"5","proof":{"app_hash":"` + strings.Repeat("00", 32) + `","header_height":"2","records":[{"key":"73746b2f706f6f6c","proof":{"leaf":null,"siblings":[]}}]}}`))
	f.Add([]byte(`{"operator":"ldg1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnrql8a","signing":{"window_start":"1"},"proof":{"records":[]}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p StakingPool
		if json.Unmarshal(b, &p) == nil {
			p.VerifyProof()
		}
		var v ValidatorStatus
		if json.Unmarshal(b, &v) == nil {
			v.VerifyProof(1000)
			v.VerifyProof(0)
		}
	})
}
