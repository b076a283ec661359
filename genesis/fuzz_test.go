package genesis

import (
	"bytes"
	"testing"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts is
// valid, yields an initial state holding its supply, and survives being
// written out and parsed again with the same Hash and the same encoding.
func FuzzParse(f *testing.F) {
	example := readExample(f)
	f.Add(example)
	compact, err := marshal(testDoc(f), "")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(compact)
	for _, s := range []string{
		"", "{}", "null", "[]", `"genesis"`, "{} {}", "\xef\xbb\xbf{}",
		`{"chain_id": "a", "chain_id": "b"}`,
		`{"Chain_ID": "a"}`,
		`{"chain_id": "x", "genesis_time": "1900-01-01T00:00:00Z"}`,
		`{"validators": [{"pub_key": "00", "power": 1}], "balances": [{"address": "ldg1", "amount": "-1"}]}`,
		`{"consensus_params": {"timeout_propose": {"base": "-1s"}}}`,
		`{"balances": [{}, {}, {}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Add(bytes.Replace(example, []byte(`"name": "alpha"`), []byte(`"name": "\u00e9\u0000\ud800"`), 1))
	f.Add(bytes.Replace(example, []byte(`"amount": "250000000"`), []byte(`"amount": "0250000000"`), 1))
	f.Add(bytes.Replace(example, []byte(`"2026-01-01T00:00:00Z"`), []byte(`"2026-01-01T01:00:00.123456789+01:00"`), 1))

	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			if d != nil {
				t.Fatal("Parse returned a document with an error")
			}
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid document: %v", err)
		}
		st, accounts, err := d.InitialState()
		if err != nil {
			t.Fatalf("InitialState of an accepted document: %v", err)
		}
		var sum uint64
		for _, a := range accounts {
			sum += a.Account.Balance
		}
		for _, v := range d.Validators {
			sum += v.Power * d.Staking.PowerUnit
		}
		if sum != st.TotalSupply {
			t.Fatalf("accounts and bonded stake hold %d, total supply is %d", sum, st.TotalSupply)
		}
		if _, err := d.StakingRecords(); err != nil {
			t.Fatalf("StakingRecords of an accepted document: %v", err)
		}
		for _, indent := range []string{"", "  "} {
			enc, err := marshal(d, indent)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(enc)
			if err != nil {
				t.Fatalf("re-parse of %s: %v", enc, err)
			}
			if again.Hash() != d.Hash() {
				t.Fatalf("hash changed on re-parse: %s then %s", d.Hash(), again.Hash())
			}
			enc2, err := marshal(again, indent)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, enc2) {
				t.Fatalf("encoding is not stable:\n%s\nthen\n%s", enc, enc2)
			}
		}
	})
}
