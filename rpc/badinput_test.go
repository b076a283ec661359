package rpc

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/ledgerd/ledgerd/rpc/api"
)

func rawCall(method string, params string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":%q,"params":%s}`, method, params)
}

func txHex(tx *ledger.Tx) string { return `["` + hex.EncodeToString(tx.Encode()) + `"]` }

// TestBadInputGetsItsDocumentedError sends every kind of bad input and
// checks the HTTP status and JSON-RPC code of each answer, while another
// client keeps calling: bad input must never disturb anyone else.
func TestBadInputGetsItsDocumentedError(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{MaxBodyBytes: 64 << 10, MaxBatchRequests: 5})
	a0, a1 := b.addr(0), b.addr(1)

	committed := b.transfer(0, a1, 10, 0, 0)
	ts.call(t, api.MethodSendTransaction, nil, committed)
	b.commit(t, committed)
	pending := b.transfer(0, a1, 10, 0, 1)
	ts.call(t, api.MethodSendTransaction, nil, pending)

	wrongChain := &ledger.Tx{ChainID: "other-chain", To: a1, Amount: 1, Nonce: 2}
	wrongChain.Sign(b.chain.Accounts[0])
	badSig := b.transfer(0, a1, 1, 0, 2)
	badSig.Sig[0] ^= 1
	gap := b.transfer(0, a1, 1, 0, 5000)
	broke := b.transfer(1, a0, 2_000_000_000, 0, 0)
	zero := b.transfer(2, a0, 0, 0, 0)
	delegation := ledgertest.Delegate(b.chain.Accounts[2], a1, 1, 0, 0)
	strayUnjail := &ledger.Tx{ChainID: ledgertest.ChainID, Kind: ledger.TxUnjail, To: a1}
	strayUnjail.Sign(b.chain.Accounts[2])
	strayObj, _ := json.Marshal(strayUnjail)
	huge := `["` + strings.Repeat("ab", ledger.MaxTxBytes+1) + `"]`
	batchOf := func(n int) string {
		calls := make([]string, n)
		for i := range calls {
			calls[i] = rawCall(api.MethodStatus, "[]")
		}
		return "[" + strings.Join(calls, ",") + "]"
	}

	cases := []struct {
		name       string
		body       string
		ctype      string
		httpStatus int
		code       int
		reason     string
	}{
		{"malformed JSON", `{"jsonrpc":"2.0","id":1,`, "", 200, api.CodeParseError, ""},
		{"not an object", `"hello"`, "", 200, api.CodeInvalidRequest, ""},
		{"wrong version", `{"jsonrpc":"1.0","id":1,"method":"ledger_status"}`, "", 200, api.CodeInvalidRequest, ""},
		{"no method", `{"jsonrpc":"2.0","id":1}`, "", 200, api.CodeInvalidRequest, ""},
		{"method not a string", `{"jsonrpc":"2.0","id":1,"method":5}`, "", 200, api.CodeInvalidRequest, ""},
		{"params a string", `{"jsonrpc":"2.0","id":1,"method":"ledger_status","params":"x"}`, "", 200, api.CodeInvalidRequest, ""},
		{"id an object", `{"jsonrpc":"2.0","id":{},"method":"ledger_status"}`, "", 200, api.CodeInvalidRequest, ""},
		{"unknown method", rawCall("eth_blockNumber", "[]"), "", 200, api.CodeMethodNotFound, ""},
		{"address of wrong type", rawCall(api.MethodGetAccount, "[123]"), "", 200, api.CodeInvalidParams, ""},
		{"address with bad checksum", rawCall(api.MethodGetAccount, `["ldg1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"]`), "", 200, api.CodeInvalidParams, ""},
		{"height of wrong type", rawCall(api.MethodGetBlockByHeight, `[true]`), "", 200, api.CodeInvalidParams, ""},
		{"height not a number", rawCall(api.MethodGetBlockByHeight, `["tall"]`), "", 200, api.CodeInvalidParams, ""},
		{"prove of wrong type", rawCall(api.MethodGetAccount, fmt.Sprintf(`[%q,"latest","yes"]`, a0)), "", 200, api.CodeInvalidParams, ""},
		{"too many params", rawCall(api.MethodStatus, `[1]`), "", 200, api.CodeInvalidParams, ""},
		{"unknown named param", rawCall(api.MethodGetAccount, fmt.Sprintf(`{"address":%q,"colour":"red"}`, a0)), "", 200, api.CodeInvalidParams, ""},
		{"missing required param", rawCall(api.MethodGetAccount, `[]`), "", 200, api.CodeInvalidParams, ""},
		{"bad hash hex", rawCall(api.MethodGetTransaction, `["xyz"]`), "", 200, api.CodeInvalidParams, ""},
		{"bad tx hex", rawCall(api.MethodSendTransaction, `["0xzz"]`), "", 200, api.CodeInvalidParams, ""},
		{"odd-length tx hex", rawCall(api.MethodSendTransaction, `["abc"]`), "", 200, api.CodeInvalidParams, ""},
		{"tx hex that is no tx", rawCall(api.MethodSendTransaction, `["0102030405"]`), "", 200, api.CodeInvalidParams, ""},
		{"tx object missing fields", rawCall(api.MethodSendTransaction, `[{"chain_id":"x"}]`), "", 200, api.CodeInvalidParams, ""},
		{"tx too large", rawCall(api.MethodSendTransaction, huge), "", 200, api.CodeTxTooLarge, "tx_too_large"},
		{"wrong chain ID", rawCall(api.MethodSendTransaction, txHex(wrongChain)), "", 200, api.CodeWrongChain, "wrong_chain"},
		{"bad signature", rawCall(api.MethodSendTransaction, txHex(badSig)), "", 200, api.CodeBadSignature, "bad_signature"},
		{"replayed committed tx", rawCall(api.MethodSendTransaction, txHex(committed)), "", 200, api.CodeNonceTooLow, "nonce_too_low"},
		{"replayed pending tx", rawCall(api.MethodSendTransaction, txHex(pending)), "", 200, api.CodeDuplicate, "duplicate"},
		{"nonce far ahead", rawCall(api.MethodSendTransaction, txHex(gap)), "", 200, api.CodeNonceGap, "nonce_gap"},
		{"insufficient funds", rawCall(api.MethodSendTransaction, txHex(broke)), "", 200, api.CodeInsufficientFunds, "insufficient_funds"},
		{"zero amount", rawCall(api.MethodSendTransaction, txHex(zero)), "", 200, api.CodeTxInvalid, "invalid"},
		{"unjail object naming a recipient", rawCall(api.MethodSendTransaction, "["+string(strayObj)+"]"), "", 200, api.CodeTxInvalid, "invalid"},
		{"tx object of unknown kind", rawCall(api.MethodSendTransaction, `[{"kind":"stake"}]`), "", 200, api.CodeInvalidParams, ""},
		{"delegate object without amount", rawCall(api.MethodSendTransaction, fmt.Sprintf(`[{"kind":"delegate","chain_id":"x","from":"%s","to":%q,"fee":"0","nonce":"0","signature":"%s"}]`,
			delegation.From, a1, delegation.Sig)), "", 200, api.CodeInvalidParams, ""},
		{"bad wait timeout", rawCall(api.MethodSendTransactionAndWait, fmt.Sprintf(`[%q,"soon"]`, hex.EncodeToString(gap.Encode()))), "", 200, api.CodeInvalidParams, ""},
		{"height above the chain", rawCall(api.MethodGetBlockByHeight, `[99]`), "", 200, api.CodeNotFound, ""},
		{"unknown block hash", rawCall(api.MethodGetBlockByHash, `["`+strings.Repeat("00", 32)+`"]`), "", 200, api.CodeNotFound, ""},
		{"list limit too big", rawCall(api.MethodPendingTransactions, `[100000]`), "", 200, api.CodeInvalidParams, ""},
		{"subscribe over HTTP", rawCall(api.MethodSubscribe, `["newHeads"]`), "", 200, api.CodeNeedsWebSocket, ""},
		{"oversized body", rawCall(api.MethodStatus, `["`+strings.Repeat("x", 70<<10)+`"]`), "", 413, api.CodeRequestTooLarge, ""},
		{"oversized batch", batchOf(6), "", 200, api.CodeBatchTooLarge, ""},
		{"empty batch", `[]`, "", 200, api.CodeInvalidRequest, ""},
		{"empty body", ``, "", 200, api.CodeInvalidRequest, ""},
		{"form content type", rawCall(api.MethodStatus, "[]"), "application/x-www-form-urlencoded", 415, api.CodeInvalidRequest, ""},
	}

	// Another client calls throughout; every one of its calls must succeed.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var bystanderErr error
	var bystanderCalls int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			resp, err := http.Post(ts.url, "application/json", strings.NewReader(rawCall(api.MethodStatus, "[]")))
			if err != nil {
				bystanderErr = err
				return
			}
			var r rawResponse
			err = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if err != nil || r.Error != nil {
				bystanderErr = fmt.Errorf("status call failed: %v %+v", err, r.Error)
				return
			}
			bystanderCalls++
		}
	}()

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctype := c.ctype
			if ctype == "" {
				ctype = "application/json"
			}
			resp, err := http.Post(ts.url, ctype, bytes.NewBufferString(c.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.httpStatus {
				t.Errorf("HTTP status %d, want %d", resp.StatusCode, c.httpStatus)
			}
			var r rawResponse
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
				t.Fatalf("answer is not a JSON-RPC response: %v", err)
			}
			if r.errCode() != c.code {
				t.Fatalf("code %d (%+v), want %d", r.errCode(), r.Error, c.code)
			}
			if r.Error.Message == "" {
				t.Error("error without a message")
			}
			if c.reason != "" && r.Error.Data.Reason != c.reason {
				t.Errorf("data.reason %q, want %q", r.Error.Data.Reason, c.reason)
			}
		})
	}
	cancel()
	wg.Wait()
	if bystanderErr != nil || bystanderCalls == 0 {
		t.Fatalf("the bystander client was disturbed: %v after %d calls", bystanderErr, bystanderCalls)
	}
	// Nonce errors tell the wallet where to resume.
	r := ts.callRaw(t, api.MethodSendTransaction, hex.EncodeToString(committed.Encode()))
	if pn := r.Error.Data.PendingNonce; pn == nil || *pn != 2 {
		t.Fatalf("nonce_too_low data.pending_nonce %v, want 2", pn)
	}
}

// TestBatchAnswersEachCall checks that a batch is answered element by
// element, in order, with invalid elements failing alone and
// notifications left unanswered.
func TestBatchAnswersEachCall(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{})
	body := `[
		{"jsonrpc":"2.0","id":1,"method":"ledger_status"},
		{"jsonrpc":"2.0","method":"ledger_status"},
		42,
		{"jsonrpc":"2.0","id":"b","method":"no_such_method"},
		{"jsonrpc":"2.0","id":3,"method":"ledger_mempool","params":[]}
	]`
	status, raw := ts.post(t, body)
	if status != 200 {
		t.Fatalf("HTTP %d", status)
	}
	var rs []rawResponse
	if err := json.Unmarshal(raw, &rs); err != nil {
		t.Fatalf("batch answer %s: %v", raw, err)
	}
	want := []struct {
		id   string
		code int
	}{{"1", 0}, {"null", api.CodeInvalidRequest}, {`"b"`, api.CodeMethodNotFound}, {"3", 0}}
	if len(rs) != len(want) {
		t.Fatalf("%d answers, want %d: %s", len(rs), len(want), raw)
	}
	for i, w := range want {
		if string(rs[i].ID) != w.id || rs[i].errCode() != w.code {
			t.Errorf("answer %d: id %s code %d, want id %s code %d", i, rs[i].ID, rs[i].errCode(), w.id, w.code)
		}
	}
	// A batch of notifications only gets no body at all.
	resp, err := http.Post(ts.url, "application/json", strings.NewReader(`[{"jsonrpc":"2.0","method":"ledger_status"}]`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("notification batch: HTTP %d, want 204", resp.StatusCode)
	}
}

// TestTxParamForms checks that a transaction of every kind is accepted as
// hex, as 0x hex and as a JSON object (as ledger.Tx writes it, and with
// only the fields its kind uses), and decodes to the same transaction.
func TestTxParamForms(t *testing.T) {
	k, op := ledgertest.Key("account", 0), ledgertest.Key("account", 1).PubKey().Address()
	for _, tx := range []*ledger.Tx{
		ledgertest.Transfer(k, op, 5, 1, 3),
		ledgertest.CreateValidator(k, ledgertest.Key("validator", 7).PubKey(), "v7", 5, 1, 3),
		ledgertest.CreateValidator(k, ledgertest.Key("validator", 7).PubKey(), "", 5, 1, 3),
		ledgertest.Delegate(k, op, 5, 1, 3),
		ledgertest.Undelegate(k, op, 5, 1, 3),
		ledgertest.Unjail(k, 1, 3),
	} {
		obj, _ := json.Marshal(tx)
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(obj, &fields); err != nil {
			t.Fatal(err)
		}
		if tx.Kind == ledger.TxCreateValidator || tx.Kind == ledger.TxUnjail {
			delete(fields, "to")
		}
		if tx.Kind == ledger.TxUnjail {
			delete(fields, "amount")
		}
		minimal, _ := json.Marshal(fields)
		for _, form := range []string{
			`"` + hex.EncodeToString(tx.Encode()) + `"`,
			`"0x` + hex.EncodeToString(tx.Encode()) + `"`,
			string(obj),
			string(minimal),
		} {
			var p api.TxParam
			if err := json.Unmarshal([]byte(form), &p); err != nil {
				t.Fatalf("%s: %.60s: %v", tx.Kind, form, err)
			}
			if p.Tx.Hash() != tx.Hash() || p.Tx.Kind != tx.Kind || p.Tx.ValidateBasic(ledgertest.ChainID) != nil {
				t.Fatalf("%s: %.60s decodes to another transaction: %+v", tx.Kind, form, p.Tx)
			}
		}
		// Without a field the kind uses, the object is refused with a
		// message naming what it needs.
		for name := range fields {
			if name == "kind" || name == "moniker" {
				continue
			}
			less := maps.Clone(fields)
			delete(less, name)
			in, _ := json.Marshal(less)
			var p api.TxParam
			err := json.Unmarshal(in, &p)
			if err == nil || !strings.Contains(err.Error(), "needs") || !strings.Contains(err.Error(), name) {
				t.Errorf("%s without %s: err = %v", tx.Kind, name, err)
			}
		}
	}
}
