package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// subBuffer is how many notifications a Subscription holds before the
// connection's reader waits for the consumer (and the node, seeing its
// queue fill, eventually drops the connection).
const subBuffer = 256

// WSClient is one WebSocket connection to a node: calls and
// subscriptions. Close it when done; it owns one reader goroutine.
type WSClient struct {
	conn *websocket.Conn
	wmu  sync.Mutex // one writer at a time

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]*pendingCall
	subs    map[string]*Subscription
	err     error // why the connection ended
	done    chan struct{}
	quit    chan struct{} // closed by Close
	once    sync.Once
	wg      sync.WaitGroup
}

type pendingCall struct {
	ch  chan response
	sub *Subscription // set for ledger_subscribe: registered by the reader
}

// Subscription delivers the notifications of one subscription in order.
type Subscription struct {
	ID   string
	Kind string
	w    *WSClient
	ch   chan json.RawMessage
}

// DialWS opens a WebSocket to the first endpoint that accepts one.
func (c *Client) DialWS(ctx context.Context) (*WSClient, error) {
	var last error
	n := len(c.endpoints)
	start := int(c.pref.Load())
	for i := 0; i < n; i++ {
		e := c.endpoints[(start+i)%n]
		u := "ws" + strings.TrimPrefix(e, "http") + "/"
		conn, _, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
		if err != nil {
			last = fmt.Errorf("%s: %w", u, err)
			continue
		}
		conn.SetReadLimit(MaxResponseBytes)
		w := &WSClient{conn: conn, pending: map[uint64]*pendingCall{}, subs: map[string]*Subscription{},
			done: make(chan struct{}), quit: make(chan struct{})}
		w.wg.Add(1)
		go w.readLoop()
		return w, nil
	}
	return nil, &TransportError{Tried: n, Last: last}
}

// Close closes the connection and waits for its reader.
func (w *WSClient) Close() error {
	w.once.Do(func() { close(w.quit) })
	w.wmu.Lock()
	w.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline())
	w.wmu.Unlock()
	err := w.conn.Close()
	w.wg.Wait()
	return err
}

// Done is closed when the connection has ended; Err then says why.
func (w *WSClient) Done() <-chan struct{} { return w.done }

// Err is why the connection ended (for example the node's close reason
// when it dropped a slow client), nil while it is open.
func (w *WSClient) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *WSClient) readLoop() {
	defer w.wg.Done()
	var err error
	for {
		var data []byte
		_, data, err = w.conn.ReadMessage()
		if err != nil {
			break
		}
		w.dispatch(data)
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		err = fmt.Errorf("connection closed by the node: %d %s", ce.Code, ce.Text)
	} else {
		err = fmt.Errorf("connection lost: %w", err)
	}
	w.mu.Lock()
	w.err = err
	for id, p := range w.pending {
		close(p.ch)
		delete(w.pending, id)
	}
	for id, s := range w.subs {
		close(s.ch)
		delete(w.subs, id)
	}
	w.mu.Unlock()
	close(w.done)
}

func (w *WSClient) dispatch(data []byte) {
	var msg struct {
		ID     *uint64                 `json:"id"`
		Method string                  `json:"method"`
		Params *api.SubscriptionNotice `json:"params"`
		Result json.RawMessage         `json:"result"`
		Error  *Error                  `json:"error"`
	}
	if json.Unmarshal(data, &msg) != nil {
		return
	}
	if msg.Method == api.NotificationSubscription && msg.Params != nil {
		w.mu.Lock()
		s := w.subs[msg.Params.Subscription]
		w.mu.Unlock()
		if s != nil {
			select {
			case s.ch <- msg.Params.Result:
			case <-w.quit:
			}
		}
		return
	}
	if msg.ID == nil {
		return
	}
	w.mu.Lock()
	p := w.pending[*msg.ID]
	delete(w.pending, *msg.ID)
	if p != nil && p.sub != nil && msg.Error == nil {
		// Register before reading on, so the first notification finds it.
		if json.Unmarshal(msg.Result, &p.sub.ID) == nil {
			w.subs[p.sub.ID] = p.sub
		}
	}
	w.mu.Unlock()
	if p != nil {
		p.ch <- response{Result: msg.Result, Error: msg.Error}
	}
}

// Call invokes method over the WebSocket.
func (w *WSClient) Call(ctx context.Context, method string, result any, params ...any) error {
	return w.call(ctx, method, result, nil, params...)
}

func (w *WSClient) call(ctx context.Context, method string, result any, sub *Subscription, params ...any) error {
	if params == nil {
		params = []any{}
	}
	p := &pendingCall{ch: make(chan response, 1), sub: sub}
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.nextID++
	id := w.nextID
	w.pending[id] = p
	w.mu.Unlock()
	body, err := json.Marshal(request{JSONRPC: "2.0", ID: id, Method: method, Params: params})
	if err != nil {
		return err
	}
	w.wmu.Lock()
	w.conn.SetWriteDeadline(deadline())
	err = w.conn.WriteMessage(websocket.TextMessage, body)
	w.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("rpc: websocket write: %w", err)
	}
	select {
	case r, ok := <-p.ch:
		if !ok {
			return w.Err()
		}
		if r.Error != nil {
			return r.Error
		}
		if result != nil {
			return json.Unmarshal(r.Result, result)
		}
		return nil
	case <-ctx.Done():
		w.mu.Lock()
		delete(w.pending, id)
		w.mu.Unlock()
		return ctx.Err()
	}
}

func deadline() time.Time { return time.Now().Add(10 * time.Second) }

// Subscribe starts a subscription: kind is api.SubNewHeads or
// api.SubValidatorSet (arg nil), api.SubAccount (an address) or api.SubTx
// (a hash).
func (w *WSClient) Subscribe(ctx context.Context, kind string, arg any) (*Subscription, error) {
	s := &Subscription{Kind: kind, w: w, ch: make(chan json.RawMessage, subBuffer)}
	params := []any{kind}
	if arg != nil {
		params = append(params, arg)
	}
	if err := w.call(ctx, api.MethodSubscribe, nil, s, params...); err != nil {
		return nil, err
	}
	return s, nil
}

// SubscribeNewHeads delivers every new block header.
func (w *WSClient) SubscribeNewHeads(ctx context.Context) (*Subscription, error) {
	return w.Subscribe(ctx, api.SubNewHeads, nil)
}

// SubscribeAccount delivers every committed transaction addr sends or receives.
func (w *WSClient) SubscribeAccount(ctx context.Context, addr crypto.Address) (*Subscription, error) {
	return w.Subscribe(ctx, api.SubAccount, addr)
}

// SubscribeTx delivers the transaction once it commits (and a "dropped"
// notice if the node's mempool lets it go).
func (w *WSClient) SubscribeTx(ctx context.Context, h crypto.Hash) (*Subscription, error) {
	return w.Subscribe(ctx, api.SubTx, h)
}

// SubscribeValidatorSet delivers an api.ValidatorSetChange for every block
// that changes the validator set (NextValidatorSet reads them).
func (w *WSClient) SubscribeValidatorSet(ctx context.Context) (*Subscription, error) {
	return w.Subscribe(ctx, api.SubValidatorSet, nil)
}

// NextValidatorSet returns the next notification of a validatorSet
// subscription.
func (s *Subscription) NextValidatorSet(ctx context.Context) (*api.ValidatorSetChange, error) {
	raw, err := s.Next(ctx)
	if err != nil {
		return nil, err
	}
	var c api.ValidatorSetChange
	return &c, json.Unmarshal(raw, &c)
}

// Next returns the next notification's result, or an error once the
// connection has ended (saying why) or ctx ends.
func (s *Subscription) Next(ctx context.Context) (json.RawMessage, error) {
	select {
	case r, ok := <-s.ch:
		if !ok {
			return nil, s.w.Err()
		}
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// NextHead returns the next notification of a newHeads subscription.
func (s *Subscription) NextHead(ctx context.Context) (*api.Head, error) {
	raw, err := s.Next(ctx)
	if err != nil {
		return nil, err
	}
	var h api.Head
	return &h, json.Unmarshal(raw, &h)
}

// C is the channel of raw notification results; it is closed when the
// connection ends.
func (s *Subscription) C() <-chan json.RawMessage { return s.ch }

// Unsubscribe ends the subscription.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	var ok bool
	err := s.w.Call(ctx, api.MethodUnsubscribe, &ok, s.ID)
	s.w.mu.Lock()
	delete(s.w.subs, s.ID)
	s.w.mu.Unlock()
	return err
}
