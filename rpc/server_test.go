package rpc

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/mempool"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

func getHealth(t *testing.T, ts *testServer) (int, api.Health) {
	t.Helper()
	resp, err := http.Get(ts.url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h api.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, h
}

// TestHealth answers 200 only when caught up with peers, a chain whose
// only validator is this node counting as healthy alone.
func TestHealth(t *testing.T) {
	t.Run("single validator alone", func(t *testing.T) {
		b := newTestBackend(t, 1)
		ts := startServer(t, b, Config{})
		if code, h := getHealth(t, ts); code != 200 || !h.Healthy || !h.SingleValidator {
			t.Fatalf("HTTP %d %+v, want 200 healthy", code, h)
		}
		b.setStatus(func(s *NodeStatus) { s.CatchingUp = true })
		if code, h := getHealth(t, ts); code != 503 || h.Healthy || len(h.Problems) != 1 {
			t.Fatalf("catching up: HTTP %d %+v, want 503", code, h)
		}
	})
	t.Run("network without peers", func(t *testing.T) {
		b := newTestBackend(t, 4)
		ts := startServer(t, b, Config{})
		if code, h := getHealth(t, ts); code != 503 || h.SingleValidator || !strings.Contains(strings.Join(h.Problems, ";"), "no peers") {
			t.Fatalf("HTTP %d %+v, want 503 for no peers", code, h)
		}
		b.mu.Lock()
		b.peers = []api.Peer{{ID: "p1"}}
		b.mu.Unlock()
		if code, h := getHealth(t, ts); code != 200 || h.Peers != 1 {
			t.Fatalf("HTTP %d %+v, want 200 with a peer", code, h)
		}
	})
}

// TestMetricsCountRequestsByMethodAndOutcome checks /metrics serves the
// Prometheus text format with the RPC counters, and that unknown method
// names collapse into one label.
func TestMetricsCountRequestsByMethodAndOutcome(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{})
	ts.callRaw(t, api.MethodStatus)
	ts.callRaw(t, api.MethodGetAccount, 5)
	ts.callRaw(t, "made_up_1")
	ts.callRaw(t, "made_up_2")
	resp, err := http.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`ledgerd_rpc_requests_total{method="ledger_status",outcome="ok"} 1`,
		`ledgerd_rpc_requests_total{method="ledger_getAccount",outcome="invalid_params"} 1`,
		`ledgerd_rpc_requests_total{method="unknown",outcome="method_not_found"} 2`,
		`ledgerd_rpc_request_seconds_bucket{method="ledger_status"`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(body), "made_up") {
		t.Error("/metrics has a label per unknown method name")
	}
}

// TestCORS is off by default and answers only configured origins.
func TestCORS(t *testing.T) {
	b := newTestBackend(t, 1)
	preflight := func(ts *testServer, origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, ts.url, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	off := startServer(t, b, Config{})
	if r := preflight(off, "https://evil.example"); r.StatusCode != http.StatusForbidden || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS off: preflight HTTP %d, allow-origin %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}
	on := startServer(t, b, Config{CORSAllowedOrigins: []string{"https://app.example"}})
	if r := preflight(on, "https://app.example"); r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("allowed origin: HTTP %d, allow-origin %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}
	if r := preflight(on, "https://other.example"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("other origin: HTTP %d", r.StatusCode)
	}
}

// TestServeReturnsOnlyAfterEveryConnectionEnds stops a server that holds
// an open WebSocket with a subscription and a call waiting for a commit;
// Serve must return, and the WebSocket client must learn why.
func TestServeReturnsOnlyAfterEveryConnectionEnds(t *testing.T) {
	b := newTestBackend(t, 1)
	s, err := New(b, Config{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	tctx := testCtx(t)
	c, _ := client.New("http://" + ln.Addr().String())
	w, err := c.DialWS(tctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.SubscribeNewHeads(tctx); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	tx := b.transfer(0, b.addr(1), 1, 0, 0)
	go func() {
		_, err := c.SendTxAndWait(tctx, tx, time.Minute)
		waitErr <- err
	}()
	// Once the transaction is pending, the wait is under way.
	admitted := b.pool.Subscribe(1, mempool.EventAdmitted)
	defer admitted.Close()
	if !b.pool.Has(tx.Hash()) {
		<-admitted.C()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return")
	}
	if err := <-waitErr; err == nil {
		t.Fatal("the waiting call succeeded on a stopped server")
	}
	<-w.Done()
	if err := w.Err(); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("WebSocket ended with %v, want the shutdown reason", err)
	}
}

// FuzzDecodeRequest feeds arbitrary bodies to the request decoder: it
// must never panic, must answer every element of a batch, every valid
// call must carry a method, and the id it echoes must be valid UTF-8 JSON
// (so every answer is).
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"ledger_status"}`,
		`{"jsonrpc":"2.0","method":"ledger_getAccount","params":["ldg1"]}`,
		`[{"jsonrpc":"2.0","id":"a","method":"x","params":{}},1,null,[]]`,
		`{"jsonrpc":"2.0","id":null,"method":"m","params":null}`,
		`[]`, `{`, ``, `"x"`, `{"id":{}}`, `[[[[`,
		"{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"m\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reqs, batch, err := DecodeRequest(body, 10)
		if err != nil {
			if reqs != nil {
				t.Fatal("error with requests")
			}
			if err.Code == 0 || err.Message == "" {
				t.Fatalf("error without code or message: %+v", err)
			}
			return
		}
		if len(reqs) == 0 || (!batch && len(reqs) != 1) || len(reqs) > 10 {
			t.Fatalf("%d requests (batch %v)", len(reqs), batch)
		}
		for _, r := range reqs {
			if r.Err == nil && r.Method == "" {
				t.Fatal("valid request without a method")
			}
			if r.Err != nil && r.ID == nil {
				t.Fatal("invalid request without an id to answer with")
			}
			if r.ID != nil && (!utf8.Valid(r.ID) || !json.Valid(r.ID)) {
				t.Fatalf("id %q would make the answer invalid JSON", r.ID)
			}
			if r.Params != nil && r.Params[0] != '[' && r.Params[0] != '{' {
				t.Fatalf("params %q are neither array nor object", r.Params)
			}
		}
	})
}
