package chaos

import (
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
)

// The final checks run on a synthetic chain here: each is shown to catch
// the fault it exists for, so a passing run means something.

func mustKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	k, err := crypto.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fixture is a runner holding one group whose sender signed txs, and a
// chain of one block per entry of blocks (indexes into txs).
func fixture(t *testing.T, ntx int, blocks [][]int) (*runner, []*ledger.Tx, []chainEntry) {
	t.Helper()
	g := group{sender: mustKey(t), recipient: recipientOf(1, 0)}
	w := &workload{groups: []group{g}}
	var txs []*ledger.Tx
	for n := 0; n < ntx; n++ {
		tx := &ledger.Tx{ChainID: "chaos", To: g.recipient, Amount: 5, Fee: 1, Nonce: uint64(n)}
		tx.Sign(g.sender)
		txs = append(txs, tx)
		w.signed = append(w.signed, tx)
	}
	chain := make([]chainEntry, len(blocks)+1)
	for h, idx := range blocks {
		b := &ledger.Block{Header: ledger.Header{ChainID: "chaos", Height: uint64(h + 1)}}
		for _, i := range idx {
			b.Txs = append(b.Txs, txs[i])
		}
		chain[h+1] = chainEntry{hash: b.Hash(), block: b}
	}
	r := &runner{rep: &Report{}, hist: NewHistory(), wl: w, mon: &monitor{}}
	return r, txs, chain
}

func ack(r *runner, tx *ledger.Tx, height uint64) {
	r.hist.Add(Op{Kind: OpTransfer, TxHash: tx.Hash(), Nonce: tx.Nonce, Amount: tx.Amount, Fee: tx.Fee, Call: 1, Return: 2, Height: height})
}

func violations(r *runner, want string) bool {
	for _, v := range r.rep.Violations {
		if strings.Contains(v, want) {
			return true
		}
	}
	return false
}

func TestCheckTransfers(t *testing.T) {
	t.Run("all acknowledged transfers in the chain once", func(t *testing.T) {
		r, txs, chain := fixture(t, 3, [][]int{{0}, {1, 2}})
		ack(r, txs[0], 1)
		ack(r, txs[1], 2)
		r.hist.Add(Op{Kind: OpTransfer, TxHash: txs[2].Hash(), Nonce: 2, Call: 3, Return: Pending})
		r.checkTransfers(chain)
		st := r.rep.Transfers
		if len(r.rep.Violations) != 0 || st.Acknowledged != 2 || st.Unacknowledged != 1 || st.CommittedUnseen != 1 {
			t.Fatalf("stats %+v, violations %q", st, r.rep.Violations)
		}
	})
	t.Run("a lost transfer", func(t *testing.T) {
		r, txs, chain := fixture(t, 2, [][]int{{0}})
		ack(r, txs[0], 1)
		ack(r, txs[1], 2)
		r.checkTransfers(chain)
		if r.rep.Transfers.Lost != 1 || !violations(r, "is not in the chain") {
			t.Fatalf("lost %d, violations %q", r.rep.Transfers.Lost, r.rep.Violations)
		}
	})
	t.Run("a transfer committed twice", func(t *testing.T) {
		r, txs, chain := fixture(t, 1, [][]int{{0}, {0}})
		ack(r, txs[0], 1)
		r.checkTransfers(chain)
		if r.rep.Transfers.Duplicated != 1 || !violations(r, "in the chain 2 times") || !violations(r, "used nonce 0 twice") {
			t.Fatalf("duplicated %d, violations %q", r.rep.Transfers.Duplicated, r.rep.Violations)
		}
	})
	t.Run("acknowledged at another height", func(t *testing.T) {
		r, txs, chain := fixture(t, 1, [][]int{{}, {0}})
		ack(r, txs[0], 1)
		r.checkTransfers(chain)
		if !violations(r, "the chain has it at 2") {
			t.Fatalf("violations %q", r.rep.Violations)
		}
	})
}

func TestCheckForks(t *testing.T) {
	r, _, chain := fixture(t, 0, [][]int{{}, {}, {}})
	same := append([]chainEntry(nil), chain...)
	r.checkForks([][]chainEntry{chain, same}, 0)
	if r.rep.Forks != 0 || len(r.rep.Violations) != 0 {
		t.Fatalf("forks %d, violations %q", r.rep.Forks, r.rep.Violations)
	}
	other := append([]chainEntry(nil), chain...)
	other[2].app = crypto.Sum([]byte("another state"))
	r.twinChain = map[uint64][2]crypto.Hash{3: {crypto.Sum([]byte("another block")), chain[3].app}}
	r.checkForks([][]chainEntry{chain, same, other}, 0)
	if r.rep.Forks != 2 || !violations(r, "fork at height 2") || !violations(r, "the twin had block") {
		t.Fatalf("forks %d, violations %q", r.rep.Forks, r.rep.Violations)
	}
}

func TestCheckEvidence(t *testing.T) {
	keys := []crypto.PrivKey{mustKey(t), mustKey(t), mustKey(t), mustKey(t)}
	doc := &genesis.Doc{}
	for _, k := range keys {
		doc.Validators = append(doc.Validators, ledger.Validator{PubKey: k.PubKey(), Power: 10})
	}
	evidence := func(v, height uint64) *ledger.Evidence {
		a := ledger.Vote{Type: ledger.Prevote, Height: height, Validator: keys[v].PubKey().Address(), BlockID: crypto.Sum([]byte("a"))}
		b := a
		b.BlockID = crypto.Sum([]byte("b"))
		return ledger.NewEvidence(&a, &b)
	}
	chainWith := func(evs ...*ledger.Evidence) []chainEntry {
		return []chainEntry{{}, {block: &ledger.Block{Evidence: evs}}}
	}
	for _, tc := range []struct {
		name  string
		chain []chainEntry
		want  string // a violation, or "" for none
	}{
		{"the twin's equivocation caught", chainWith(evidence(2, 15)), ""},
		{"the twin's equivocation not caught", chainWith(), "no evidence of its equivocation"},
		{"another validator equivocated", chainWith(evidence(2, 15), evidence(1, 15)), "a double sign"},
		{"the twin's key equivocated outside its window", chainWith(evidence(2, 15), evidence(2, 40)), "a double sign"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &runner{rep: &Report{}, doc: doc, twins: []twinWindow{{Of: 2, From: 10, To: 20}}}
			r.checkEvidence(tc.chain)
			if tc.want == "" && len(r.rep.Violations) > 0 || tc.want != "" && !violations(r, tc.want) {
				t.Fatalf("violations %q, want %q", r.rep.Violations, tc.want)
			}
		})
	}
}
