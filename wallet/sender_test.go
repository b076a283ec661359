package wallet

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// fakeNode answers ledger_getAccount and ledger_sendTransaction like a
// node whose mempool accepts exactly the next nonce.
type fakeNode struct {
	mu      sync.Mutex
	next    uint64 // the pending nonce
	got     []uint64
	syncs   int
	pooled  map[crypto.Hash]bool
	dropOne bool // refuse the next send with a transport-level 503
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     json.RawMessage   `json:"id"`
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	defer f.mu.Unlock()
	answer := func(result any, e *api.Error) {
		m := map[string]any{"jsonrpc": "2.0", "id": req.ID}
		if e != nil {
			m["error"] = e
		} else {
			m["result"] = result
		}
		json.NewEncoder(w).Encode(m)
	}
	switch req.Method {
	case api.MethodGetAccount:
		f.syncs++
		answer(api.Account{Nonce: 0, PendingNonce: api.Uint64(f.next).Ptr()}, nil)
	case api.MethodSendTransaction:
		if f.dropOne {
			f.dropOne = false
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var p api.TxParam
		json.Unmarshal(req.Params[0], &p)
		h := p.Tx.Hash()
		pn := api.Uint64(f.next).Ptr()
		switch {
		case f.pooled[h]:
			answer(nil, &api.Error{Code: api.CodeDuplicate, Message: "dup", Data: api.ErrorData{Reason: "duplicate", PendingNonce: pn}})
		case p.Tx.Nonce < f.next:
			answer(nil, &api.Error{Code: api.CodeNonceTooLow, Message: "low", Data: api.ErrorData{Reason: "nonce_too_low", PendingNonce: pn}})
		case p.Tx.Nonce > f.next:
			answer(nil, &api.Error{Code: api.CodeNonceGap, Message: "gap", Data: api.ErrorData{Reason: "nonce_gap", PendingNonce: pn}})
		default:
			f.pooled[h] = true
			f.got = append(f.got, p.Tx.Nonce)
			f.next++
			answer(api.SendResult{Hash: h}, nil)
		}
	case api.MethodGetTransaction:
		answer(api.Transaction{Status: api.TxUnknown}, nil)
	default:
		answer(nil, &api.Error{Code: api.CodeMethodNotFound, Message: "no"})
	}
}

// TestSenderNumbersTransfersAndResyncs sends transfers in a row, has
// another wallet take nonces behind its back, and checks that it never
// sends a duplicate nonce, re-syncs from the node's answer, and asks the
// node again after an ambiguous failure.
func TestSenderNumbersTransfersAndResyncs(t *testing.T) {
	f := &fakeNode{next: 7, pooled: map[crypto.Hash]bool{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := crypto.GenerateKey(nil)
	s := NewSender(c, key, "chain")
	ctx := context.Background()
	to := crypto.Address{1}
	send := func() *ledger.Tx {
		t.Helper()
		tx, err := s.Send(ctx, to, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	for i := 0; i < 5; i++ {
		if tx := send(); tx.Nonce != uint64(7+i) {
			t.Fatalf("transfer %d: nonce %d, want %d", i, tx.Nonce, 7+i)
		}
	}
	if f.syncs != 1 {
		t.Fatalf("asked the node %d times for the nonce, want once", f.syncs)
	}
	// Another wallet with the same key sends two transfers.
	f.mu.Lock()
	f.next += 2
	f.mu.Unlock()
	if tx := send(); tx.Nonce != 14 {
		t.Fatalf("after another wallet: nonce %d, want 14", tx.Nonce)
	}
	// An answer lost in transit: the next send asks the node again.
	f.mu.Lock()
	f.dropOne = true
	f.mu.Unlock()
	if _, err := s.Send(ctx, to, 1, 0); err == nil {
		t.Fatal("send through a failing node succeeded")
	}
	if tx := send(); tx.Nonce != 15 || f.syncs != 2 {
		t.Fatalf("after a lost answer: nonce %d (syncs %d), want 15 after a re-sync", tx.Nonce, f.syncs)
	}
	seen := map[uint64]bool{}
	for _, n := range f.got {
		if seen[n] {
			t.Fatalf("nonce %d admitted twice", n)
		}
		seen[n] = true
	}
}

// SendTx numbers transactions of any kind in the same sequence as
// transfers, keeping the fields its kind uses and signing them.
func TestSenderSendsStakingKinds(t *testing.T) {
	f := &fakeNode{next: 3, pooled: map[crypto.Hash]bool{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := crypto.GenerateKey(nil)
	cons, _ := crypto.GenerateKey(nil)
	s := NewSender(c, key, "chain")
	ctx := context.Background()
	tmpls := []ledger.Tx{
		{Kind: ledger.TxCreateValidator, ConsKey: cons.PubKey(), Moniker: "m", Amount: 5000, Fee: 2},
		{To: crypto.Address{1}, Amount: 1, Fee: 1},
		{Kind: ledger.TxDelegate, To: key.PubKey().Address(), Amount: 10, Fee: 1},
		{Kind: ledger.TxUndelegate, To: key.PubKey().Address(), Amount: 10, Fee: 1},
		{Kind: ledger.TxUnjail, Fee: 1},
	}
	for i, tmpl := range tmpls {
		tx, err := s.SendTx(ctx, tmpl)
		if err != nil {
			t.Fatalf("%s: %v", tmpl.Kind, err)
		}
		want := tmpl
		want.ChainID, want.Nonce, want.From, want.Sig = "chain", uint64(3+i), tx.From, tx.Sig
		if *tx != want || tx.Sender() != s.Address() || tx.VerifySig() != nil || tx.ValidateBasic("chain") != nil {
			t.Fatalf("%s: sent %+v, want %+v signed by the sender", tmpl.Kind, *tx, want)
		}
	}
}
