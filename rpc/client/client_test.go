package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/ledgerd/ledgerd/rpc/api"
)

func deadEndpoint(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func answering(body string, status int, calls *atomic.Int32) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
}

// TestCallFailsOverAndSticks checks that a call skips an endpoint that is
// down and one that answers 503, and that later calls go straight to the
// endpoint that answered.
func TestCallFailsOverAndSticks(t *testing.T) {
	var busy, good atomic.Int32
	s503 := answering(`{}`, http.StatusServiceUnavailable, &busy)
	defer s503.Close()
	ok := answering(`{"jsonrpc":"2.0","id":1,"result":{"txs":3,"bytes":9}}`, 200, &good)
	defer ok.Close()
	c, err := New(deadEndpoint(t), s503.URL, ok.URL)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		m, err := c.Mempool(context.Background())
		if err != nil || m.Txs != 3 {
			t.Fatalf("call %d: %+v %v", i, m, err)
		}
	}
	if busy.Load() != 1 || good.Load() != 3 {
		t.Fatalf("503 endpoint called %d times, good one %d; want 1 and 3", busy.Load(), good.Load())
	}
}

// TestNodeRefusalIsNotRetried: a JSON-RPC error is the node's answer, not
// a failure to reach it, so the next endpoint is not asked.
func TestNodeRefusalIsNotRetried(t *testing.T) {
	var first, second atomic.Int32
	a := answering(`{"jsonrpc":"2.0","id":1,"error":{"code":1006,"message":"nonce too low","data":{"reason":"nonce_too_low","pending_nonce":"4"}}}`, 200, &first)
	defer a.Close()
	b := answering(`{"jsonrpc":"2.0","id":1,"result":{}}`, 200, &second)
	defer b.Close()
	c, _ := New(a.URL, b.URL)
	_, err := c.Mempool(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Code != api.CodeNonceTooLow {
		t.Fatalf("got %v, want the node's nonce_too_low", err)
	}
	if d := e.Details(); d.Reason != "nonce_too_low" || d.PendingNonce == nil || *d.PendingNonce != 4 {
		t.Fatalf("details %+v", d)
	}
	if second.Load() != 0 {
		t.Fatal("a refusal was retried on another endpoint")
	}
}

func TestAllEndpointsDown(t *testing.T) {
	c, _ := New(deadEndpoint(t), deadEndpoint(t))
	_, err := c.Status(context.Background())
	var te *TransportError
	if !errors.As(err, &te) || te.Tried != 2 {
		t.Fatalf("got %v, want a transport error after 2 tries", err)
	}
}

func TestNormalizeEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:26657":         "http://127.0.0.1:26657",
		"http://node:1/":          "http://node:1",
		"https://rpc.example.com": "https://rpc.example.com",
	} {
		if got, err := NormalizeEndpoint(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x", "http://", ""} {
		if _, err := NormalizeEndpoint(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
