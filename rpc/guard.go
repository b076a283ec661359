package rpc

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ledgerd/ledgerd/rpc/api"
)

// defaultVirtualHosts and defaultWSOrigins apply when the configuration
// leaves the lists empty: only this machine's names.
var (
	defaultVirtualHosts = []string{"localhost"}
	defaultWSOrigins    = []string{"http://localhost", "https://localhost", "http://127.0.0.1", "https://127.0.0.1", "http://[::1]", "https://[::1]"}
)

// hostAllowed is the DNS-rebinding guard: a page on a name its owner
// re-points at 127.0.0.1 reaches the node with that name in Host. An IP
// literal cannot be rebound, so it always passes; a name must be listed.
// An absent Host (HTTP/1.0) passes, as it names nothing.
func (s *Server) hostAllowed(hostport string) bool {
	if hostport == "" {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if net.ParseIP(host) != nil {
		return true
	}
	host = strings.TrimSuffix(host, ".")
	return slices.ContainsFunc(s.cfg.VirtualHosts, func(v string) bool {
		return v == "*" || strings.EqualFold(v, host)
	})
}

// wsOriginAllowed reports whether a WebSocket handshake with this Origin
// may proceed. No Origin means no browser (browsers always send one on
// WebSocket handshakes), so the request forges nothing.
func (s *Server) wsOriginAllowed(origin string) bool {
	if origin == "" {
		return true
	}
	if s.originAllowed(origin) {
		return true // a CORS origin may use the WebSocket too
	}
	o, err := url.Parse(origin)
	if err != nil || o.Host == "" {
		return false
	}
	return slices.ContainsFunc(s.cfg.WSOrigins, func(rule string) bool { return originMatches(rule, o) })
}

// originMatches matches an origin against one rule: "*"; "scheme://host"
// (any port); "scheme://host:port"; or a bare "host" (any scheme and port).
func originMatches(rule string, o *url.URL) bool {
	if rule == "*" {
		return true
	}
	if !strings.Contains(rule, "://") {
		return strings.EqualFold(rule, o.Hostname())
	}
	r, err := url.Parse(rule)
	if err != nil || !strings.EqualFold(r.Scheme, o.Scheme) || !strings.EqualFold(r.Hostname(), o.Hostname()) {
		return false
	}
	return r.Port() == "" || r.Port() == o.Port()
}

// refuseHost answers a request whose Host is not allowed.
func (s *Server) refuseHost(w http.ResponseWriter, r *http.Request) {
	s.observe("invalid", api.CodeHostNotAllowed, 0)
	s.log.Debug("rpc: refused a request for a host not in rpc.vhosts", "host", truncate(r.Host), "remote", r.RemoteAddr)
	writeJSONError(w, http.StatusForbidden, api.Errorf(api.CodeHostNotAllowed,
		"host %q is not allowed: add it to rpc.vhosts (a guard against DNS rebinding)", truncate(r.Host)))
}

// refuseOrigin answers a WebSocket handshake from an origin not allowed.
func (s *Server) refuseOrigin(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	s.observe("invalid", api.CodeOriginNotAllowed, 0)
	s.log.Debug("rpc: refused a WebSocket from an origin not in rpc.ws_origins", "origin", truncate(origin), "remote", r.RemoteAddr)
	writeJSONError(w, http.StatusForbidden, api.Errorf(api.CodeOriginNotAllowed,
		"WebSocket origin %q is not allowed: add it to rpc.ws_origins", truncate(origin)))
}
