package bench

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

func TestClassify(t *testing.T) {
	rpcErr := func(code int) error { return &client.Error{Code: code, Message: "m"} }
	for _, tc := range []struct {
		name    string
		err     error
		attempt int
		reason  string
		verdict verdict
	}{
		{"answered with the hash", nil, 0, "", admitted},
		{"pool full is retried", rpcErr(api.CodeMempoolFull), 0, "mempool_full", retry},
		{"sender limit is retried", rpcErr(api.CodeSenderLimit), 3, "sender_limit", retry},
		{"nonce gap is retried", rpcErr(api.CodeNonceGap), 0, "nonce_gap", retry},
		{"unavailable node is retried", rpcErr(api.CodeUnavailable), 0, "unavailable", retry},
		{"no answer is retried", &client.TransportError{Tried: 1, Last: errors.New("refused")}, 0, "transport", retry},
		{"timeout is retried", fmt.Errorf("call: %w", context.DeadlineExceeded), 0, "transport", retry},
		{"duplicate means an earlier attempt got in", rpcErr(api.CodeDuplicate), 1, "", admittedEarlier},
		{"nonce too low after a lost answer means it committed", rpcErr(api.CodeNonceTooLow), 2, "", admittedEarlier},
		{"nonce too low at once is a wrong plan", rpcErr(api.CodeNonceTooLow), 0, "nonce_too_low", refusedForGood},
		{"bad signature is final", rpcErr(api.CodeBadSignature), 0, "bad_signature", refusedForGood},
		{"insufficient funds is final", rpcErr(api.CodeInsufficientFunds), 0, "insufficient_funds", refusedForGood},
		{"a wrong hash is final", errors.New("node answered hash x"), 0, "wrong_hash", refusedForGood},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, v := classify(tc.err, tc.attempt)
			if reason != tc.reason || v != tc.verdict {
				t.Fatalf("classify(%v, %d) = %q, %v; want %q, %v", tc.err, tc.attempt, reason, v, tc.reason, tc.verdict)
			}
		})
	}
}

func TestWorkersOwnEachAccountOnceAndSendToOneNode(t *testing.T) {
	endpoints := make([]string, 4)
	for i := range endpoints {
		endpoints[i] = fmt.Sprintf("http://127.0.0.1:%d", 10000+i)
	}
	for _, tc := range []struct {
		accounts, perNode int
		targets           []int
	}{{2000, 32, []int{0, 1, 2, 3}}, {10, 32, []int{0, 1, 2, 3}}, {7, 2, []int{1, 3}}} {
		ws, err := workers(tc.accounts, tc.targets, tc.perNode, endpoints)
		if err != nil {
			t.Fatal(err)
		}
		owner := map[int]*worker{}
		clients := map[*client.Client]bool{}
		for _, w := range ws {
			if len(w.accts) == 0 {
				t.Fatalf("idle worker kept: %+v", w)
			}
			if got := w.c.Endpoints(); len(got) != 1 || got[0] != endpoints[w.node] {
				t.Fatalf("worker for node %d calls %v", w.node, got)
			}
			if clients[w.c] {
				t.Fatal("two workers share a client")
			}
			clients[w.c] = true
			for _, a := range w.accts {
				if owner[a] != nil {
					t.Fatalf("account %d owned by two workers", a)
				}
				owner[a] = w
				if want := tc.targets[a%len(tc.targets)]; w.node != want {
					t.Fatalf("account %d sent to node %d, want %d", a, w.node, want)
				}
			}
		}
		if len(owner) != tc.accounts {
			t.Fatalf("%d of %d accounts have a worker", len(owner), tc.accounts)
		}
		if max := len(tc.targets) * tc.perNode; len(ws) > max {
			t.Fatalf("%d workers, at most %d", len(ws), max)
		}
	}
}

func TestSecondCounter(t *testing.T) {
	c := newSecondCounter(3)
	c.add(0, 1)
	c.add(999_999_999, 2)
	c.add(2_500_000_000, 5)
	c.add(10_000_000_000, 7) // beyond the end: dropped
	c.add(-1, 9)             // before the start: dropped
	for i, want := range []int64{3, 0, 5, 0} {
		if got := c.get(i); got != want {
			t.Errorf("second %d = %d, want %d", i, got, want)
		}
	}
}

// answerServer answers ledger_sendTransaction from a script: each call
// takes the next answer (nil: the transfer's hash), the last one repeating.
func answerServer(t *testing.T, script []*api.Error, hashOf func(param string) string) (*client.Client, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     uint64   `json:"id"`
			Params []string `json:"params"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Params) != 1 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		n := int(calls.Add(1)) - 1
		ans := script[min(n, len(script)-1)]
		out := map[string]any{"jsonrpc": "2.0", "id": req.ID}
		if ans == nil {
			out["result"] = map[string]string{"hash": hashOf(req.Params[0])}
		} else {
			out["error"] = ans
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c, &calls
}

func TestLoaderRetriesTransientRefusalsAndDropsADeadAccount(t *testing.T) {
	p := &plan{txs: make([]transfer, 3), perAcct: 3, byHash: map[crypto.Hash]int32{}}
	byParam := map[string]crypto.Hash{}
	for i := range p.txs {
		p.txs[i].enc = []byte{byte(i), 0xaa}
		p.txs[i].hash = crypto.Sum(p.txs[i].enc)
		byParam[hex.EncodeToString(p.txs[i].enc)] = p.txs[i].hash
	}
	full := &api.Error{Code: api.CodeMempoolFull, Message: "pool full", Data: api.ErrorData{Reason: "mempool_full"}}
	badSig := &api.Error{Code: api.CodeBadSignature, Message: "bad signature"}
	// Transfer 0: refused twice for a full pool, then admitted. Transfer 1:
	// a bad signature, so transfer 2 (the next nonce) is never sent.
	c, calls := answerServer(t, []*api.Error{full, full, nil, badSig}, func(param string) string { return byParam[param].String() })
	slots := make(chan struct{}, 10)
	l := &loader{cfg: &Config{}, plan: p, t0: time.Now(), slots: slots, series: newSecondCounter(60),
		refusals: map[string]int64{}, samples: map[string]string{}}
	ctx := context.Background()
	l.run(ctx, ctx, &worker{c: c, accts: []int{0}})

	if got := calls.Load(); got != 4 {
		t.Errorf("%d calls, want 4 (3 for transfer 0, 1 for transfer 1)", got)
	}
	if p.txs[0].state.Load() != stateAdmitted || p.txs[1].state.Load() != stateAbandoned || p.txs[2].firstTry.Load() != 0 {
		t.Errorf("states %d %d, transfer 2 tried at %d; want admitted, abandoned, never tried",
			p.txs[0].state.Load(), p.txs[1].state.Load(), p.txs[2].firstTry.Load())
	}
	if p.txs[0].sent.Load() <= p.txs[0].firstTry.Load() {
		t.Error("the admitted attempt did not start after the first, refused one")
	}
	if l.admitted.Load() != 1 || l.abandoned.Load() != 1 || l.retries.Load() != 2 || l.firstTries.Load() != 2 {
		t.Errorf("admitted %d, abandoned %d, retries %d, first tries %d; want 1, 1, 2, 2",
			l.admitted.Load(), l.abandoned.Load(), l.retries.Load(), l.firstTries.Load())
	}
	refusals := l.refusalReport()
	if len(refusals) != 2 || refusals[0].Reason != "mempool_full" || refusals[0].Count != 2 ||
		!strings.Contains(refusals[0].Example, "pool full") || refusals[1].Reason != "bad_signature" {
		t.Errorf("refusals %+v", refusals)
	}
	// The admitted transfer holds its in-flight slot until it commits; the
	// abandoned one gave its back.
	if len(slots) != 1 || !p.txs[0].slot.Load() || p.txs[1].slot.Load() {
		t.Errorf("%d slots held (transfer 0 %v, transfer 1 %v), want only transfer 0's", len(slots), p.txs[0].slot.Load(), p.txs[1].slot.Load())
	}
	if l.exhausted.Load() != 1 {
		t.Error("a worker that ran out of transfers was not counted as exhausted")
	}
}
