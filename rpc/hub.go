package rpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/mempool"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// hub fans the node's events out to WebSocket subscriptions and to calls
// waiting for a transaction to commit. It never blocks on a client: a
// subscriber whose queue is full is dropped (see wsConn.notify).
type hub struct {
	s *Server

	mu      sync.Mutex
	subs    map[*subscription]struct{}
	waiters map[crypto.Hash]map[*waiter]struct{}
}

func newHub(s *Server) *hub {
	return &hub{s: s, subs: make(map[*subscription]struct{}), waiters: make(map[crypto.Hash]map[*waiter]struct{})}
}

// subscription is one WebSocket subscription.
type subscription struct {
	id   string
	conn *wsConn
	kind string
	addr crypto.Address // account subscriptions
	hash crypto.Hash    // tx subscriptions
	// active is set once the subscribe answer is queued, so no
	// notification overtakes it.
	active atomic.Bool
	// done is set when a tx subscription delivered its final notification.
	done atomic.Bool
}

// waiter is a call waiting for one transaction's fate.
type waiter struct{ ch chan waitOutcome }

// waitOutcome: committed when dropped is nil.
type waitOutcome struct{ dropped *mempool.Code }

func newSubID() string {
	var b [8]byte
	rand.Read(b[:])
	return "0x" + hex.EncodeToString(b[:])
}

func (h *hub) add(s *subscription) {
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
}

func (h *hub) remove(s *subscription) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// wait registers interest in hash's fate; call it before submitting.
func (h *hub) wait(hash crypto.Hash) *waiter {
	w := &waiter{ch: make(chan waitOutcome, 1)}
	h.mu.Lock()
	m := h.waiters[hash]
	if m == nil {
		m = make(map[*waiter]struct{})
		h.waiters[hash] = m
	}
	m[w] = struct{}{}
	h.mu.Unlock()
	return w
}

func (h *hub) unwait(hash crypto.Hash, w *waiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.waiters[hash]; m != nil {
		delete(m, w)
		if len(m) == 0 {
			delete(h.waiters, hash)
		}
	}
}

func (w *waiter) deliver(o waitOutcome) {
	select {
	case w.ch <- o:
	default: // already told
	}
}

// run pumps the node's events until ctx ends. A feed that fell behind is
// replaced, and what its loss may have hidden is re-checked in the store.
func (h *hub) run(ctx context.Context, feed EventFeed) error {
	for {
		err := h.pump(ctx, feed)
		feed.Close()
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, ErrFeedLost) {
			return fmt.Errorf("rpc: node events: %w", err)
		}
		h.s.log.Warn("rpc: fell behind the node's events; resubscribing")
		if feed, err = h.s.b.Subscribe(feedBuffer); err != nil {
			return fmt.Errorf("rpc: subscribe to node events: %w", err)
		}
		h.recheck()
	}
}

func (h *hub) pump(ctx context.Context, feed EventFeed) error {
	for {
		ev, err := feed.Next(ctx)
		if err != nil {
			return err
		}
		switch {
		case ev.Block != nil:
			h.dispatchBlock(ev.Block)
		case ev.Removed != nil:
			h.dispatchRemoved(ev.Removed)
		}
	}
}

// recheck resolves waiters and tx subscriptions whose transaction
// committed while events were lost.
func (h *hub) recheck() {
	h.mu.Lock()
	var ws []*waiter
	for hash, m := range h.waiters {
		if h.s.isCommitted(hash) {
			for w := range m {
				ws = append(ws, w)
			}
		}
	}
	var subs []*subscription
	for s := range h.subs {
		if s.kind == api.SubTx && s.active.Load() {
			subs = append(subs, s)
		}
	}
	h.mu.Unlock()
	for _, w := range ws {
		w.deliver(waitOutcome{})
	}
	for _, s := range subs {
		h.s.checkTxSub(s)
	}
}

func (h *hub) activeSubs() []*subscription {
	out := make([]*subscription, 0, len(h.subs))
	for s := range h.subs {
		if s.active.Load() {
			out = append(out, s)
		}
	}
	return out
}

func (h *hub) dispatchBlock(b *ledger.Block) {
	hashes := b.TxHashes()
	h.mu.Lock()
	for _, th := range hashes {
		for w := range h.waiters[th] {
			w.deliver(waitOutcome{})
		}
	}
	subs := h.activeSubs()
	h.mu.Unlock()
	if len(subs) == 0 {
		return
	}

	var head []byte
	var setChange []byte
	setChecked := false
	var byAddr map[crypto.Address][]api.AccountEvent
	var index map[crypto.Hash]int
	var proofs []crypto.MerkleProof
	for _, sub := range subs {
		switch sub.kind {
		case api.SubNewHeads:
			if head == nil {
				head, _ = json.Marshal(api.Head{Height: api.Uint64(b.Height()), Hash: b.Hash(), NumTxs: len(b.Txs), Header: b.Header})
			}
			sub.conn.notify(sub, head)
		case api.SubValidatorSet:
			if !setChecked {
				setChecked = true
				setChange = h.s.validatorSetChange(b.Height())
			}
			if setChange != nil {
				sub.conn.notify(sub, setChange)
			}
		case api.SubAccount:
			if byAddr == nil {
				byAddr = accountEvents(b, hashes)
			}
			for _, ev := range byAddr[sub.addr] {
				buf, _ := json.Marshal(ev)
				sub.conn.notify(sub, buf)
			}
		case api.SubTx:
			if index == nil {
				index = make(map[crypto.Hash]int, len(hashes))
				for i, th := range hashes {
					index[th] = i
				}
			}
			i, ok := index[sub.hash]
			if !ok {
				continue
			}
			if proofs == nil {
				items := make([][]byte, len(hashes))
				for j := range hashes {
					items[j] = hashes[j][:]
				}
				_, proofs = crypto.MerkleProofs(items)
			}
			p := api.TxProof{TxRoot: b.Header.TxRoot, Proof: proofs[i]}
			reason, err := h.s.txError(b.Txs[i], sub.hash)
			if err != nil {
				h.s.log.Error("rpc: read a committed transaction's error", "tx", sub.hash, "err", err)
			}
			buf, _ := json.Marshal(describeCommitted(b, i, sub.hash, &p, reason))
			sub.conn.finish(sub, buf)
		}
	}
}

// validatorSetChange is the notification of validatorSet subscriptions
// for block h: the set of height h+2 when block h changed it (it differs
// from the set of h+1), else nil.
func (s *Server) validatorSetChange(h uint64) []byte {
	cur, err := s.b.ValidatorsAt(h + 1)
	if err != nil {
		s.log.Error("rpc: validator set of the next height", "height", h+1, "err", err)
		return nil
	}
	next, err := s.b.ValidatorsAt(h + 2)
	if err != nil {
		s.log.Error("rpc: validator set two heights ahead", "height", h+2, "err", err)
		return nil
	}
	if next.Equal(cur) {
		return nil
	}
	buf, _ := json.Marshal(api.ValidatorSetChange{BlockHeight: api.Uint64(h), Validators: *describeSet(h+2, next)})
	return buf
}

// accountEvents lists, per address, the block's transactions it sent or
// that name it (Tx.Counterparty), in block order: the same transactions
// its history lists.
func accountEvents(b *ledger.Block, hashes []crypto.Hash) map[crypto.Address][]api.AccountEvent {
	m := make(map[crypto.Address][]api.AccountEvent)
	for i, tx := range b.Txs {
		at := accountTx(b, i, hashes[i])
		m[at.From] = append(m[at.From], api.AccountEvent{Address: at.From, Direction: "sent", AccountTx: at})
		if to, ok := tx.Counterparty(); ok && to != at.From { // a delegation to one's own validator is "sent" only
			m[to] = append(m[to], api.AccountEvent{Address: to, Direction: "received", AccountTx: at})
		}
	}
	return m
}

func (h *hub) dispatchRemoved(r *RemovedTx) {
	reason := r.Reason
	h.mu.Lock()
	for w := range h.waiters[r.Hash] {
		w.deliver(waitOutcome{dropped: &reason})
	}
	var hit []*subscription
	for s := range h.subs {
		if s.kind == api.SubTx && s.hash == r.Hash && s.active.Load() {
			hit = append(hit, s)
		}
	}
	h.mu.Unlock()
	if len(hit) == 0 {
		return
	}
	// The subscription stays: another node may still commit the
	// transaction; the client decides whether to keep waiting.
	buf, _ := json.Marshal(api.Transaction{Hash: r.Hash, Status: api.TxDropped, Reason: reason.String()})
	for _, s := range hit {
		s.conn.notify(s, buf)
	}
}
