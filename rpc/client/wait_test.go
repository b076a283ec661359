package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A node that offers no WebSocket is asked for its status until it
// reports the height waited for.
func TestWaitForHeightPollsWithoutWebSocket(t *testing.T) {
	var calls atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "no websocket here", http.StatusNotFound)
			return
		}
		h := calls.Add(1) // one block more per status call
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":1,"result":{"chain_id":"c","latest_height":"%d"}}`, h)
	}))
	defer s.Close()
	c, err := New(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := c.WaitForHeight(ctx, 4)
	if err != nil || st.LatestHeight < 4 {
		t.Fatalf("WaitForHeight(4) = %+v, %v; want a status at height 4 or above", st, err)
	}
	// A height the node never reaches ends with the context, saying so.
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := c.WaitForHeight(ctx, 1<<40); err == nil {
		t.Fatal("waiting for a height never reached returned no error")
	}
}
