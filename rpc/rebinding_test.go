package rpc

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/ledgerd/ledgerd/rpc/api"
)

// postHost posts a status call with the given Host header.
func postHost(t *testing.T, ts *testServer, host string) (int, rawResponse) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ledger_status"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r rawResponse
	json.Unmarshal(body, &r)
	return resp.StatusCode, r
}

// dialWSWith opens a WebSocket with the given Host and Origin headers and
// returns the HTTP status of the handshake (101 when accepted).
func dialWSWith(t *testing.T, ts *testServer, host, origin string) int {
	t.Helper()
	u, _ := url.Parse(ts.url)
	u.Scheme = "ws"
	h := http.Header{}
	if host != "" {
		h.Set("Host", host)
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := websocket.DefaultDialer.Dial(u.String(), h)
	if err == nil {
		c.Close()
		return resp.StatusCode
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode
}

// TestDNSRebindingIsRefused plays a DNS-rebinding page: a browser on
// evil.example whose name now resolves to 127.0.0.1 sends Host and Origin
// naming evil.example. The node must refuse both the POST and the
// WebSocket upgrade (like geth's --http.vhosts and --ws.origins), while
// IP-literal hosts, localhost, configured names and configured origins
// are served.
func TestDNSRebindingIsRefused(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{})
	port := ts.url[strings.LastIndex(ts.url, ":")+1:]
	evil := "evil.example:" + port

	if code, r := postHost(t, ts, evil); code != http.StatusForbidden || r.errCode() != api.CodeHostNotAllowed {
		t.Fatalf("POST with Host %s: HTTP %d, error %d; want 403 and %d", evil, code, r.errCode(), api.CodeHostNotAllowed)
	}
	if code := dialWSWith(t, ts, evil, "http://"+evil); code != http.StatusForbidden {
		t.Fatalf("WebSocket with Host and Origin %s: HTTP %d, want 403", evil, code)
	}
	// A foreign page talking to the node by its IP: the Host is fine, the Origin is not.
	if code := dialWSWith(t, ts, "", "http://"+evil); code != http.StatusForbidden {
		t.Fatalf("WebSocket with Origin %s: HTTP %d, want 403", evil, code)
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST", "[::1]:" + port} {
		if code, r := postHost(t, ts, host); code != http.StatusOK || r.Error != nil {
			t.Fatalf("POST with Host %s: HTTP %d %+v, want 200", host, code, r.Error)
		}
	}
	for _, origin := range []string{"", "http://localhost:3000", "http://127.0.0.1:" + port} {
		if code := dialWSWith(t, ts, "", origin); code != http.StatusSwitchingProtocols {
			t.Fatalf("WebSocket with Origin %q: HTTP %d, want 101", origin, code)
		}
	}

	conf := startServer(t, b, Config{VirtualHosts: []string{"node.example"}, WSOrigins: []string{"https://wallet.example"}})
	cport := conf.url[strings.LastIndex(conf.url, ":")+1:]
	if code, _ := postHost(t, conf, "node.example:"+cport); code != http.StatusOK {
		t.Fatalf("configured virtual host: HTTP %d", code)
	}
	if code, _ := postHost(t, conf, "localhost:"+cport); code != http.StatusForbidden {
		t.Fatalf("localhost not in the configured list: HTTP %d, want 403", code)
	}
	if code := dialWSWith(t, conf, "node.example", "https://wallet.example"); code != http.StatusSwitchingProtocols {
		t.Fatalf("configured origin: HTTP %d, want 101", code)
	}
	if code := dialWSWith(t, conf, "", "http://localhost:3000"); code != http.StatusForbidden {
		t.Fatalf("localhost origin with a configured list: HTTP %d, want 403", code)
	}
	any := startServer(t, b, Config{VirtualHosts: []string{"*"}, WSOrigins: []string{"*"}})
	if code := dialWSWith(t, any, evil, "http://"+evil); code != http.StatusSwitchingProtocols {
		t.Fatalf(`"*" lists: HTTP %d, want 101`, code)
	}
}

// TestNonUTF8IDIsAnsweredWithValidJSON sends ids that are not valid UTF-8
// (raw bytes 0xff inside the JSON string); the answer must be valid JSON
// in valid UTF-8 — never the raw bytes echoed back.
func TestNonUTF8IDIsAnsweredWithValidJSON(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{})
	for _, body := range []string{
		"{\"jsonrpc\":\"2.0\",\"id\":\"a\xff\xfeb\",\"method\":\"ledger_status\"}",
		"[{\"jsonrpc\":\"2.0\",\"id\":\"\xc3\",\"method\":\"ledger_status\"},{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ledger_status\"}]",
		"{\"jsonrpc\":\"2.0\",\"id\":\"\xed\xa0\x80\",\"method\":\"nope\"}",
	} {
		_, out := ts.post(t, body)
		if !utf8.Valid(out) || !json.Valid(out) {
			t.Fatalf("body %q: answer %q is not valid UTF-8 JSON", body, out)
		}
		if bytes.Contains(out, []byte{0xff}) || bytes.Contains(out, []byte{0xc3, '"'}) {
			t.Fatalf("body %q: answer %q echoes the raw bytes", body, out)
		}
		var r rawResponse
		if !strings.HasPrefix(body, "[") {
			json.Unmarshal(out, &r)
			if r.errCode() != api.CodeInvalidRequest || string(r.ID) != "null" {
				t.Fatalf("body %q: answer %s, want invalid_request with id null", body, out)
			}
		}
	}
}
