package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ledgerd/ledgerd/rpc/api"
)

// WebSocket keep-alive and write bounds.
const (
	wsWriteWait  = 10 * time.Second
	wsPongWait   = 60 * time.Second
	wsPingPeriod = wsPongWait * 9 / 10
	// wsDropWait is how long a dropped slow client has to read its close frame.
	wsDropWait = 5 * time.Second
	// wsMaxConcurrent bounds the calls one connection runs at once (only
	// ledger_sendTransactionAndWait runs beside the reader).
	wsMaxConcurrent = 8
)

// CloseSlowClient is the WebSocket close code sent to a client dropped for
// not reading its notifications (1008, policy violation).
const CloseSlowClient = websocket.ClosePolicyViolation

// wsConn is one WebSocket connection. Its reader runs in the HTTP
// handler's goroutine; a writer goroutine owns every write, so nothing
// the node does ever waits on the client.
type wsConn struct {
	s      *Server
	ws     *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	out    chan []byte

	// qmu guards queued and closed: the bytes in out, bounded by
	// Config.WSQueueBytes. space is signalled when the writer took one.
	qmu    sync.Mutex
	queued int64
	closed bool
	space  chan struct{}

	mu       sync.Mutex
	subs     map[string]*subscription
	closeMsg string // why the server closes the connection, if it does
	calls    sync.WaitGroup
	sem      chan struct{}
}

func (s *Server) upgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		HandshakeTimeout: 10 * time.Second,
		// serveWS checked the Origin before upgrading. (Same-origin is
		// not enough: under DNS rebinding the attacker's page is
		// same-origin with the name it rebinds.)
		CheckOrigin: func(r *http.Request) bool { return s.wsOriginAllowed(r.Header.Get("Origin")) },
	}
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if !s.wsOriginAllowed(r.Header.Get("Origin")) {
		s.refuseOrigin(w, r)
		return
	}
	if st := clientOf(r.Context()); st != nil {
		if why := s.clients.enterWS(st); why != nil {
			s.observe("invalid", why.err.Code, 0)
			writeJSONError(w, why.status, why.err)
			return
		}
		defer s.clients.leaveWS(st)
	}
	ws, err := s.upgrader().Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered with an HTTP error
	}
	ws.SetReadLimit(s.cfg.MaxBodyBytes)
	ctx, cancel := context.WithCancel(r.Context())
	c := &wsConn{s: s, ws: ws, ctx: ctx, cancel: cancel, out: make(chan []byte, s.cfg.NotifyQueue),
		subs: make(map[string]*subscription), sem: make(chan struct{}, wsMaxConcurrent), space: make(chan struct{}, 1)}
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		c.writeLoop()
	}()
	c.readLoop()
	c.cancel()
	c.calls.Wait()
	c.mu.Lock()
	for id, sub := range c.subs {
		s.hub.remove(sub)
		delete(c.subs, id)
	}
	c.mu.Unlock()
	writer.Wait()
	ws.Close()
	c.discardQueue()
}

// tryEnqueue queues msg for the writer if it fits: the queue holds at most
// Config.NotifyQueue messages and Config.WSQueueBytes bytes, except that
// one message may always enter an empty queue.
func (c *wsConn) tryEnqueue(msg []byte) bool {
	n := int64(len(msg))
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closed || (c.queued > 0 && c.queued+n > c.s.cfg.WSQueueBytes) {
		return false
	}
	select {
	case c.out <- msg:
		c.queued += n
		notePeak(&c.s.wsQueuePeak, c.queued)
		return true
	default:
		return false
	}
}

// enqueueAnswer queues an answer, waiting for room: while it waits the
// connection reads no further calls, so a client that does not read its
// answers stops being served instead of piling them up. It returns false
// when the connection ends first.
func (c *wsConn) enqueueAnswer(msg []byte) bool {
	for waited := false; ; {
		if c.tryEnqueue(msg) {
			return true
		}
		if !waited {
			c.s.answerWaits.Add(1)
			waited = true
		}
		select {
		case <-c.space:
		case <-c.ctx.Done():
			return false
		}
	}
}

// written accounts for a message the writer took off the queue.
func (c *wsConn) written(msg []byte) {
	n := int64(len(msg))
	c.qmu.Lock()
	c.queued -= n
	c.qmu.Unlock()
	c.s.answerBytes.release(n)
	select {
	case c.space <- struct{}{}:
	default:
	}
}

// discardQueue releases what was queued and never written, and refuses
// further messages; it runs once the writer has returned.
func (c *wsConn) discardQueue() {
	c.qmu.Lock()
	c.closed = true
	c.qmu.Unlock()
	for {
		select {
		case msg := <-c.out:
			c.written(msg)
		default:
			return
		}
	}
}

// readLoop reads calls until the connection fails or is closed.
func (c *wsConn) readLoop() {
	ws := c.ws
	ws.SetReadDeadline(time.Now().Add(wsPongWait))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(wsPongWait)) })
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			// ErrReadLimit: the library already sent close 1009 (message too big).
			return
		}
		ws.SetReadDeadline(time.Now().Add(wsPongWait))
		if !mayBlock(data) {
			c.handle(data)
			continue
		}
		select {
		case c.sem <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		c.calls.Add(1)
		go func() {
			defer c.calls.Done()
			defer func() { <-c.sem }()
			c.handle(data)
		}()
	}
}

// mayBlock reports whether a message may call a method that waits (so it
// runs beside the reader instead of holding up the connection's calls).
func mayBlock(data []byte) bool {
	return bytes.Contains(data, []byte(api.MethodSendTransactionAndWait))
}

func (c *wsConn) handle(data []byte) {
	out, afters := c.s.handleBodyDeferred(c.ctx, data, c)
	if out != nil && !c.enqueueAnswer(out) {
		c.s.answerBytes.release(int64(len(out)))
		return
	}
	for _, f := range afters {
		f()
	}
}

// writeLoop writes answers and notifications, pings the client, and when
// the connection ends says why in the close frame.
func (c *wsConn) writeLoop() {
	ws := c.ws
	ping := time.NewTicker(wsPingPeriod)
	defer ping.Stop()
	for {
		select {
		case msg := <-c.out:
			ws.SetWriteDeadline(time.Now().Add(wsWriteWait))
			err := ws.WriteMessage(websocket.TextMessage, msg)
			c.written(msg)
			if err != nil {
				c.cancel()
				ws.Close()
				return
			}
		case <-ping.C:
			if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteWait)); err != nil {
				c.cancel()
				ws.Close()
				return
			}
		case <-c.ctx.Done():
			code, text, wait := websocket.CloseNormalClosure, "", time.Second
			c.mu.Lock()
			if c.closeMsg != "" {
				// A slow client may still read its backlog: give the
				// reason a few seconds to get through.
				code, text, wait = CloseSlowClient, c.closeMsg, wsDropWait
			} else if c.s.stopping() {
				code, text = websocket.CloseGoingAway, "ledgerd: server shutting down"
			}
			c.mu.Unlock()
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(wait))
			ws.Close() // unblocks the reader
			return
		}
	}
}

// stopping reports whether Serve's context has ended.
func (s *Server) stopping() bool {
	return s.serveCtx != nil && s.serveCtx.Err() != nil
}

// notify queues a notification for sub without blocking. A client that
// lets its queue fill is dropped with a close frame that says why.
func (c *wsConn) notify(sub *subscription, result []byte) {
	if c.ctx.Err() != nil {
		return // closing anyway
	}
	msg := notification(sub.id, result)
	c.s.answerBytes.force(int64(len(msg)))
	if !c.tryEnqueue(msg) {
		c.s.answerBytes.release(int64(len(msg)))
		c.qmu.Lock()
		n, bytes := len(c.out), c.queued
		c.qmu.Unlock()
		c.drop(fmt.Sprintf("ledgerd: dropped: client too slow, %d messages (%d bytes) unread", n, bytes))
	}
}

// finish delivers a tx subscription's last notification, once, and ends it.
func (c *wsConn) finish(sub *subscription, result []byte) {
	if !sub.done.CompareAndSwap(false, true) {
		return
	}
	c.notify(sub, result)
	c.removeSub(sub.id)
}

func (c *wsConn) drop(reason string) {
	if c.ctx.Err() != nil {
		return // ending anyway, not for being slow
	}
	c.mu.Lock()
	if c.closeMsg == "" {
		c.closeMsg = reason
		c.s.droppedClients.Add(1)
		c.s.log.Info("rpc: dropping slow WebSocket client", "remote", c.ws.RemoteAddr().String(), "reason", reason)
	}
	c.mu.Unlock()
	c.cancel()
}

func (c *wsConn) addSub(sub *subscription) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return api.Errorf(api.CodeUnavailable, "connection closing")
	}
	if len(c.subs) >= c.s.cfg.MaxSubscriptions {
		return api.Errorf(api.CodeTooManySubscriptions, "this connection already holds %d subscriptions, the limit", len(c.subs))
	}
	c.subs[sub.id] = sub
	return nil
}

func (c *wsConn) removeSub(id string) bool {
	c.mu.Lock()
	sub, ok := c.subs[id]
	delete(c.subs, id)
	c.mu.Unlock()
	if ok {
		c.s.hub.remove(sub)
	}
	return ok
}

// --- subscription methods ---

func (s *Server) subscribe(ctx context.Context, c *call) (any, error) {
	var kind string
	var arg json.RawMessage
	if err := c.bind(&kind, &arg); err != nil {
		return nil, err
	}
	sub := &subscription{id: newSubID(), conn: c.conn, kind: kind}
	switch kind {
	case api.SubNewHeads, api.SubValidatorSet:
		if arg != nil {
			return nil, api.Errorf(api.CodeInvalidParams, "invalid params: %s takes no argument", kind)
		}
	case api.SubAccount:
		if arg == nil {
			return nil, api.Errorf(api.CodeInvalidParams, `invalid params: missing parameter "arg": the account's address`)
		}
		if err := json.Unmarshal(arg, &sub.addr); err != nil {
			return nil, paramError("arg", err)
		}
	case api.SubTx:
		if arg == nil {
			return nil, api.Errorf(api.CodeInvalidParams, `invalid params: missing parameter "arg": the transaction's hash`)
		}
		if err := json.Unmarshal(arg, &sub.hash); err != nil {
			return nil, paramError("arg", err)
		}
	default:
		return nil, api.Errorf(api.CodeInvalidParams, "invalid params: unknown subscription kind %q: want %s, %s, %s or %s",
			truncate(kind), api.SubNewHeads, api.SubAccount, api.SubTx, api.SubValidatorSet)
	}
	if err := c.conn.addSub(sub); err != nil {
		return nil, err
	}
	s.hub.add(sub)
	c.after = func() {
		sub.active.Store(true)
		if sub.kind == api.SubTx {
			s.checkTxSub(sub)
		}
	}
	return sub.id, nil
}

// checkTxSub finishes a tx subscription whose transaction already committed.
func (s *Server) checkTxSub(sub *subscription) {
	if !s.isCommitted(sub.hash) {
		return
	}
	t, err := s.committedTx(sub.hash, true)
	if err != nil {
		return
	}
	buf, _ := json.Marshal(t)
	sub.conn.finish(sub, buf)
}

func (s *Server) unsubscribe(ctx context.Context, c *call) (any, error) {
	var id string
	if err := c.bind(&id); err != nil {
		return nil, err
	}
	if !c.conn.removeSub(id) {
		return nil, api.Errorf(api.CodeNotFound, "no subscription %q on this connection", truncate(id))
	}
	return true, nil
}
