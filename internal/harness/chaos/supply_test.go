package chaos

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/staking"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// supplyNode answers ledger_getAccount and ledger_stakingPool from maps,
// for the height asked; other heights hold nothing.
type supplyNode struct {
	mu       sync.Mutex
	height   uint64
	balances map[crypto.Address]uint64
	pool     staking.Pool
}

func (n *supplyNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     json.RawMessage   `json:"id"`
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	n.mu.Lock()
	defer n.mu.Unlock()
	var h api.Height
	idx := map[string]int{api.MethodGetAccount: 1, api.MethodStakingPool: 0}[req.Method]
	if len(req.Params) > idx {
		json.Unmarshal(req.Params[idx], &h)
	}
	here := !h.Latest && h.Value == n.height
	var result any
	switch req.Method {
	case api.MethodGetAccount:
		var a crypto.Address
		json.Unmarshal(req.Params[0], &a)
		acc := api.Account{Address: a, Height: api.Uint64(h.Value)}
		if here {
			acc.Balance = api.Uint64(n.balances[a])
		}
		result = acc
	case api.MethodStakingPool:
		p := api.StakingPool{Height: api.Uint64(h.Value)}
		if here {
			p.Bonded, p.Unbonding, p.Burned = api.Uint64(n.pool.Bonded), api.Uint64(n.pool.Unbonding), api.Uint64(n.pool.Burned)
		}
		result = p
	}
	json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": result})
}

// oneNode is a cluster of one node reached through c; checkSupply uses
// nothing else of it.
type oneNode struct {
	cluster
	c *client.Client
}

func (o oneNode) Client(int) *client.Client { return o.c }

// The supply check adds the staking pool to the balances and compares
// with the genesis total supply (balances and genesis stake), at one
// height: a delegation (balance into stake), an unbonding and a slash
// (stake burned) keep it whole, and a token lost from the pool or a
// balance is caught.
func TestSupplyCheckCountsStake(t *testing.T) {
	r, txs, chain := fixture(t, 2, [][]int{{0}, {1}})
	g := r.wl.groups[0]
	sender := g.sender.PubKey().Address()
	valKey := mustKey(t)
	sp := staking.DefaultParams()
	r.doc = &genesis.Doc{ChainID: "chaos", Staking: sp,
		Validators: []ledger.Validator{{PubKey: valKey.PubKey(), Power: 10, Name: "v0"}},
		Balances:   []genesis.Balance{{Address: sender, Amount: 1_000_000}}}
	stake := 10 * sp.PowerUnit
	if r.doc.TotalSupply() != 1_000_000+stake {
		t.Fatalf("genesis total supply %d", r.doc.TotalSupply())
	}
	node := &supplyNode{height: 2}
	srv := httptest.NewServer(node)
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	r.c = oneNode{c: c}
	moved := uint64(0)
	for _, tx := range txs {
		moved += tx.Amount + tx.Fee
	}
	proposer := chain[1].block.Header.Proposer
	for _, tc := range []struct {
		name      string
		balances  map[crypto.Address]uint64
		pool      staking.Pool
		violation bool
	}{
		{"transfers only", map[crypto.Address]uint64{sender: 1_000_000 - moved, g.recipient: moved - 2, proposer: 2}, staking.Pool{Bonded: stake}, false},
		{"a delegation", map[crypto.Address]uint64{sender: 1_000_000 - moved - 500, g.recipient: moved - 2, proposer: 2}, staking.Pool{Bonded: stake + 500}, false},
		{"an unbonding and a slash", map[crypto.Address]uint64{sender: 1_000_000 - moved - 500, g.recipient: moved - 2, proposer: 2},
			staking.Pool{Bonded: stake + 200, Unbonding: 250, Burned: 50}, false},
		{"a token lost from the pool", map[crypto.Address]uint64{sender: 1_000_000 - moved - 500, g.recipient: moved - 2, proposer: 2}, staking.Pool{Bonded: stake + 499}, true},
		{"a token made in a balance", map[crypto.Address]uint64{sender: 1_000_000 - moved + 1, g.recipient: moved - 2, proposer: 2}, staking.Pool{Bonded: stake}, true},
	} {
		node.mu.Lock()
		node.balances, node.pool = tc.balances, tc.pool
		node.mu.Unlock()
		r.rep = &Report{}
		if err := r.checkSupply(t.Context(), 0, chain, 2); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := violations(r, "supply not conserved"); got != tc.violation {
			t.Errorf("%s: violation %v, want %v (genesis %d, final %d; %v)", tc.name, got, tc.violation, r.rep.GenesisSupply, r.rep.FinalSupply, r.rep.Violations)
		}
		if r.rep.GenesisSupply != r.doc.TotalSupply() {
			t.Errorf("%s: report's genesis supply %d, want the total %d", tc.name, r.rep.GenesisSupply, r.doc.TotalSupply())
		}
	}
}
