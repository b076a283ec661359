package genesis

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
)

const exampleFile = "testdata/genesis.json"

// exampleHash is the Hash of testdata/genesis.json. Nodes compare genesis
// hashes (a store refuses a genesis whose hash differs from the one it was
// created with), so a change to the canonical encoding must be deliberate:
// it makes every existing node refuse to start.
const exampleHash = "78640114cb7ba9ce8c6aa99a0255208507eeda96e12d464dbb76f7d83286e1be"

func readExample(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExampleGenesisLoads(t *testing.T) {
	d, err := Load(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	if d.ChainID != "ledgerd-example-1" || len(d.Validators) != 4 || len(d.Balances) != 3 {
		t.Errorf("got chain %q with %d validators and %d balances, want ledgerd-example-1 with 4 and 3",
			d.ChainID, len(d.Validators), len(d.Balances))
	}
	if got, want := d.TotalSupply(), uint64(6_250_000_000+35*1000); got != want { // balances and 35 power bonded at 1000 tokens each
		t.Errorf("total supply %d, want %d", got, want)
	}
	if got := d.Hash().String(); got != exampleHash {
		t.Errorf("hash %s, want %s: the canonical encoding changed", got, exampleHash)
	}
	// The example is in the form Save writes, so it shows operators the
	// format ledgerd itself produces.
	b, err := marshal(d, "  ")
	if err != nil {
		t.Fatal(err)
	}
	if want := readExample(t); !bytes.Equal(append(b, '\n'), want) {
		t.Errorf("Save's form of the example differs from the file:\n%s", b)
	}
}

// edit returns the example with old replaced by new, once.
func edit(t *testing.T, old, new string) []byte {
	t.Helper()
	b := readExample(t)
	if bytes.Count(b, []byte(old)) != 1 {
		t.Fatalf("%q does not occur exactly once in the example", old)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

const (
	exampleAddr0 = "ldg1e5cy4qhdh6kwuaffjlnzzgquta3jq8dfr5uf26"
	exampleAddr1 = "ldg1nt3jh4c89u2nmfqcs4uetxnv9qy97kac39wpy3"
	exampleKey2  = "74e8954074deea21c67290bcd6e754dc2d712fbb7a5dccc15a9fea39732de2cd"
)

// Each malformed input is rejected with one problem that names where it is.
func TestParseNamesWhatIsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input func(t *testing.T) []byte
		want  []string // the problem starts with want[0] and contains the rest
	}{
		{"empty input", func(*testing.T) []byte { return nil }, []string{"the document is empty"}},
		{"only whitespace", func(*testing.T) []byte { return []byte(" \n\t") }, []string{"the document is empty"}},
		{"null", func(*testing.T) []byte { return []byte("null") }, []string{"line 1, column 1: ", "want a JSON object"}},
		{"an array", func(*testing.T) []byte { return []byte("[]") }, []string{"line 1, column 1: ", "want a JSON object"}},
		{"cut short", func(t *testing.T) []byte { b := readExample(t); return b[:len(b)/2] }, []string{"the document ends early"}},
		{"syntax error", func(t *testing.T) []byte {
			return edit(t, `"chain_id": "ledgerd-example-1",`, `"chain_id": "ledgerd-example-1";`)
		}, []string{"line 2, column ", "invalid JSON"}},
		{"trailing data", func(t *testing.T) []byte { return append(readExample(t), "{}"...) }, []string{"line 70, column 1: ", "unexpected data after the document"}},
		{"two documents", func(t *testing.T) []byte { return append(readExample(t), readExample(t)...) }, []string{"line 70, column 1: ", "unexpected data"}},
		{"byte order mark", func(t *testing.T) []byte { return append([]byte("\xef\xbb\xbf"), readExample(t)...) }, []string{"the document starts with a byte order mark"}},
		{"too large", func(*testing.T) []byte { return bytes.Repeat([]byte(" "), MaxDocBytes+1) }, []string{"the document is larger than the limit"}},
		{"unknown field", func(t *testing.T) []byte {
			return edit(t, `"chain_id"`, `"chain_name": "x", "chain_id"`)
		}, []string{`document: unknown field "chain_name"`, "chain_id, genesis_time"}},
		{"unknown validator field", func(t *testing.T) []byte {
			return edit(t, `"name": "bravo"`, `"name": "bravo", "stake": "1"`)
		}, []string{`validators[1]: unknown field "stake"`, "pub_key, power, name"}},
		{"duplicate key", func(t *testing.T) []byte {
			return edit(t, `"chain_id": "ledgerd-example-1",`, `"chain_id": "ledgerd-example-1", "chain_id": "other",`)
		}, []string{`document: key "chain_id" appears twice`}},
		{"duplicate key in a balance", func(t *testing.T) []byte {
			return edit(t, `"amount": "250000000"`, `"amount": "250000000", "amount": "999999999999"`)
		}, []string{`balances[1]: key "amount" appears twice`}},
		{"key in upper case", func(t *testing.T) []byte {
			return edit(t, `"chain_id"`, `"Chain_ID"`)
		}, []string{`document: key "Chain_ID": keys are lower case; write "chain_id"`}},
		{"key that matches only after Unicode folding", func(t *testing.T) []byte {
			return edit(t, `"address": "`+exampleAddr1, `"addreſs": "`+exampleAddr1)
		}, []string{`balances[1]: key "addreſs": keys are lower-case ASCII letters`}},
		{"address with a typo", func(t *testing.T) []byte {
			return edit(t, exampleAddr1, strings.Replace(exampleAddr1, "nt3j", "nt3k", 1))
		}, []string{"balances[1].address: ", "checksum"}},
		{"address of another chain", func(t *testing.T) []byte {
			return edit(t, exampleAddr0, otherPrefixAddress())
		}, []string{"balances[0].address: ", `want "ldg"`}},
		{"amount as a JSON number", func(t *testing.T) []byte {
			return edit(t, `"amount": "250000000"`, `"amount": 250000000`)
		}, []string{"balances[1].amount: ", "without quotes", `decimal string, such as "10"`}},
		{"negative amount", func(t *testing.T) []byte {
			return edit(t, `"amount": "250000000"`, `"amount": "-250000000"`)
		}, []string{"balances[1].amount: ", "got number -250000000", "whole number"}},
		{"amount above 64 bits", func(t *testing.T) []byte {
			return edit(t, `"amount": "250000000"`, `"amount": "18446744073709551616"`)
		}, []string{"balances[1].amount: ", "whole number"}},
		{"amount not a number", func(t *testing.T) []byte {
			return edit(t, `"amount": "250000000"`, `"amount": "lots"`)
		}, []string{"balances[1].amount: ", "whole number"}},
		{"public key too short", func(t *testing.T) []byte {
			return edit(t, exampleKey2, exampleKey2[:60])
		}, []string{"validators[2].pub_key: ", "64 hex characters"}},
		{"public key not hex", func(t *testing.T) []byte {
			return edit(t, exampleKey2, "zz"+exampleKey2[2:])
		}, []string{"validators[2].pub_key: ", "invalid byte"}},
		{"power as a JSON number", func(t *testing.T) []byte {
			return edit(t, `"power": "5"`, `"power": 5`)
		}, []string{"validators[3].power: ", "without quotes"}},
		{"name as a number", func(t *testing.T) []byte {
			return edit(t, `"name": "delta"`, `"name": 4`)
		}, []string{"validators[3].name: ", "got number, want a string"}},
		{"chain ID as a number", func(t *testing.T) []byte {
			return edit(t, `"chain_id": "ledgerd-example-1"`, `"chain_id": 1`)
		}, []string{"chain_id: ", "got number, want a string"}},
		{"genesis time not RFC 3339", func(t *testing.T) []byte {
			return edit(t, `"2026-01-01T00:00:00Z"`, `"2026-01-01 00:00:00"`)
		}, []string{"genesis_time: ", "not a valid time", "RFC 3339"}},
		{"genesis time as a number", func(t *testing.T) []byte {
			return edit(t, `"2026-01-01T00:00:00Z"`, `1767225600`)
		}, []string{"genesis_time: ", "RFC 3339"}},
		{"genesis time after 2262", func(t *testing.T) []byte {
			return edit(t, `"2026-01-01T00:00:00Z"`, `"3000-01-01T00:00:00Z"`)
		}, []string{"genesis_time: ", "outside the range"}},
		{"genesis time before 1970", func(t *testing.T) []byte {
			return edit(t, `"2026-01-01T00:00:00Z"`, `"1900-01-01T00:00:00Z"`)
		}, []string{"genesis_time: ", "outside the range"}},
		{"timeout not a duration", func(t *testing.T) []byte {
			return edit(t, `"base": "1s"`, `"base": "1 second"`)
		}, []string{"consensus_params.timeout_propose: ", "duration"}},
		{"block size as a JSON number", func(t *testing.T) []byte {
			return edit(t, `"max_block_bytes": "4194304"`, `"max_block_bytes": 4194304`)
		}, []string{"consensus_params.max_block_bytes: ", "decimal string"}},
		{"unknown parameter", func(t *testing.T) []byte {
			return edit(t, `"max_evidence": "100",`, `"max_evidence": "100", "max_gas": "1",`)
		}, []string{`consensus_params: unknown field "max_gas"`}},
		{"parameters not an object", func(t *testing.T) []byte {
			b := readExample(t)
			i, j := bytes.Index(b, []byte(`"consensus_params": {`)), bytes.Index(b, []byte(`"validators"`))
			return append(append(b[:i:i], `"consensus_params": "default", `...), b[j:]...)
		}, []string{"consensus_params: ", "got a string, want an object"}},
		{"validators not an array", func(t *testing.T) []byte {
			b := readExample(t)
			i := bytes.Index(b, []byte(`"validators"`))
			j := bytes.Index(b, []byte(`"balances"`))
			return append(append(b[:i:i], `"validators": "all of them", `...), b[j:]...)
		}, []string{"validators: ", "got a string, want an array"}},
		{"brackets that do not match", func(t *testing.T) []byte {
			return edit(t, `"validators": [`, `"validators": {"list": [`)
		}, []string{"the document ends early"}},
		{"balances an object", func(t *testing.T) []byte {
			b := readExample(t)
			i := bytes.Index(b, []byte(`"balances"`))
			return append(b[:i:i], `"balances": {}}`...)
		}, []string{"balances: ", "got an object, want an array"}},
		{"validator not an object", func(t *testing.T) []byte {
			b := readExample(t)
			i := bytes.Index(b, []byte(`"validators"`))
			j := bytes.Index(b, []byte(`"balances"`))
			return append(append(b[:i:i], `"validators": ["alpha"], `...), b[j:]...)
		}, []string{"validators[0]: ", "got a string, want an object"}},
		{"more validators than allowed", func(t *testing.T) []byte {
			b := readExample(t)
			i := bytes.Index(b, []byte(`"validators"`))
			j := bytes.Index(b, []byte(`"balances"`))
			list := strings.TrimSuffix(strings.Repeat("{},", 1001), ",")
			return append(append(b[:i:i], `"validators": [`+list+`], `...), b[j:]...)
		}, []string{"validators: ", "more than 1000 given, at most 1000"}},
		{"valid JSON, invalid genesis", func(t *testing.T) []byte {
			return edit(t, `"chain_id": "ledgerd-example-1"`, `"chain_id": ""`)
		}, []string{"chain_id: ", "empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse(tc.input(t))
			if err == nil {
				t.Fatalf("accepted, hash %s", d.Hash())
			}
			if !strings.HasPrefix(err.Error(), "parse genesis: ") {
				t.Errorf("error %q does not say it is about the genesis", err)
			}
			var got []string
			var ie *InvalidError
			if errors.As(err, &ie) {
				got = problemsOf(t, err)
			} else {
				got = []string{strings.TrimPrefix(err.Error(), "parse genesis: ")}
			}
			if len(got) != 1 {
				t.Fatalf("got %d problems, want 1:\n%s", len(got), strings.Join(got, "\n"))
			}
			t.Log(got[0])
			if !strings.HasPrefix(got[0], tc.want[0]) {
				t.Errorf("problem %q does not start with %q", got[0], tc.want[0])
			}
			for _, w := range tc.want[1:] {
				if !strings.Contains(got[0], w) {
					t.Errorf("problem %q does not say %q", got[0], w)
				}
			}
		})
	}
}

// otherPrefixAddress is a valid bech32 string with the prefix "abcdef"
// and a 20-byte payload (a test vector of BIP-173).
func otherPrefixAddress() string { return "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw" }

func TestParseReportsEveryMalformedField(t *testing.T) {
	b := readExample(t)
	b = bytes.Replace(b, []byte(exampleAddr1), []byte(strings.Replace(exampleAddr1, "nt3j", "nt3k", 1)), 1)
	b = bytes.Replace(b, []byte(`"power": "5"`), []byte(`"power": 5`), 1)
	b = bytes.Replace(b, []byte(`"base": "1s"`), []byte(`"base": "soon"`), 1)
	b = bytes.Replace(b, []byte(`"max_block_txs": "20000"`), []byte(`"max_block_txs": "many"`), 1)
	b = bytes.Replace(b, []byte(`"chain_id"`), []byte(`"chain": "x", "chain_id"`), 1)
	_, err := Parse(b)
	got := problemsOf(t, err)
	want := []string{
		`document: unknown field "chain"`,
		"consensus_params.max_block_txs: ",
		"consensus_params.timeout_propose: ",
		"validators[3].power: ",
		"balances[1].address: ",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d is %q, want one starting with %q", i, got[i], want[i])
		}
	}
}

func TestParseReportsEveryDuplicateKey(t *testing.T) {
	b := readExample(t)
	b = bytes.Replace(b, []byte(`"name": "alpha"`), []byte(`"name": "alpha", "name": "omega"`), 1)
	b = bytes.Replace(b, []byte(`"timeout_commit": "200ms"`), []byte(`"timeout_commit": "200ms", "Timeout_Commit": "1h"`), 1)
	_, err := Parse(b)
	got := problemsOf(t, err)
	want := []string{`consensus_params: key "Timeout_Commit"`, `validators[0]: key "name" appears twice`}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d is %q, want one starting with %q", i, got[i], want[i])
		}
	}
}

func TestSaveThenLoadKeepsTheDocument(t *testing.T) {
	d := testDoc(t)
	d.Validators[0].Name = `<quoted "name"> & more`
	path := filepath.Join(t.TempDir(), "genesis.json")
	if err := d.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != d.Hash() {
		t.Errorf("hash after load %s, want %s", got.Hash(), d.Hash())
	}
	if !reflect.DeepEqual(got, d) {
		t.Errorf("loaded %+v, saved %+v", got, d)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"name": "<quoted \"name\"> & more"`)) || !bytes.HasSuffix(b, []byte("}\n")) {
		t.Errorf("file is not indented JSON ending in a newline, without HTML escapes:\n%s", b)
	}
}

func TestSaveReplacesAFileAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "genesis.json")
	first := testDoc(t)
	if err := first.Save(path); err != nil {
		t.Fatal(err)
	}
	second := clone(first)
	second.ChainID = "ledgerd-second"
	if err := second.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ChainID != "ledgerd-second" {
		t.Errorf("chain ID %q after the second save", got.ChainID)
	}
	invalid := clone(first)
	invalid.Balances[0].Amount = 0
	err = invalid.Save(path)
	if err == nil || !strings.Contains(err.Error(), "balances[0].amount") {
		t.Fatalf("saving an invalid document: error %v, want one naming balances[0].amount", err)
	}
	if got, err := Load(path); err != nil || got.ChainID != "ledgerd-second" {
		t.Errorf("a refused save changed the file: %v, %v", got, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only genesis.json (no temporary files left)", len(entries))
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.json")
	if _, err := Load(missing); err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"chain_id": ""}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), "load genesis "+bad+": ") {
		t.Errorf("invalid file: error %v does not name the file", err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, bytes.Repeat([]byte(" "), MaxDocBytes+10), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than the limit") {
		t.Errorf("oversized file: error %v", err)
	}
}

// largeDoc has n balances, about the most that fit in MaxDocBytes when n
// is 150,000.
func largeDoc(b testing.TB, n int) []byte {
	d := testDoc(b)
	d.Balances = make([]Balance, n)
	for i := range d.Balances {
		h := crypto.Sum([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		copy(d.Balances[i].Address[:], h[:])
		d.Balances[i].Amount = uint64(i) + 1
	}
	enc, err := marshal(d, "  ")
	if err != nil {
		b.Fatal(err)
	}
	return enc
}

func BenchmarkParse(b *testing.B) {
	for _, n := range []int{10, 150_000} {
		doc := largeDoc(b, n)
		b.Run(fmt.Sprintf("balances=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
