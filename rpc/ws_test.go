package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ledgerd/ledgerd/mempool"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

func dialWS(t *testing.T, ts *testServer) *client.WSClient {
	t.Helper()
	c, err := client.New(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := c.DialWS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSubscriptionsDeliverHeadsAccountsAndTxs checks the three kinds of
// subscription: every new head in order, every transfer touching an
// account, and one transaction until it commits (with a proof), after
// which that subscription ends.
func TestSubscriptionsDeliverHeadsAccountsAndTxs(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{})
	ctx := testCtx(t)
	w := dialWS(t, ts)
	heads, err := w.SubscribeNewHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a1 := b.addr(1)
	acct, err := w.SubscribeAccount(ctx, a1)
	if err != nil {
		t.Fatal(err)
	}
	tx := b.transfer(0, a1, 42, 1, 0)
	txSub, err := w.SubscribeTx(ctx, tx.Hash())
	if err != nil {
		t.Fatal(err)
	}
	// Also over WebSocket: ordinary calls.
	var st api.Status
	if err := w.Call(ctx, api.MethodStatus, &st); err != nil {
		t.Fatal(err)
	}

	blocks := []*struct{ txs int }{{0}, {1}, {0}}
	for i, bl := range blocks {
		if bl.txs == 1 {
			if err := b.pool.Add(tx); err != nil {
				t.Fatal(err)
			}
			b.commit(t, tx)
		} else {
			b.commit(t)
		}
		h, err := heads.NextHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(h.Height) != uint64(i+1) || h.NumTxs != bl.txs || h.Header.Hash() != h.Hash {
			t.Fatalf("head %d: %+v", i+1, h)
		}
	}
	raw, err := acct.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ev api.AccountEvent
	if err := json.Unmarshal(raw, &ev); err != nil || ev.Hash != tx.Hash() || ev.Direction != "received" || ev.Amount != 42 || ev.Height != 2 {
		t.Fatalf("account event %s: %v", raw, err)
	}
	raw, err = txSub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got api.Transaction
	if err := json.Unmarshal(raw, &got); err != nil || got.Status != api.TxCommitted || *got.Height != 2 {
		t.Fatalf("tx notification %s: %v", raw, err)
	}
	blk, _ := b.st.Block(2)
	h := tx.Hash()
	if err := got.Proof.Proof.Verify(blk.Header.TxRoot, h[:]); err != nil {
		t.Fatalf("tx notification proof: %v", err)
	}
	// The tx subscription ended with its commit.
	if err := txSub.Unsubscribe(ctx); err == nil {
		t.Fatal("unsubscribing a finished tx subscription succeeded")
	}
	if err := heads.Unsubscribe(ctx); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
}

// TestTxSubscriptionOfCommittedTx answers at once for a transaction that
// committed before the subscription.
func TestTxSubscriptionOfCommittedTx(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{})
	ctx := testCtx(t)
	tx := b.transfer(0, b.addr(1), 1, 0, 0)
	if err := b.pool.Add(tx); err != nil {
		t.Fatal(err)
	}
	b.commit(t, tx)
	w := dialWS(t, ts)
	sub, err := w.SubscribeTx(ctx, tx.Hash())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sub.Next(ctx)
	if err != nil || !strings.Contains(string(raw), `"committed"`) {
		t.Fatalf("notification %s, %v", raw, err)
	}
}

// TestSubscriptionCapPerConnection refuses subscriptions past the cap
// with the documented code, and frees a slot on unsubscribe.
func TestSubscriptionCapPerConnection(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{MaxSubscriptions: 2})
	ctx := testCtx(t)
	w := dialWS(t, ts)
	s1, err := w.SubscribeNewHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.SubscribeAccount(ctx, b.addr(0)); err != nil {
		t.Fatal(err)
	}
	_, err = w.SubscribeNewHeads(ctx)
	if code, _ := client.CodeOf(err); code != api.CodeTooManySubscriptions {
		t.Fatalf("third subscription: %v, want code %d", err, api.CodeTooManySubscriptions)
	}
	for _, bad := range []struct {
		kind string
		arg  any
		code int
	}{{"blocks", nil, api.CodeInvalidParams}, {api.SubAccount, nil, api.CodeInvalidParams}, {api.SubAccount, "ldg1nope", api.CodeInvalidParams}, {api.SubTx, "12", api.CodeInvalidParams}} {
		_, err := w.Subscribe(ctx, bad.kind, bad.arg)
		if code, _ := client.CodeOf(err); code != bad.code {
			t.Errorf("subscribe %s %v: %v, want code %d", bad.kind, bad.arg, err, bad.code)
		}
	}
	if err := s1.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.SubscribeNewHeads(ctx); err != nil {
		t.Fatalf("subscription after unsubscribe: %v", err)
	}
}

// smallBufferListener shrinks each accepted connection's send buffer, so
// a client that stops reading makes the server's writes block after a
// few kilobytes instead of after the kernel's default megabytes.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestSlowSubscriberIsDroppedWithAReason checks that a client that stops
// reading is dropped with close code 1008 and a message saying why, that
// the node's event flow never waits for it, and that a client that reads
// keeps getting every head.
func TestSlowSubscriberIsDroppedWithAReason(t *testing.T) {
	b := newTestBackend(t, 1)
	s, err := New(b, Config{NotifyQueue: 4})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, smallBufferListener{ln}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	url := "ws://" + ln.Addr().String() + "/"
	tctx := testCtx(t)

	// The slow client: a raw connection with a tiny receive buffer that
	// subscribes and then does not read.
	dialer := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(4096)
		}
		return c, err
	}}
	slow, _, err := dialer.DialContext(tctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if err := slow.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": 1, "method": api.MethodSubscribe, "params": []any{api.SubNewHeads}}); err != nil {
		t.Fatal(err)
	}
	var ack rawResponse
	if err := slow.ReadJSON(&ack); err != nil || ack.Error != nil {
		t.Fatalf("subscribe: %v %+v", err, ack.Error)
	}

	c, _ := client.New("http://" + ln.Addr().String())
	good, err := c.DialWS(tctx)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	heads, err := good.SubscribeNewHeads(tctx)
	if err != nil {
		t.Fatal(err)
	}

	// Commit blocks until the server drops the slow client. Each commit
	// returns without waiting for any client.
	var n uint64
	for s.droppedClients.Load() == 0 {
		n++
		if n > 5000 {
			t.Fatal("the slow client was never dropped")
		}
		b.commit(t)
		h, err := heads.NextHead(tctx)
		if err != nil {
			t.Fatalf("good client: %v", err)
		}
		if uint64(h.Height) != n {
			t.Fatalf("good client got head %d, want %d", h.Height, n)
		}
	}
	// The slow client reads what was buffered, then the close frame.
	var closeErr *websocket.CloseError
	for {
		if _, _, err := slow.ReadMessage(); err != nil {
			if !errors.As(err, &closeErr) {
				t.Fatalf("slow client ended with %v, want a close frame", err)
			}
			break
		}
	}
	if closeErr.Code != CloseSlowClient || !strings.Contains(closeErr.Text, "too slow") {
		t.Fatalf("close %d %q, want %d with a reason", closeErr.Code, closeErr.Text, CloseSlowClient)
	}
	// The good client still gets the next head.
	b.commit(t)
	if h, err := heads.NextHead(tctx); err != nil || uint64(h.Height) != n+1 {
		t.Fatalf("good client after the drop: %v %v", h, err)
	}
}

// TestOversizedWebSocketMessageClosesWith1009 checks the message bound on
// WebSockets: the connection is closed with "message too big".
func TestOversizedWebSocketMessageClosesWith1009(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{MaxBodyBytes: 1024})
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.url, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"`+strings.Repeat("x", 2000)+`"}`))
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("got %v, want close 1009", err)
	}
}

// TestSendAndWait covers the three endings of a wait: the commit (with a
// receipt), a timeout (status pending), and the transaction leaving the
// mempool (replaced by a higher fee).
func TestSendAndWait(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{})
	admitted := b.pool.Subscribe(16, mempool.EventAdmitted)
	defer admitted.Close()
	a1 := b.addr(1)

	t.Run("commit", func(t *testing.T) {
		tx := b.transfer(0, a1, 7, 2, 0)
		res := make(chan rawResponse, 1)
		go func() { res <- ts.callRaw(t, api.MethodSendTransactionAndWait, tx, "20s") }()
		if ev, err := recvTimeout(admitted.C(), 10*time.Second); err != nil || ev.Hash != tx.Hash() {
			t.Fatalf("admission: %v %v", ev.Hash, err)
		}
		b.commit(t, tx)
		r, err := recvTimeout(res, 10*time.Second)
		if err != nil || r.Error != nil {
			t.Fatalf("wait: %v %+v", err, r.Error)
		}
		var got api.Transaction
		json.Unmarshal(r.Result, &got)
		if got.Status != api.TxCommitted || got.Receipt == nil || got.Receipt.Fee != 2 || got.Receipt.Height != 1 {
			t.Fatalf("receipt: %s", r.Result)
		}
		// Waiting again for a committed transaction answers at once.
		var again api.Transaction
		ts.call(t, api.MethodSendTransactionAndWait, &again, tx)
		if again.Status != api.TxCommitted {
			t.Fatalf("second wait: %+v", again)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		tx := b.transfer(0, a1, 7, 2, 1)
		r := ts.callRaw(t, api.MethodSendTransactionAndWait, tx, "50ms")
		<-admitted.C()
		if r.errCode() != api.CodeTimeout || r.Error.Data.Status != api.TxPending || r.Error.Data.Hash == nil {
			t.Fatalf("got %+v, want timeout with status pending", r.Error)
		}
	})
	t.Run("dropped", func(t *testing.T) {
		tx := b.transfer(0, a1, 7, 2, 2)
		res := make(chan rawResponse, 1)
		go func() { res <- ts.callRaw(t, api.MethodSendTransactionAndWait, tx, "20s") }()
		if ev, err := recvTimeout(admitted.C(), 10*time.Second); err != nil || ev.Hash != tx.Hash() {
			t.Fatalf("admission: %v", err)
		}
		better := b.transfer(0, a1, 7, 50, 2)
		if err := b.pool.Add(better); err != nil {
			t.Fatal(err)
		}
		r, err := recvTimeout(res, 10*time.Second)
		if err != nil || r.errCode() != api.CodeTxDropped || r.Error.Data.Reason != "replaced" {
			t.Fatalf("got %v %+v, want tx_dropped (replaced)", err, r.Error)
		}
	})
}
