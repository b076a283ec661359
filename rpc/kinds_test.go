package rpc

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// Account events (and the history they mirror) name the sender and the
// account a transaction names in To: a staking transaction's validator
// operator, never the zero address of a kind that names none, and never
// twice the sender of a delegation to its own validator. The kind shows in
// the JSON, absent for a transfer.
func TestAccountEventsOfStakingKinds(t *testing.T) {
	chain := ledgertest.NewChain(1, 3, 1000)
	k0, k1, k2 := chain.Accounts[0], chain.Accounts[1], chain.Accounts[2]
	a0, a1, a2 := k0.PubKey().Address(), k1.PubKey().Address(), k2.PubKey().Address()
	txs := []*ledger.Tx{
		ledgertest.Transfer(k0, a1, 5, 1, 0),
		ledgertest.Delegate(k0, a2, 6, 1, 1),
		ledgertest.CreateValidator(k0, ledgertest.Key("validator", 5).PubKey(), "v", 7, 1, 2),
		ledgertest.Delegate(k1, a1, 8, 1, 0),
		ledgertest.Undelegate(k1, a2, 9, 1, 1),
		ledgertest.Unjail(k2, 1, 0),
	}
	b := chain.NextBlock(chain.Genesis, txs, nil, 0)
	evs := accountEvents(b, b.TxHashes())
	type ev struct {
		dir  string
		kind ledger.TxKind
	}
	want := map[crypto.Address][]ev{
		a0: {{"sent", ledger.TxTransfer}, {"sent", ledger.TxDelegate}, {"sent", ledger.TxCreateValidator}},
		a1: {{"received", ledger.TxTransfer}, {"sent", ledger.TxDelegate}, {"sent", ledger.TxUndelegate}},
		a2: {{"received", ledger.TxDelegate}, {"received", ledger.TxUndelegate}, {"sent", ledger.TxUnjail}},
	}
	if len(evs) != len(want) {
		t.Fatalf("events for %d addresses, want %d (zero address: %d)", len(evs), len(want), len(evs[crypto.Address{}]))
	}
	for addr, w := range want {
		got := evs[addr]
		if len(got) != len(w) {
			t.Fatalf("%s: %d events, want %d: %+v", addr, len(got), len(w), got)
		}
		for i := range w {
			if got[i].Direction != w[i].dir || got[i].Kind != w[i].kind || got[i].Address != addr {
				t.Errorf("%s event %d: %s %s, want %s %s", addr, i, got[i].Direction, got[i].Kind, w[i].dir, w[i].kind)
			}
		}
	}
	transfer, _ := json.Marshal(evs[a0][0])
	delegation, _ := json.Marshal(evs[a0][1])
	if strings.Contains(string(transfer), `"kind"`) || !strings.Contains(string(delegation), `"kind":"delegate"`) {
		t.Errorf("JSON of a transfer event %s, of a delegation %s", transfer, delegation)
	}
}
