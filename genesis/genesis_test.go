package genesis

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/staking"
)

var testTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// seededRand is a deterministic key source for seed.
func seededRand(seed string) *rand.ChaCha8 {
	var s [32]byte
	copy(s[:], seed)
	return rand.NewChaCha8(s)
}

// testDoc is a valid document with three validators and three accounts.
func testDoc(t testing.TB) *Doc {
	t.Helper()
	tn, err := GenerateTestnet(TestnetSpec{
		ChainID: "ledgerd-test", Validators: 3, FundedAccounts: 3, Balance: 1000,
		GenesisTime: testTime, Rand: seededRand("testDoc"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tn.Doc
}

// clone copies d deeply enough for a test to change any field.
func clone(d *Doc) *Doc {
	c := *d
	c.Validators = slices.Clone(d.Validators)
	c.Balances = slices.Clone(d.Balances)
	return &c
}

// problemsOf returns the problems of an *InvalidError inside err.
func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not an *InvalidError", err, err)
	}
	var out []string
	for _, p := range ie.Problems {
		out = append(out, p.Error())
	}
	return out
}

func key(i int) crypto.PubKey {
	seed := crypto.Sum([]byte{byte(i), byte(i >> 8)})
	k, err := crypto.PrivKeyFromSeed(seed[:])
	if err != nil {
		panic(err)
	}
	return k.PubKey()
}

func TestValidateAcceptsGeneratedDoc(t *testing.T) {
	if err := testDoc(t).Validate(); err != nil {
		t.Fatal(err)
	}
}

// Every check reports exactly one problem, starting with the field that
// holds it, so that a person knows what to fix.
func TestValidateNamesTheFieldOfEachProblem(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(d *Doc)
		want   []string // the problem starts with want[0] and contains the rest
	}{
		{"empty chain ID", func(d *Doc) { d.ChainID = "" }, []string{"chain_id: ", "empty"}},
		{"chain ID with a space", func(d *Doc) { d.ChainID = "my chain" }, []string{"chain_id: ", "printable ASCII"}},
		{"chain ID too long", func(d *Doc) { d.ChainID = strings.Repeat("c", 51) }, []string{"chain_id: ", "at most 50"}},
		{"genesis time unset", func(d *Doc) { d.GenesisTime = 0 }, []string{"genesis_time: ", "not set"}},
		{"genesis time before 1970", func(d *Doc) { d.GenesisTime = -1 }, []string{"genesis_time: ", "before 1970"}},
		{"block size below the minimum", func(d *Doc) { d.Params.MaxBlockBytes = 10 }, []string{"consensus_params: ", "max_block_bytes"}},
		{"zero propose timeout", func(d *Doc) { d.Params.TimeoutPropose.Base = 0 }, []string{"consensus_params: ", "timeout_propose"}},
		{"no validators", func(d *Doc) { d.Validators = nil }, []string{"validators: ", "at least one"}},
		{"too many validators", func(d *Doc) {
			d.Validators = make([]ledger.Validator, ledger.MaxValidators+1)
		}, []string{"validators: ", "1001 given", "at most 1000"}},
		{"validator without a key", func(d *Doc) { d.Validators[1].PubKey = crypto.PubKey{} }, []string{"validators[1].pub_key: ", "missing"}},
		{"duplicate validator", func(d *Doc) {
			d.Validators[2].PubKey = d.Validators[0].PubKey
		}, []string{"validators[2].pub_key: ", "also validators[0]"}},
		{"zero power", func(d *Doc) { d.Validators[1].Power = 0 }, []string{"validators[1].power: ", "zero"}},
		{"power above the limit", func(d *Doc) {
			d.Validators[0].Power = ledger.MaxTotalVotingPower + 1
		}, []string{"validators[0].power: ", "above the limit"}},
		{"total power above the limit", func(d *Doc) {
			d.Validators[0].Power = ledger.MaxTotalVotingPower
			d.Validators[1].Power = 1
		}, []string{"validators[1].power: ", "total voting power"}},
		{"name too long", func(d *Doc) { d.Validators[0].Name = strings.Repeat("n", 65) }, []string{"validators[0].name: ", "65 bytes"}},
		{"name with a control character", func(d *Doc) { d.Validators[2].Name = "a\nb" }, []string{"validators[2].name: ", "control character"}},
		{"name not UTF-8", func(d *Doc) { d.Validators[0].Name = "\xff" }, []string{"validators[0].name: ", "UTF-8"}},
		{"no balances", func(d *Doc) { d.Balances = nil }, []string{"balances: ", "fund at least one account"}},
		{"zero address", func(d *Doc) { d.Balances[0].Address = crypto.Address{} }, []string{"balances[0].address: ", "zero address"}},
		{"duplicate balance address", func(d *Doc) {
			d.Balances[2].Address = d.Balances[0].Address
		}, []string{"balances[2].address: ", "already funded by balances[0]"}},
		{"zero amount", func(d *Doc) { d.Balances[1].Amount = 0 }, []string{"balances[1].amount: ", "zero"}},
		{"total supply overflows", func(d *Doc) {
			d.Balances[1].Amount = math.MaxUint64 - 1000
		}, []string{"balances[2].amount: ", "total supply"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := clone(testDoc(t))
			tc.change(d)
			got := problemsOf(t, d.Validate())
			if len(got) != 1 {
				t.Fatalf("got %d problems, want 1:\n%s", len(got), strings.Join(got, "\n"))
			}
			t.Log(got[0])
			if !strings.HasPrefix(got[0], tc.want[0]) {
				t.Errorf("problem %q does not start with the field %q", got[0], tc.want[0])
			}
			for _, w := range tc.want[1:] {
				if !strings.Contains(got[0], w) {
					t.Errorf("problem %q does not say %q", got[0], w)
				}
			}
		})
	}
}

func TestValidateAcceptsValuesAtTheLimits(t *testing.T) {
	d := testDoc(t)
	// The most voting power there can be, at the smallest power unit,
	// bonds MaxUint64-15 tokens; balances of 15 fill the supply.
	d.Staking.PowerUnit = staking.MinPowerUnit
	d.Validators[0].Power = ledger.MaxTotalVotingPower - 2
	d.Validators[1].Power = 1
	d.Validators[2].Power = 1
	d.Validators[0].Name = strings.Repeat("é", ledger.MaxValidatorNameLen/2)
	d.Balances[0].Amount = 13
	d.Balances[1].Amount = 1
	d.Balances[2].Amount = 1
	d.ChainID = strings.Repeat("c", crypto.MaxChainIDLen)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	st, _, err := d.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	if st.TotalSupply != math.MaxUint64 {
		t.Errorf("total supply %d, want %d", st.TotalSupply, uint64(math.MaxUint64))
	}
}

func TestValidateAcceptsTheMostValidators(t *testing.T) {
	d := testDoc(t)
	d.Validators = make([]ledger.Validator, ledger.MaxValidators)
	d.Staking.MaxValidators = ledger.MaxValidators
	for i := range d.Validators {
		d.Validators[i] = ledger.Validator{PubKey: key(i), Power: 1}
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateReportsAllProblemsInDocumentOrder(t *testing.T) {
	d := clone(testDoc(t))
	d.Balances[2].Address = d.Balances[0].Address
	d.Balances[1].Amount = 0
	d.Validators[1].Power = 0
	d.Params.MaxBlockTxs = 0
	d.ChainID = ""
	err := d.Validate()
	got := problemsOf(t, err)
	want := []string{"chain_id: ", "consensus_params: ", "validators[1].power: ", "balances[1].amount: ", "balances[2].address: "}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d is %q, want one starting with %q", i, got[i], want[i])
		}
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "5 problems:\n  chain_id: ") {
		t.Errorf("message does not list the problems, one per line:\n%s", msg)
	}
	if again := d.Validate().Error(); again != err.Error() {
		t.Errorf("second validation reports differently:\n%s\nthen\n%s", err, again)
	}
}

func TestValidateBoundsTheProblemsListed(t *testing.T) {
	d := testDoc(t)
	d.Balances = make([]Balance, 200)
	for i := range d.Balances {
		d.Balances[i].Address = key(i).Address()
	}
	var ie *InvalidError
	if !errors.As(d.Validate(), &ie) {
		t.Fatal("zero amounts accepted")
	}
	if len(ie.Problems) != maxProblems || !ie.Truncated {
		t.Errorf("%d problems listed, truncated %v; want %d and true", len(ie.Problems), ie.Truncated, maxProblems)
	}
	if msg := ie.Error(); !strings.HasPrefix(msg, "50 problems, and maybe more (the search stops at 50):\n  balances[0].amount: zero") {
		t.Errorf("message does not say the list is cut short:\n%s", msg)
	}
}

func TestHashIgnoresFormattingAndEntryOrder(t *testing.T) {
	d := testDoc(t)
	want := d.Hash()
	compact, err := marshal(d, "")
	if err != nil {
		t.Fatal(err)
	}
	indented, err := marshal(d, "\t")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"compact": compact, "indented": indented} {
		p, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Hash(); got != want {
			t.Errorf("%s: hash %s, want %s", name, got, want)
		}
	}
	r := clone(d)
	slices.Reverse(r.Validators)
	slices.Reverse(r.Balances)
	if got := r.Hash(); got != want {
		t.Errorf("reordered entries: hash %s, want %s", got, want)
	}
}

func TestHashChangesWithEveryField(t *testing.T) {
	base := testDoc(t)
	for _, tc := range []struct {
		name   string
		change func(d *Doc)
	}{
		{"chain ID", func(d *Doc) { d.ChainID += "x" }},
		{"genesis time", func(d *Doc) { d.GenesisTime++ }},
		{"max block bytes", func(d *Doc) { d.Params.MaxBlockBytes++ }},
		{"max block txs", func(d *Doc) { d.Params.MaxBlockTxs++ }},
		{"max evidence", func(d *Doc) { d.Params.MaxEvidence++ }},
		{"propose timeout", func(d *Doc) { d.Params.TimeoutPropose.Base++ }},
		{"prevote timeout delta", func(d *Doc) { d.Params.TimeoutPrevote.Delta++ }},
		{"precommit timeout", func(d *Doc) { d.Params.TimeoutPrecommit.Base++ }},
		{"commit timeout", func(d *Doc) { d.Params.TimeoutCommit++ }},
		{"validator key", func(d *Doc) { d.Validators[0].PubKey = key(99) }},
		{"validator power", func(d *Doc) { d.Validators[1].Power++ }},
		{"validator name", func(d *Doc) { d.Validators[2].Name = "renamed" }},
		{"one more validator", func(d *Doc) { d.Validators = append(d.Validators, ledger.Validator{PubKey: key(99), Power: 1}) }},
		{"balance address", func(d *Doc) { d.Balances[0].Address = key(99).Address() }},
		{"balance amount", func(d *Doc) { d.Balances[1].Amount++ }},
		{"one less balance", func(d *Doc) { d.Balances = d.Balances[1:] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := clone(base)
			tc.change(d)
			if d.Hash() == base.Hash() {
				t.Error("hash did not change")
			}
		})
	}
}

func TestInitialStateHoldsTheGenesis(t *testing.T) {
	d := testDoc(t)
	d.Balances[0].Amount, d.Balances[1].Amount, d.Balances[2].Amount = 7, 1<<40, 12345
	st, accounts, err := d.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	var stake uint64
	for _, v := range d.Validators {
		stake += v.Power * d.Staking.PowerUnit
	}
	if want := uint64(7+1<<40+12345) + stake; st.TotalSupply != want {
		t.Errorf("total supply %d, want %d", st.TotalSupply, want)
	}
	sum := stake
	for _, a := range accounts {
		sum += a.Account.Balance
	}
	if sum != st.TotalSupply {
		t.Errorf("accounts hold %d, total supply is %d", sum, st.TotalSupply)
	}
	if !slices.IsSortedFunc(accounts, func(a, b ledger.AccountUpdate) int { return bytes.Compare(a.Address[:], b.Address[:]) }) {
		t.Error("accounts are not sorted by address")
	}
	if len(accounts) != len(d.Balances) {
		t.Fatalf("%d accounts, want %d", len(accounts), len(d.Balances))
	}
	for _, b := range d.Balances {
		i := slices.IndexFunc(accounts, func(a ledger.AccountUpdate) bool { return a.Address == b.Address })
		if i < 0 || accounts[i].Account != (ledger.Account{Balance: b.Amount}) {
			t.Errorf("balance %s %d is not an account with nonce 0", b.Address, b.Amount)
		}
	}
	vs, err := d.ValidatorSet()
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case st.ChainID != d.ChainID:
		t.Errorf("chain ID %q, want %q", st.ChainID, d.ChainID)
	case st.GenesisTime != d.GenesisTime:
		t.Errorf("genesis time %v, want %v", st.GenesisTime, d.GenesisTime)
	case st.Height != 0 || !st.LastBlockHash.IsZero() || st.LastBlockTime != 0 || !st.AppHash.IsZero():
		t.Errorf("state %+v is not before the first block", st)
	case st.Params != d.Params:
		t.Errorf("params %+v, want %+v", st.Params, d.Params)
	case st.Validators.Hash() != vs.Hash() || st.Validators.Size() != len(d.Validators):
		t.Error("validator set differs from the document's")
	}
}

func TestInitialStateRejectsInvalidDoc(t *testing.T) {
	d := clone(testDoc(t))
	d.Balances[1].Amount = 0
	if _, _, err := d.InitialState(); err == nil || !strings.Contains(err.Error(), "balances[1].amount") {
		t.Fatalf("error %v does not name the zero amount", err)
	}
}
