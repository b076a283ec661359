package rpc

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ledgerd/ledgerd/rpc/api"
)

// heapPeak samples the heap in use every few milliseconds until stop is
// called, and returns the highest growth over the starting point.
func heapPeak() (stop func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done, fin := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(fin)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > base && m.HeapInuse-base > peak.Load() {
				peak.Store(m.HeapInuse - base)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); <-fin; return peak.Load() }
}

// historyBatch is a batch of n ledger_getAccountTransactions calls for
// addr with the largest limit: each answer is some 300 KB.
func historyBatch(addr any, n int) []byte {
	calls := make([]map[string]any, n)
	for i := range calls {
		calls[i] = map[string]any{"jsonrpc": "2.0", "id": i, "method": api.MethodGetAccountTransactions, "params": []any{addr, 0, 1000}}
	}
	b, _ := json.Marshal(calls)
	return b
}

// budgetConfig is small enough that a batch of history calls overruns it.
var budgetConfig = Config{
	MaxResponseBytes:         1 << 20,
	MaxBatchResponseBytes:    2 << 20,
	MaxResponseBytesInFlight: 8 << 20,
	WSQueueBytes:             2 << 20,
}

// checkBatchAnswer decodes a batch answer of n calls and counts the
// documented budget errors; any other error fails the test.
func checkBatchAnswer(t *testing.T, raw []byte, n int) (ok, tooLarge, overloaded int) {
	t.Helper()
	var rs []rawResponse
	if err := json.Unmarshal(raw, &rs); err != nil || len(rs) != n {
		t.Fatalf("batch answer: %d answers, %v (want %d)", len(rs), err, n)
	}
	for _, r := range rs {
		switch r.errCode() {
		case 0:
			ok++
		case api.CodeResponseTooLarge:
			tooLarge++
			if r.Error.Data.Reason != "response_too_large" {
				t.Fatalf("reason %q", r.Error.Data.Reason)
			}
		case api.CodeOverloaded:
			overloaded++
		default:
			t.Fatalf("unexpected error %d: %s", r.Error.Code, r.Error.Message)
		}
	}
	return ok, tooLarge, overloaded
}

// TestNonReadingWebSocketStaysWithinByteBudgets plays the client that
// sends batches of history queries over a WebSocket and never reads. The
// server must stop reading from it once its queue's byte budget is full,
// hold no more than the budgets say (by its own accounting and by the
// heap), and answer the calls past a batch's budget with
// response_too_large. (Before byte budgets the node queued 256 answers
// of any size per connection: this client grew the heap by 649 MiB.)
func TestNonReadingWebSocketStaysWithinByteBudgets(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, budgetConfig)
	buildHistory(t, b, []int{1000}) // 1000 transactions of account 1
	const batches, calls = 12, 100
	body := historyBatch(b.addr(1), calls)

	stop := heapPeak()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.url, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	sent := make(chan int, 1)
	go func() {
		n := 0
		for ; n < batches; n++ {
			ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if ws.WriteMessage(websocket.TextMessage, body) != nil {
				break
			}
		}
		sent <- n
	}()
	// The server stops reading this client once its queue is full.
	deadline := time.Now().Add(60 * time.Second)
	for ts.answerWaits.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the server never held back a non-reading client's answers")
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	// Now read everything, checking each answer.
	var got, tooLarge int
	for got < batches {
		ws.SetReadDeadline(time.Now().Add(60 * time.Second))
		_, raw, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d answers: %v", got, err)
		}
		_, tl, _ := checkBatchAnswer(t, raw, calls)
		tooLarge += tl
		got++
	}
	heap := stop()
	if n := <-sent; n != batches {
		t.Fatalf("sent %d batches of %d", n, batches)
	}
	t.Logf("heap peak +%d MiB; answers in flight peak %d KiB (budget %d KiB); one WebSocket queue peak %d KiB (budget %d KiB + one batch)",
		heap>>20, ts.answerBytes.peak.Load()>>10, budgetConfig.MaxResponseBytesInFlight>>10, ts.wsQueuePeak.Load()>>10, budgetConfig.WSQueueBytes>>10)
	if tooLarge == 0 {
		t.Fatal("no call was answered response_too_large although every batch overruns its budget")
	}
	if p := ts.answerBytes.peak.Load(); p > budgetConfig.MaxResponseBytesInFlight {
		t.Fatalf("answers in flight peaked at %d bytes, over the budget %d", p, budgetConfig.MaxResponseBytesInFlight)
	}
	if p := ts.wsQueuePeak.Load(); p > budgetConfig.WSQueueBytes+budgetConfig.MaxBatchResponseBytes {
		t.Fatalf("one WebSocket's queue peaked at %d bytes, over its budget %d (+ one batch)", p, budgetConfig.WSQueueBytes)
	}
	if heap > 128<<20 {
		t.Fatalf("the heap grew by %d MiB serving one non-reading client", heap>>20)
	}
	if u := ts.answerBytes.used.Load(); u != 0 {
		// Everything was written: nothing may stay charged.
		t.Fatalf("%d answer bytes still accounted after every answer was read", u)
	}
}

// TestConcurrentHTTPBatchesStayWithinByteBudgets sends 8 batches of 100
// history calls at once over HTTP. Every answer must be a
// complete batch whose calls either succeeded or got a documented budget
// error, with the server's answer bytes in flight never over its budget
// and the heap growth far below what unbounded answers take (341 MiB
// before byte budgets).
func TestConcurrentHTTPBatchesStayWithinByteBudgets(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, budgetConfig)
	buildHistory(t, b, []int{1000})
	const clients, calls = 8, 100
	body := historyBatch(b.addr(1), calls)
	stop := heapPeak()
	var mu sync.Mutex
	var ok, tooLarge, overloaded int
	for round := 0; round < 1; round++ {
		var wg sync.WaitGroup
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Post(ts.url, "application/json", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				raw, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Error(err)
					return
				}
				o, tl, ov := checkBatchAnswer(t, raw, calls)
				mu.Lock()
				ok, tooLarge, overloaded = ok+o, tooLarge+tl, overloaded+ov
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	heap := stop()
	t.Logf("heap peak +%d MiB; answers in flight peak %d KiB (budget %d KiB); calls ok %d, response_too_large %d, overloaded %d",
		heap>>20, ts.answerBytes.peak.Load()>>10, budgetConfig.MaxResponseBytesInFlight>>10, ok, tooLarge, overloaded)
	if ok == 0 || tooLarge == 0 {
		t.Fatalf("ok %d, response_too_large %d: want both", ok, tooLarge)
	}
	if p := ts.answerBytes.peak.Load(); p > budgetConfig.MaxResponseBytesInFlight {
		t.Fatalf("answers in flight peaked at %d bytes, over the budget %d", p, budgetConfig.MaxResponseBytesInFlight)
	}
	if heap > 128<<20 {
		t.Fatalf("the heap grew by %d MiB serving 8 batches at a time", heap>>20)
	}
	if u := ts.answerBytes.used.Load(); u != 0 {
		t.Fatalf("%d answer bytes still accounted after every answer was written", u)
	}
}

// TestOversizedAnswerIsRefused checks the per-answer bound on a single call.
func TestOversizedAnswerIsRefused(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{MaxResponseBytes: 64 << 10})
	buildHistory(t, b, []int{1000})
	r := ts.callRaw(t, api.MethodGetAccountTransactions, b.addr(1), 0, 1000)
	if r.errCode() != api.CodeResponseTooLarge || !strings.Contains(r.Error.Message, "max_response_bytes") {
		t.Fatalf("answer %+v, want response_too_large", r.Error)
	}
	if r := ts.callRaw(t, api.MethodGetAccountTransactions, b.addr(1), 0, 10); r.Error != nil {
		t.Fatalf("a small page: %+v", r.Error)
	}
}
