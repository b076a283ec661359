package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/metrics"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// Config bounds and shapes the server. Zero fields take DefaultConfig's values.
type Config struct {
	// MaxBodyBytes caps a request body and a WebSocket message.
	MaxBodyBytes int64
	// MaxBatchRequests caps the calls in one batch.
	MaxBatchRequests int
	// MaxSubscriptions caps the subscriptions one WebSocket connection holds.
	MaxSubscriptions int
	// MaxConnections caps simultaneous connections (HTTP and WebSocket).
	// When full, an idle keep-alive connection is closed to admit a new
	// one; failing that the new one is refused at once (503), never kept
	// waiting.
	MaxConnections int
	// MaxConnectionsPerClient caps the connections of one client (IP
	// address); beyond it, the client's own idle connection is reclaimed
	// or the new one refused (429).
	MaxConnectionsPerClient int
	// MaxWebSockets and MaxWebSocketsPerClient cap open WebSockets, on the
	// server and per client: WebSockets can so never take every
	// connection slot from plain HTTP calls.
	MaxWebSockets          int
	MaxWebSocketsPerClient int
	// RequestsPerSecondPerClient and RequestBurstPerClient are one
	// client's call rate (each call of a batch counts): a token bucket
	// refilled at the rate and holding at most the burst. A call beyond it
	// answers rate_limited without running.
	RequestsPerSecondPerClient float64
	RequestBurstPerClient      int
	// UnlimitedClients lists addresses or CIDR prefixes exempt from the
	// per-client limits (the global caps still apply): the node's own
	// host, where a TLS proxy or a load generator would connect from. Nil
	// means 127.0.0.1 and ::1; an empty list exempts no one.
	UnlimitedClients []string
	// ReadHeaderTimeout bounds the wait for a request's headers (slowloris)
	// and IdleTimeout an idle keep-alive connection.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// CORSAllowedOrigins lists the browser origins allowed to call the
	// API ("*" for any). Empty disables CORS and cross-origin WebSockets.
	CORSAllowedOrigins []string
	// VirtualHosts lists the names the Host header may carry (like
	// geth's --http.vhosts; "*" for any). A Host that is an IP address is
	// always accepted: DNS rebinding needs a name. Empty means "localhost".
	VirtualHosts []string
	// WSOrigins lists the browser origins allowed to open a WebSocket
	// (like geth's --ws.origins; "*" for any; "scheme://host" matches
	// any port). CORSAllowedOrigins are allowed too. Empty means the
	// localhost origins: http(s)://localhost, 127.0.0.1 and [::1].
	WSOrigins []string
	// DefaultWait and MaxWait are the default and the largest timeout of
	// ledger_sendTransactionAndWait.
	DefaultWait time.Duration
	MaxWait     time.Duration
	// NotifyQueue is how many messages may wait to be written to one
	// WebSocket client; a client that lets more pile up is dropped.
	NotifyQueue int
	// MaxResponseBytes caps one call's encoded answer; a larger one is
	// replaced by a response_too_large error.
	MaxResponseBytes int64
	// MaxBatchResponseBytes caps the answers of one batch together
	// (except that its first answer may take up to MaxResponseBytes); the
	// calls after the budget is spent are not run and answer
	// response_too_large.
	MaxBatchResponseBytes int64
	// MaxResponseBytesInFlight caps the bytes of answers built and not yet
	// written, across all connections; a call whose answer does not fit
	// answers overloaded.
	MaxResponseBytesInFlight int64
	// WSQueueBytes caps the bytes waiting to be written to one WebSocket
	// (answers and notifications). A notification that does not fit drops
	// the client; an answer waits for room, and the connection stops
	// reading meanwhile. One answer may always enter an empty queue.
	WSQueueBytes int64
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Metrics receives the RPC metrics; nil makes a private set.
	Metrics *metrics.Metrics

	unlimited []netip.Prefix // UnlimitedClients, parsed by New
}

// DefaultConfig returns the defaults, which match node's config.toml.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:     1 << 20,
		MaxBatchRequests: 100,
		MaxSubscriptions: 16,
		MaxConnections:   256,

		MaxConnectionsPerClient:    32,
		MaxWebSockets:              128,
		MaxWebSocketsPerClient:     8,
		RequestsPerSecondPerClient: 100,
		RequestBurstPerClient:      200,
		UnlimitedClients:           []string{"127.0.0.1", "::1"},
		ReadHeaderTimeout:          5 * time.Second,
		IdleTimeout:                60 * time.Second,
		DefaultWait:                30 * time.Second,
		MaxWait:                    120 * time.Second,
		NotifyQueue:                256,

		MaxResponseBytes:         16 << 20,
		MaxBatchResponseBytes:    4 << 20,
		MaxResponseBytesInFlight: 64 << 20,
		WSQueueBytes:             4 << 20,

		VirtualHosts: slices.Clone(defaultVirtualHosts),
		WSOrigins:    slices.Clone(defaultWSOrigins),
	}
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.MaxBatchRequests <= 0 {
		c.MaxBatchRequests = d.MaxBatchRequests
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = d.MaxSubscriptions
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = d.MaxConnections
	}
	if c.DefaultWait <= 0 {
		c.DefaultWait = d.DefaultWait
	}
	if c.MaxWait <= 0 {
		c.MaxWait = d.MaxWait
	}
	c.DefaultWait = min(c.DefaultWait, c.MaxWait)
	if c.NotifyQueue <= 0 {
		c.NotifyQueue = d.NotifyQueue
	}
	if c.MaxConnectionsPerClient <= 0 {
		c.MaxConnectionsPerClient = d.MaxConnectionsPerClient
	}
	if c.MaxWebSockets <= 0 {
		c.MaxWebSockets = d.MaxWebSockets
	}
	if c.MaxWebSocketsPerClient <= 0 {
		c.MaxWebSocketsPerClient = d.MaxWebSocketsPerClient
	}
	if c.RequestsPerSecondPerClient <= 0 {
		c.RequestsPerSecondPerClient = d.RequestsPerSecondPerClient
	}
	if c.RequestBurstPerClient <= 0 {
		c.RequestBurstPerClient = d.RequestBurstPerClient
	}
	if c.UnlimitedClients == nil {
		c.UnlimitedClients = d.UnlimitedClients
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = d.MaxResponseBytes
	}
	if c.MaxBatchResponseBytes <= 0 {
		c.MaxBatchResponseBytes = d.MaxBatchResponseBytes
	}
	if c.MaxResponseBytesInFlight <= 0 {
		c.MaxResponseBytesInFlight = d.MaxResponseBytesInFlight
	}
	if c.WSQueueBytes <= 0 {
		c.WSQueueBytes = d.WSQueueBytes
	}
	if len(c.VirtualHosts) == 0 {
		c.VirtualHosts = defaultVirtualHosts
	}
	if len(c.WSOrigins) == 0 {
		c.WSOrigins = defaultWSOrigins
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
}

// Timeouts of the HTTP server and of WebSocket keep-alives.
const (
	readTimeout   = 30 * time.Second
	shutdownGrace = 2 * time.Second
	// maxRefusing bounds the goroutines explaining refused connections.
	maxRefusing = 64
	// feedBuffer is the room of the server's own subscription to the node.
	feedBuffer = 1024
)

// Server is the JSON-RPC server: HTTP POST and WebSocket on one port,
// plus /health and /metrics. Serve runs it, with the event hub that feeds
// subscriptions and waiting calls.
type Server struct {
	b           Backend
	cfg         Config
	log         *slog.Logger
	methods     map[string]*method
	hub         *hub
	genesisHash crypto.Hash
	genesisJSON json.RawMessage
	serveCtx    context.Context // set by Serve before it accepts connections

	// droppedClients counts WebSocket clients dropped for being slow.
	droppedClients atomic.Int64
	// answerBytes holds the bytes of answers and notifications built and
	// not yet written (rpc.max_response_bytes_in_flight bounds answers).
	answerBytes *byteBudget
	// answerWaits counts answers that waited for room in a WebSocket's queue.
	answerWaits atomic.Int64
	// wsQueuePeak is the most bytes one WebSocket's queue has held.
	wsQueuePeak atomic.Int64
	// clients keeps the connection caps and per-client limits.
	clients *clients

	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup // HTTP handlers, WebSocket connections included
}

// New returns a server over b.
func New(b Backend, cfg Config) (*Server, error) {
	cfg.fill()
	for _, u := range cfg.UnlimitedClients {
		p, err := netip.ParsePrefix(u)
		if err != nil {
			a, aerr := netip.ParseAddr(u)
			if aerr != nil {
				return nil, fmt.Errorf("rpc: unlimited client %q: want an IP address or a CIDR prefix", u)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		cfg.unlimited = append(cfg.unlimited, p.Masked())
	}
	doc := b.Genesis()
	if doc == nil {
		return nil, errors.New("rpc: backend has no genesis")
	}
	gj, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("rpc: encode genesis: %w", err)
	}
	s := &Server{b: b, cfg: cfg, log: cfg.Logger, genesisHash: doc.Hash(), genesisJSON: gj,
		answerBytes: newByteBudget(cfg.MaxResponseBytesInFlight)}
	s.clients = newClients(&s.cfg)
	s.hub = newHub(s)
	s.methods = s.methodTable()
	return s, nil
}

// Serve accepts connections on ln until ctx ends, then stops accepting,
// closes every connection and returns once every goroutine it started
// (handlers, WebSocket connections, the event hub) has returned. It returns
// nil after ctx ends, or the error that stopped it earlier.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.serveCtx = ctx
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*trackedConn); ok {
				return context.WithValue(ctx, clientKey{}, tc.st)
			}
			return ctx
		},
		ConnState: s.clients.setState,
		ErrorLog:  slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	// Subscribe before serving, so every call sees the events that
	// follow its answer.
	feed, err := s.b.Subscribe(feedBuffer)
	if err != nil {
		ln.Close()
		return fmt.Errorf("rpc: subscribe to node events: %w", err)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := s.hub.run(ctx, feed); err != nil {
			errc <- err
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		lln := &limitedListener{Listener: ln, cl: s.clients, log: s.log.Debug, refuser: make(chan struct{}, maxRefusing), wg: &wg}
		if err := hs.Serve(lln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("rpc: serve: %w", err)
			cancel()
		}
	}()
	<-ctx.Done()

	sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	scancel()
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.inflight.Wait() // WebSocket connections end with ctx; handlers with their requests
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// enter counts a handler in; it fails once the server is closing.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.inflight.Add(1)
	return true
}

// ServeHTTP routes: "/" takes JSON-RPC over POST and WebSocket upgrades,
// "/health" and "/metrics" answer GET.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.inflight.Done()
	if !s.hostAllowed(r.Host) {
		s.refuseHost(w, r)
		return
	}
	switch r.URL.Path {
	case "/", "/rpc":
	case "/health":
		s.serveHealth(w, r)
		return
	case "/metrics":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "use GET", http.StatusMethodNotAllowed)
			return
		}
		s.cfg.Metrics.Handler().ServeHTTP(w, r)
		return
	default:
		http.NotFound(w, r)
		return
	}
	if !s.cors(w, r) {
		return
	}
	switch {
	case r.Method == http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet && isWebSocketUpgrade(r):
		s.serveWS(w, r)
	case r.Method == http.MethodPost:
		s.servePOST(w, r)
	default:
		w.Header().Set("Allow", "POST, GET (WebSocket upgrade), OPTIONS")
		writeJSONError(w, http.StatusMethodNotAllowed, api.Errorf(api.CodeInvalidRequest,
			"use POST with a JSON-RPC body, or a WebSocket upgrade"))
	}
}

func isWebSocketUpgrade(r *http.Request) bool {
	return headerHas(r.Header, "Connection", "upgrade") && headerHas(r.Header, "Upgrade", "websocket")
}

func headerHas(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// cors applies the CORS policy. It returns false when it answered the
// request itself (a refused preflight).
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !s.originAllowed(origin) {
		if r.Method == http.MethodOptions {
			http.Error(w, "CORS: origin not allowed", http.StatusForbidden)
			return false
		}
		return true // no CORS headers: the browser withholds the answer
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "600")
	}
	return true
}

func (s *Server) originAllowed(origin string) bool {
	return slices.ContainsFunc(s.cfg.CORSAllowedOrigins, func(o string) bool {
		return o == "*" || strings.EqualFold(o, origin)
	})
}

func (s *Server) servePOST(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			s.observe("invalid", api.CodeInvalidRequest, 0)
			writeJSONError(w, http.StatusUnsupportedMediaType, api.Errorf(api.CodeInvalidRequest,
				"Content-Type must be application/json, not %q", ct))
			return
		}
	} else {
		s.observe("invalid", api.CodeInvalidRequest, 0)
		writeJSONError(w, http.StatusUnsupportedMediaType, api.Errorf(api.CodeInvalidRequest,
			"Content-Type must be application/json"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.observe("invalid", api.CodeRequestTooLarge, 0)
			writeJSONError(w, http.StatusRequestEntityTooLarge, api.Errorf(api.CodeRequestTooLarge,
				"request body exceeds the limit of %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		s.observe("invalid", api.CodeInvalidRequest, 0)
		writeJSONError(w, http.StatusBadRequest, api.Errorf(api.CodeInvalidRequest, "read request body: %v", err))
		return
	}
	out := s.handleBody(r.Context(), body, nil)
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	defer s.answerBytes.release(int64(len(out)))
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

func writeJSONError(w http.ResponseWriter, status int, e *api.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(encodeError(nil, e))
}

// handleBody answers one request body (one call or a batch); nil means
// nothing to send (only notifications). conn is the WebSocket connection
// the body came on, nil for HTTP. The answer's bytes are held in
// s.answerBytes: the caller releases len(answer) once it is written.
func (s *Server) handleBody(ctx context.Context, body []byte, conn *wsConn) []byte {
	out, afters := s.handleBodyDeferred(ctx, body, conn)
	for _, f := range afters {
		f()
	}
	return out
}

// handleBodyDeferred is handleBody that returns, instead of running them,
// the actions to take once the answer is sent (activating subscriptions).
//
// Answers are bounded by bytes: each by MaxResponseBytes, a batch's
// together by MaxBatchResponseBytes (the calls after that are not run),
// and all answers in flight on the server by MaxResponseBytesInFlight. A
// batch's answers are appended to its output as each call finishes, so
// no more than the output and one answer are ever held.
func (s *Server) handleBodyDeferred(ctx context.Context, body []byte, conn *wsConn) ([]byte, []func()) {
	reqs, batch, derr := DecodeRequest(body, s.cfg.MaxBatchRequests)
	if derr != nil {
		s.observe("invalid", derr.Code, 0)
		out := encodeError(nil, derr)
		s.answerBytes.force(int64(len(out)))
		return out, nil
	}
	cl := clientOf(ctx)
	var out []byte
	var afters []func()
	answered := 0
	spent := false // the batch's answer budget is spent
	for i := range reqs {
		req := &reqs[i]
		var ans []byte
		var after func()
		switch {
		case !s.clients.allowCall(cl):
			s.observe(callLabel(s, req), api.CodeRateLimited, 0)
			if req.IsNotification() {
				continue // not run, and nothing to answer
			}
			ans = encodeError(req.ID, api.Errorf(api.CodeRateLimited,
				"rate limited: more than %g calls per second (burst %d) from this client (rpc.max_requests_per_second_per_client); retry later",
				s.cfg.RequestsPerSecondPerClient, s.cfg.RequestBurstPerClient))
			s.answerBytes.force(int64(len(ans)))
		case req.IsNotification():
			ans, after = s.call(ctx, req, conn)
		case spent:
			s.observe(callLabel(s, req), api.CodeResponseTooLarge, 0)
			ans = encodeError(req.ID, api.Errorf(api.CodeResponseTooLarge,
				"not run: the batch's answers reached rpc.max_batch_response_bytes (%d bytes); send fewer calls per batch", s.cfg.MaxBatchResponseBytes))
			s.answerBytes.force(int64(len(ans)))
		case !s.answerBytes.room(s.cfg.MaxResponseBytes):
			// No room for the largest answer a call may give: do not do
			// work whose answer may have to be thrown away.
			ans = s.overloaded(req)
		default:
			ans, after = s.call(ctx, req, conn)
			ans, after = s.charge(req, ans, after, batch, int64(len(out)), &spent)
		}
		if after != nil {
			afters = append(afters, after)
		}
		if ans == nil {
			continue
		}
		if !batch {
			return ans, afters
		}
		sep := byte(',')
		if answered == 0 {
			sep = '['
		}
		out = append(out, sep)
		out = append(out, ans...)
		answered++
	}
	if answered == 0 {
		return nil, afters
	}
	out = append(out, ']')
	s.answerBytes.force(int64(answered + 1)) // the brackets and commas
	return out, afters
}

// charge takes the bytes of a call's answer from the budgets, or replaces
// the answer by the documented error when it does not fit: the batch's
// (spent is then set, so the batch's later calls are not run) or the
// server's answers in flight. after is dropped with a replaced answer.
func (s *Server) charge(req *Request, ans []byte, after func(), batch bool, batchBytes int64, spent *bool) ([]byte, func()) {
	if ans == nil {
		return nil, after
	}
	// A batch's first answer may be as large as one call's (a block);
	// after it the batch's budget counts.
	if batch && batchBytes > 0 && batchBytes+int64(len(ans))+2 > s.cfg.MaxBatchResponseBytes {
		*spent = true
		s.observe(callLabel(s, req), api.CodeResponseTooLarge, 0)
		out := encodeError(req.ID, api.Errorf(api.CodeResponseTooLarge,
			"the answer (%d bytes) would take the batch's answers past rpc.max_batch_response_bytes (%d bytes); send fewer calls per batch",
			len(ans), s.cfg.MaxBatchResponseBytes))
		s.answerBytes.force(int64(len(out)))
		return out, nil
	}
	if !s.answerBytes.acquire(int64(len(ans))) {
		return s.overloaded(req), nil
	}
	return ans, after
}

// overloaded answers a call with the overloaded error, charged to the budget.
func (s *Server) overloaded(req *Request) []byte {
	s.observe(callLabel(s, req), api.CodeOverloaded, 0)
	out := encodeError(req.ID, api.Errorf(api.CodeOverloaded,
		"the node is busy: answers waiting to be sent reached rpc.max_response_bytes_in_flight (%d bytes); retry later", s.cfg.MaxResponseBytesInFlight))
	s.answerBytes.force(int64(len(out)))
	return out
}

// callLabel is the metrics label of a request's method.
func callLabel(s *Server, req *Request) string {
	if req.Err != nil {
		return "invalid"
	}
	if _, ok := s.methods[req.Method]; !ok {
		return "unknown"
	}
	return req.Method
}

// call runs one call and encodes its answer (nil for a notification).
func (s *Server) call(ctx context.Context, req *Request, conn *wsConn) (answer []byte, after func()) {
	if req.Err != nil {
		s.observe("invalid", req.Err.Code, 0)
		return encodeError(req.ID, req.Err), nil
	}
	start := time.Now()
	m, ok := s.methods[req.Method]
	label := req.Method
	var result any
	var err error
	switch {
	case !ok:
		label = "unknown"
		err = api.Errorf(api.CodeMethodNotFound, "method %q not found", truncate(req.Method))
	case m.wsOnly && conn == nil:
		err = api.Errorf(api.CodeNeedsWebSocket, "%s needs a WebSocket connection", req.Method)
	default:
		c := &call{s: s, m: m, params: req.Params, conn: conn}
		result, err = s.invoke(ctx, m, c)
		after = c.after
	}
	var e *api.Error
	if err != nil {
		e = s.toAPIError(req.Method, err)
		after = nil
	}
	s.observe(label, codeOf(e), time.Since(start))
	if req.IsNotification() {
		return nil, after
	}
	if e != nil {
		return encodeError(req.ID, e), nil
	}
	out, encErr := encodeResult(req.ID, result)
	if encErr != nil {
		s.log.Error("rpc: encode result", "method", req.Method, "err", encErr)
		return encodeError(req.ID, api.Errorf(api.CodeInternal, "internal error")), nil
	}
	if int64(len(out)) > s.cfg.MaxResponseBytes {
		s.observe(label, api.CodeResponseTooLarge, 0)
		return encodeError(req.ID, api.Errorf(api.CodeResponseTooLarge,
			"the answer (%d bytes) exceeds rpc.max_response_bytes (%d bytes); ask for less (a lower limit)", len(out), s.cfg.MaxResponseBytes)), nil
	}
	return out, after
}

// invoke runs the handler, turning a panic into an internal error so one
// bad call cannot take the node down.
func (s *Server) invoke(ctx context.Context, m *method, c *call) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("rpc: handler panicked", "method", m.name, "panic", p, "stack", string(debug.Stack()))
			result, err = nil, api.Errorf(api.CodeInternal, "internal error")
		}
	}()
	return m.fn(ctx, c)
}

func codeOf(e *api.Error) int {
	if e == nil {
		return 0
	}
	return e.Code
}

// toAPIError maps a handler's error to what the client sees: API errors
// pass through; anything else is logged and reported as internal.
func (s *Server) toAPIError(method string, err error) *api.Error {
	var e *api.Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, store.ErrPruned) {
		e := api.Errorf(api.CodePruned, "%v", err)
		e.Data.(*api.ErrorData).OldestHeight = api.Uint64(s.b.Chain().OldestState()).Ptr()
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return api.Errorf(api.CodeUnavailable, "request cancelled: the node is stopping or the client went away")
	}
	s.log.Error("rpc: internal error", "method", method, "err", err)
	return api.Errorf(api.CodeInternal, "internal error")
}

// observe records one call in the RPC metrics: code 0 is "ok".
func (s *Server) observe(method string, code int, d time.Duration) {
	outcome := "ok"
	if code != 0 {
		outcome = api.CodeName(code)
	}
	s.cfg.Metrics.RPCRequests.WithLabelValues(method, outcome).Inc()
	if d > 0 {
		s.cfg.Metrics.RPCSeconds.WithLabelValues(method).Observe(d.Seconds())
	}
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// serveHealth answers 200 when the node is caught up, has peers (a chain
// whose only validator is this node needs none) and reports nothing that
// stops it from progressing (NodeStatus.Problems), else 503, with the
// details in a JSON body.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	h := s.health()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if h.Healthy {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(h)
}

func (s *Server) health() api.Health {
	st := s.b.Status()
	peers := len(s.b.Peers())
	vals := s.b.Validators()
	_, self := vals.ByAddress(st.Validator)
	single := vals.Size() == 1 && st.IsValidator && self
	h := api.Health{CatchingUp: st.CatchingUp, Peers: peers, SingleValidator: single, LatestHeight: api.Uint64(st.Height)}
	if st.CatchingUp {
		h.Problems = append(h.Problems, "catching up: block sync in progress")
	}
	if peers == 0 && !single {
		h.Problems = append(h.Problems, "no peers")
	}
	h.Problems = append(h.Problems, st.Problems...)
	h.Healthy = len(h.Problems) == 0
	return h
}
