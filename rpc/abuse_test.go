package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ledgerd/ledgerd/rpc/api"
)

// dialerFrom dials from a given loopback source address, so one test can
// play several clients (Linux routes all of 127.0.0.0/8 to loopback).
func dialerFrom(ip string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
}

// httpClientFrom is an HTTP client whose connections come from ip; with
// keepAlive false every call opens a new connection.
func httpClientFrom(ip string, keepAlive bool, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: dialerFrom(ip).DialContext, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 64,
	}}
}

const statusBody = `{"jsonrpc":"2.0","id":1,"method":"ledger_status"}`

// abuse holds connections from one address the three ways that used to
// lock every client out: idle keep-alives, open WebSockets and
// slowloris headers that never finish. It returns once every connection
// is made and has sent its bytes, and how many the server refused with
// the documented answer.
func abuse(t *testing.T, ts *testServer, ip string, idle, sockets, slow int) (refused int, closeAll func()) {
	t.Helper()
	host := strings.TrimPrefix(ts.url, "http://")
	var mu sync.Mutex
	var conns []io.Closer
	keep := func(c io.Closer) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	refusedCh := make(chan bool, idle+sockets+slow)
	var wg sync.WaitGroup
	raw := func(payload string, waitAnswer bool) {
		defer wg.Done()
		c, err := dialerFrom(ip).Dial("tcp", host)
		if err != nil {
			t.Errorf("abuser dial: %v", err)
			return
		}
		keep(c)
		if _, err := io.WriteString(c, payload); err != nil {
			return
		}
		if !waitAnswer {
			// A slowloris client: check, without blocking long, whether
			// the server refused it at once.
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		} else {
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil {
			refusedCh <- strings.Contains(line, " 429 ") || strings.Contains(line, " 503 ")
		}
		c.SetReadDeadline(time.Time{})
	}
	for i := 0; i < idle; i++ {
		wg.Add(1)
		go raw(fmt.Sprintf("POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", host, len(statusBody), statusBody), true)
	}
	for i := 0; i < slow; i++ {
		wg.Add(1)
		go raw(fmt.Sprintf("POST / HTTP/1.1\r\nHost: %s\r\nX-Slow: ", host), false)
	}
	for i := 0; i < sockets; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := websocket.Dialer{NetDialContext: dialerFrom(ip).DialContext, HandshakeTimeout: 3 * time.Second}
			c, resp, err := d.Dial("ws://"+host+"/", nil)
			if err == nil {
				keep(c)
				return
			}
			if resp != nil {
				var r rawResponse
				json.NewDecoder(resp.Body).Decode(&r)
				refusedCh <- r.errCode() == api.CodeTooManyConnections
			}
		}()
	}
	wg.Wait()
	close(refusedCh)
	for r := range refusedCh {
		if r {
			refused++
		}
	}
	return refused, func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
}

// TestAbusiveClientCannotLockOthersOut has one client (127.0.0.2) try to
// take every connection slot with 120 idle keep-alives, 60 WebSockets and
// 120 slowloris connections, then measures a normal client (127.0.0.3)
// calling ledger_status 40 times on fresh connections and 40 on a
// keep-alive one. Every call must succeed and the p99 stay under 2 s — a
// generous bound for a loaded machine; before per-client limits the node
// stopped accepting at 256 connections and the normal client waited 10 s
// or more (until a slowloris header timed out). The abuser's surplus
// connections are refused with the documented answer.
func TestAbusiveClientCannotLockOthersOut(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{})
	refused, closeAll := abuse(t, ts, "127.0.0.2", 120, 60, 120)
	defer closeAll()

	var lat []time.Duration
	for _, keepAlive := range []bool{false, true} {
		hc := httpClientFrom("127.0.0.3", keepAlive, 5*time.Second)
		for i := 0; i < 40; i++ {
			start := time.Now()
			resp, err := hc.Post(ts.url, "application/json", strings.NewReader(statusBody))
			if err != nil {
				t.Fatalf("normal client call %d (keep-alive %v) failed after %s: %v", i, keepAlive, time.Since(start).Round(time.Millisecond), err)
			}
			var r rawResponse
			err = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if err != nil || r.Error != nil {
				t.Fatalf("normal client call %d: %v %+v", i, err, r.Error)
			}
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("abuser refused %d times; normal client p50 %s, p99 %s, max %s", refused, p50, p99, lat[len(lat)-1])
	if p99 > 2*time.Second {
		t.Fatalf("normal client p99 %s under abuse, want < 2s", p99)
	}
	if refused == 0 {
		t.Fatal("the abuser's connections beyond its limits were not refused with the documented answer")
	}
}

// TestPerClientRateLimit checks the call-rate limit: a client that sends
// more calls than its burst gets rate_limited for the surplus (each call
// of a batch counts), another client is unaffected, and the exempt
// loopback address 127.0.0.1 is not limited.
func TestPerClientRateLimit(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{RequestsPerSecondPerClient: 1, RequestBurstPerClient: 50})
	batch := make([]map[string]any, 100)
	for i := range batch {
		batch[i] = map[string]any{"jsonrpc": "2.0", "id": i, "method": api.MethodStatus}
	}
	body, _ := json.Marshal(batch)
	send := func(ip string) (ok, limited int) {
		hc := httpClientFrom(ip, true, 10*time.Second)
		resp, err := hc.Post(ts.url, "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rs []rawResponse
		if err := json.NewDecoder(resp.Body).Decode(&rs); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			switch r.errCode() {
			case 0:
				ok++
			case api.CodeRateLimited:
				limited++
				if !strings.Contains(r.Error.Message, "rate limited") {
					t.Fatalf("message %q", r.Error.Message)
				}
			default:
				t.Fatalf("error %+v", r.Error)
			}
		}
		return ok, limited
	}
	if ok, limited := send("127.0.0.4"); ok < 50 || ok > 55 || limited != 100-ok {
		t.Fatalf("client over its burst of 50: %d ok, %d rate limited", ok, limited)
	}
	if ok, limited := send("127.0.0.5"); ok < 50 || limited == 0 {
		t.Fatalf("a second client: %d ok, %d rate limited; want its own burst", ok, limited)
	}
	for i := 0; i < 3; i++ {
		if ok, limited := send("127.0.0.1"); ok != 100 || limited != 0 {
			t.Fatalf("exempt 127.0.0.1: %d ok, %d rate limited", ok, limited)
		}
	}
}

// TestWebSocketBudgetIsSeparate checks the WebSocket caps: one client
// gets at most rpc.max_websockets_per_client, the next is refused with
// 429 and too_many_connections, and HTTP calls from it still work.
func TestWebSocketBudgetIsSeparate(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{MaxWebSocketsPerClient: 3})
	host := strings.TrimPrefix(ts.url, "http://")
	d := websocket.Dialer{NetDialContext: dialerFrom("127.0.0.6").DialContext}
	for i := 0; i < 3; i++ {
		c, _, err := d.Dial("ws://"+host+"/", nil)
		if err != nil {
			t.Fatalf("WebSocket %d: %v", i, err)
		}
		defer c.Close()
	}
	_, resp, err := d.Dial("ws://"+host+"/", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth WebSocket: %v %v, want 429", err, resp)
	}
	var r rawResponse
	json.NewDecoder(resp.Body).Decode(&r)
	if r.errCode() != api.CodeTooManyConnections {
		t.Fatalf("fourth WebSocket: %+v, want too_many_connections", r.Error)
	}
	hc := httpClientFrom("127.0.0.6", false, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url, strings.NewReader(statusBody))
	req.Header.Set("Content-Type", "application/json")
	hr, err := hc.Do(req)
	if err != nil || hr.StatusCode != http.StatusOK {
		t.Fatalf("HTTP call beside the WebSockets: %v %v", err, hr)
	}
	hr.Body.Close()
}
