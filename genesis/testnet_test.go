package genesis

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

func testnetSpec(seed string) TestnetSpec {
	return TestnetSpec{
		ChainID: "ledgerd-testnet", Validators: 4, FundedAccounts: 5, Balance: 1_000_000,
		GenesisTime: testTime, Rand: seededRand(seed),
	}
}

func TestGenerateTestnetIsReproducible(t *testing.T) {
	a, err := GenerateTestnet(testnetSpec("seed 1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateTestnet(testnetSpec("seed 1"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Doc.Hash() != b.Doc.Hash() || !reflect.DeepEqual(a, b) {
		t.Error("the same seed gave two different testnets")
	}
	c, err := GenerateTestnet(testnetSpec("seed 2"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Doc.Hash() == a.Doc.Hash() || c.ValidatorKeys[0] == a.ValidatorKeys[0] {
		t.Error("two seeds gave the same testnet")
	}
}

func TestGenerateTestnetKeysMatchTheDoc(t *testing.T) {
	spec := testnetSpec("keys")
	spec.Powers = []uint64{1, 2, 3, 4}
	tn, err := GenerateTestnet(spec)
	if err != nil {
		t.Fatal(err)
	}
	d := tn.Doc
	if len(tn.ValidatorKeys) != 4 || len(d.Validators) != 4 || len(tn.AccountKeys) != 5 || len(d.Balances) != 5 {
		t.Fatalf("got %d/%d validator keys/entries and %d/%d account keys/balances, want 4/4 and 5/5",
			len(tn.ValidatorKeys), len(d.Validators), len(tn.AccountKeys), len(d.Balances))
	}
	msg := []byte("proof of possession")
	for i, k := range tn.ValidatorKeys {
		v := d.Validators[i]
		if !v.PubKey.Verify(msg, k.Sign(msg)) {
			t.Errorf("validator %d: key does not sign for %s", i, v.PubKey)
		}
		if v.Power != spec.Powers[i] || v.Name != "validator-"+string(rune('0'+i)) {
			t.Errorf("validator %d: power %d name %q, want %d and validator-%d", i, v.Power, v.Name, spec.Powers[i], i)
		}
	}
	seen := map[crypto.PubKey]bool{}
	for i, k := range tn.AccountKeys {
		if k.PubKey().Address() != d.Balances[i].Address {
			t.Errorf("account %d: key's address %s, balance funds %s", i, k.PubKey().Address(), d.Balances[i].Address)
		}
		if d.Balances[i].Amount != spec.Balance {
			t.Errorf("account %d: amount %d, want %d", i, d.Balances[i].Amount, spec.Balance)
		}
		seen[k.PubKey()] = true
	}
	for _, k := range tn.ValidatorKeys {
		seen[k.PubKey()] = true
	}
	if len(seen) != 9 {
		t.Errorf("%d distinct keys, want 9", len(seen))
	}
	if d.ChainID != spec.ChainID || d.GenesisTime.Time() != testTime || d.Params != ledger.DefaultConsensusParams() {
		t.Errorf("doc %s at %s with %+v does not follow the spec", d.ChainID, d.GenesisTime.Time(), d.Params)
	}
	st, _, err := d.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	// The supply is the balances and the validator's bonded stake.
	if want := 5*spec.Balance + 10*d.Staking.PowerUnit; st.TotalSupply != want || st.Validators.TotalPower() != 10 {
		t.Errorf("supply %d and voting power %d, want %d and 10", st.TotalSupply, st.Validators.TotalPower(), want)
	}
}

func TestGenerateTestnetNamesValidators(t *testing.T) {
	spec := testnetSpec("names")
	spec.Names = []string{"node0", "node1", "node2", "node3"}
	tn, err := GenerateTestnet(spec)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range tn.Doc.Validators {
		if v.Name != spec.Names[i] {
			t.Errorf("validator %d is named %q, want %q", i, v.Name, spec.Names[i])
		}
	}
}

func TestGenerateTestnetDefaults(t *testing.T) {
	spec := testnetSpec("")
	spec.Rand = nil // crypto/rand
	tn, err := GenerateTestnet(spec)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range tn.Doc.Validators {
		if v.Power != DefaultPower {
			t.Errorf("validator %d: power %d, want %d", i, v.Power, DefaultPower)
		}
	}
	params := ledger.DefaultConsensusParams()
	params.TimeoutCommit = ledger.Duration(time.Second)
	spec.Params = &params
	tn, err = GenerateTestnet(spec)
	if err != nil {
		t.Fatal(err)
	}
	if tn.Doc.Params != params {
		t.Errorf("params %+v, want %+v", tn.Doc.Params, params)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }

func TestGenerateTestnetRejectsBadSpecs(t *testing.T) {
	badParams := ledger.DefaultConsensusParams()
	badParams.MaxBlockTxs = 0
	for _, tc := range []struct {
		name   string
		change func(s *TestnetSpec)
		want   string
	}{
		{"no validators", func(s *TestnetSpec) { s.Validators = 0 }, "spec.Validators is 0"},
		{"too many validators", func(s *TestnetSpec) { s.Validators = ledger.MaxValidators + 1 }, "spec.Validators is 1001"},
		{"powers for too few validators", func(s *TestnetSpec) { s.Powers = []uint64{1, 2} }, "spec.Powers has 2 entries for 4 validators"},
		{"a zero power", func(s *TestnetSpec) { s.Powers = []uint64{1, 0, 1, 1} }, "validators[1].power: zero"},
		{"names for too few validators", func(s *TestnetSpec) { s.Names = []string{"a"} }, "spec.Names has 1 entries for 4 validators"},
		{"a name too long", func(s *TestnetSpec) {
			s.Names = []string{"a", strings.Repeat("b", ledger.MaxValidatorNameLen+1), "c", "d"}
		}, "spec.Names[1]"},
		{"no accounts", func(s *TestnetSpec) { s.FundedAccounts = 0 }, "spec.FundedAccounts is 0"},
		{"too many accounts", func(s *TestnetSpec) { s.FundedAccounts = MaxTestnetAccounts + 1 }, "spec.FundedAccounts is 100001"},
		{"zero balance", func(s *TestnetSpec) { s.Balance = 0 }, "spec.Balance is zero"},
		{"supply overflows", func(s *TestnetSpec) { s.Balance = 1 << 63 }, "spec.Balance 9223372036854775808 for 5 accounts"},
		{"no genesis time", func(s *TestnetSpec) { s.GenesisTime = time.Time{} }, "spec.GenesisTime is not set"},
		{"genesis time before 1970", func(s *TestnetSpec) {
			s.GenesisTime = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
		}, "spec.GenesisTime: 1960-01-01T00:00:00Z is outside the range"},
		{"bad chain ID", func(s *TestnetSpec) { s.ChainID = "" }, "spec.ChainID: chain ID is empty"},
		{"bad params", func(s *TestnetSpec) { s.Params = &badParams }, "consensus_params: max_block_txs"},
		{"failing random source", func(s *TestnetSpec) { s.Rand = failingReader{} }, "validator 0: generate ed25519 key"},
		{"short random source", func(s *TestnetSpec) { s.Rand = io.LimitReader(seededRand("short"), 100) }, "validator 3: generate ed25519 key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := testnetSpec(tc.name)
			tc.change(&spec)
			tn, err := GenerateTestnet(spec)
			if err == nil {
				t.Fatalf("accepted, doc hash %s", tn.Doc.Hash())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestDevDocIsAValidSingleValidatorChain(t *testing.T) {
	val := key(1)
	dev := key(2).Address()
	d := DevDoc("ledgerd-dev", val, dev, 1e12, testTime)
	st, accounts, err := d.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	if st.Validators.Size() != 1 || st.Validators.Get(0).PubKey != val || d.Validators[0].Name != "dev" {
		t.Errorf("validators %+v, want only %s named dev", d.Validators, val)
	}
	stake := DefaultPower * d.Staking.PowerUnit
	if len(accounts) != 1 || accounts[0].Address != dev || accounts[0].Account.Balance != 1e12 || st.TotalSupply != 1e12+stake {
		t.Errorf("accounts %+v with supply %d, want %s holding 1e12 and %d bonded", accounts, st.TotalSupply, dev, stake)
	}
	if st.ChainID != "ledgerd-dev" || st.GenesisTime.Time() != testTime || st.Params != ledger.DefaultConsensusParams() {
		t.Errorf("state %+v does not follow the arguments", st)
	}
}
