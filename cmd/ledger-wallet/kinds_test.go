package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// The history names a staking transaction by its kind, from either side,
// and shows no zero address for a kind that names no other account.
func TestHistoryRowOfEveryKind(t *testing.T) {
	me, other := ledgertest.Key("account", 0).PubKey().Address(), ledgertest.Key("account", 1).PubKey().Address()
	cases := []struct {
		tx         api.AccountTx
		dir, party string
	}{
		{api.AccountTx{From: me, To: other}, "sent", other.String()},
		{api.AccountTx{From: other, To: me}, "received", other.String()},
		{api.AccountTx{Kind: ledger.TxDelegate, From: me, To: other}, "delegate", other.String()},
		{api.AccountTx{Kind: ledger.TxDelegate, From: other, To: me}, "delegate (your validator)", other.String()},
		{api.AccountTx{Kind: ledger.TxUndelegate, From: other, To: me}, "undelegate (your validator)", other.String()},
		{api.AccountTx{Kind: ledger.TxDelegate, From: me, To: me}, "delegate", me.String()},
		{api.AccountTx{Kind: ledger.TxCreateValidator, From: me}, "create_validator", "-"},
		{api.AccountTx{Kind: ledger.TxUnjail, From: me}, "unjail", "-"},
	}
	for _, tc := range cases {
		dir, party := historyRow(tc.tx, me)
		if dir != tc.dir || party != tc.party {
			t.Errorf("%s from %s to %s: %q %q, want %q %q", tc.tx.Kind, tc.tx.From, tc.tx.To, dir, party, tc.dir, tc.party)
		}
	}
}

// The tx command prints the fields the kind uses, and its kind unless it
// is a transfer (whose output is unchanged).
func TestPrintTxOfEveryKind(t *testing.T) {
	k := ledgertest.Key("account", 0)
	op := ledgertest.Key("account", 1).PubKey().Address()
	cons := ledgertest.Key("validator", 3).PubKey()
	cases := []struct {
		tx        *ledger.Tx
		want, not []string
	}{
		{ledgertest.Transfer(k, op, 5, 1, 2), []string{"to:      " + op.String(), "amount:  5"}, []string{"kind:"}},
		{ledgertest.CreateValidator(k, cons, "v3", 7, 1, 2), []string{"kind:    create_validator", "cons key: " + cons.String(), `moniker: "v3"`, "self-bond: 7"}, []string{"to:"}},
		{ledgertest.Delegate(k, op, 8, 1, 2), []string{"kind:    delegate", "validator: " + op.String(), "amount:  8"}, nil},
		{ledgertest.Undelegate(k, op, 9, 1, 2), []string{"kind:    undelegate", "validator: " + op.String(), "amount:  9"}, nil},
		{ledgertest.Unjail(k, 1, 2), []string{"kind:    unjail", "fee:     1", "nonce:   2"}, []string{"amount", "to:", "validator"}},
	}
	for _, tc := range cases {
		var b bytes.Buffer
		printTx(&b, tc.tx)
		out := b.String()
		if !strings.Contains(out, "from:    "+k.PubKey().Address().String()) {
			t.Errorf("%s: no sender in\n%s", tc.tx.Kind, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: %q missing from\n%s", tc.tx.Kind, w, out)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(out, n) {
				t.Errorf("%s: %q in\n%s", tc.tx.Kind, n, out)
			}
		}
	}
}
