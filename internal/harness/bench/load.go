package bench

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// requestTimeout bounds one ledger_sendTransaction call.
const requestTimeout = 10 * time.Second

// Retry back-off after a refusal that may pass later (pool full...).
const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = 200 * time.Millisecond
)

// loader runs the submission workers and counts what the nodes answered.
type loader struct {
	cfg    *Config
	plan   *plan
	nw     *network
	t0     time.Time
	slots  chan struct{}  // closed loop: one element per admitted, uncommitted transfer
	series *secondCounter // refusals per second

	mu       sync.Mutex
	refusals map[string]int64
	samples  map[string]string // one error message per reason, for the report

	firstTries atomic.Int64
	admitted   atomic.Int64
	abandoned  atomic.Int64
	retries    atomic.Int64
	exhausted  atomic.Int64 // workers that sent every transfer they had
}

// worker is one sequential sender: it owns accts and sends their
// transfers, in nonce order, to one node.
type worker struct {
	node  int
	c     *client.Client
	accts []int
	// bucket paces an open-loop run: its rate is the run's rate times the
	// worker's share of the accounts, so every account sends at the same
	// rate whatever the worker sizes.
	bucket *Bucket
}

// workers assigns every account to one worker: account a goes to target
// node targets[a mod len(targets)], and among that node's perNode workers
// round-robin. Each worker has its own client (so its own keep-alive
// connection) to endpoints[node].
func workers(accounts int, targets []int, perNode int, endpoints []string) ([]*worker, error) {
	ws := make([]*worker, len(targets)*perNode)
	for i := range ws {
		n := targets[i/perNode]
		c, err := client.New(endpoints[n])
		if err != nil {
			return nil, fmt.Errorf("worker for node %d: %w", n, err)
		}
		ws[i] = &worker{node: n, c: c}
	}
	for a := 0; a < accounts; a++ {
		t := a % len(targets)
		w := (a / len(targets)) % perNode
		ws[t*perNode+w].accts = append(ws[t*perNode+w].accts, a)
	}
	out := ws[:0]
	for _, w := range ws {
		if len(w.accts) > 0 {
			out = append(out, w)
		}
	}
	return out, nil
}

// run sends w's transfers until they run out or stop ends. Requests
// already under way when stop ends are completed (under ctx), so that
// every answer is counted.
func (l *loader) run(ctx, stop context.Context, w *worker) {
	dead := make([]bool, len(w.accts))
	for k := 0; k < l.plan.perAcct; k++ {
		for i, a := range w.accts {
			if dead[i] {
				continue
			}
			if stop.Err() != nil {
				return
			}
			t := &l.plan.txs[a*l.plan.perAcct+k]
			if w.bucket != nil {
				if w.bucket.Wait(stop) != nil {
					return
				}
			} else {
				select {
				case l.slots <- struct{}{}:
					t.slot.Store(true)
				case <-stop.Done():
					return
				}
			}
			if !l.send(ctx, stop, w, t) {
				dead[i] = true
			}
		}
	}
	l.exhausted.Add(1)
}

// send submits t until a node admits it, it is refused for good, or stop
// ends. It returns false when the account's later transfers cannot pass
// either (they would all wait behind a nonce that never commits).
func (l *loader) send(ctx, stop context.Context, w *worker, t *transfer) bool {
	param := make([]byte, 0, 2*len(t.enc)+2)
	param = append(param, '"')
	param = hex.AppendEncode(param, t.enc)
	param = append(param, '"')
	backoff := minBackoff
	for attempt := 0; ; attempt++ {
		start := max(1, time.Since(l.t0).Nanoseconds()) // 0 means "never"
		if attempt == 0 {
			t.firstTry.Store(start)
			l.firstTries.Add(1)
		} else {
			l.retries.Add(1)
		}
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		var res api.SendResult
		err := w.c.Call(rctx, api.MethodSendTransaction, &res, json.RawMessage(param))
		cancel()
		if err == nil && res.Hash != t.hash {
			err = fmt.Errorf("node answered hash %s for transfer %s", res.Hash, t.hash)
		}
		reason, verdict := classify(err, attempt)
		switch verdict {
		case admittedEarlier:
			// Some earlier attempt got in; which one is unknown, so the
			// latency is counted from the first (an over-estimate).
			start = t.firstTry.Load()
			fallthrough
		case admitted:
			t.sent.Store(start)
			t.state.Store(stateAdmitted)
			l.admitted.Add(1)
			return true
		case refusedForGood:
			l.refuse(reason, err)
			t.state.Store(stateAbandoned)
			l.abandoned.Add(1)
			l.release(t)
			return false
		}
		l.refuse(reason, err)
		if ctx.Err() != nil {
			l.release(t)
			return true
		}
		timer := time.NewTimer(backoff)
		select {
		case <-timer.C:
		case <-stop.Done():
			timer.Stop()
			l.release(t) // never admitted: it will not commit
			return true
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// release gives back t's in-flight slot, if it holds one.
func (l *loader) release(t *transfer) {
	if l.slots != nil && t.slot.CompareAndSwap(true, false) {
		<-l.slots
	}
}

func (l *loader) refuse(reason string, err error) {
	l.series.add(time.Since(l.t0), 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refusals[reason]++
	if _, ok := l.samples[reason]; !ok && err != nil {
		l.samples[reason] = err.Error()
	}
}

// verdict is what a node's answer means for a transfer.
type verdict int

const (
	admitted        verdict = iota
	admittedEarlier         // an earlier attempt, whose answer was lost, was admitted
	retry                   // refused for now: the same bytes may pass later
	refusedForGood          // no retry can succeed
)

// classify turns the answer to the attempt-th submission of a transfer
// into a verdict and the refusal's reason (an api.CodeName, "transport",
// or "wrong_hash").
func classify(err error, attempt int) (string, verdict) {
	if err == nil {
		return "", admitted
	}
	code, ok := client.CodeOf(err)
	if !ok {
		if errors.Is(err, context.Canceled) {
			return "canceled", retry
		}
		var te *client.TransportError
		if errors.As(err, &te) || errors.Is(err, context.DeadlineExceeded) {
			return "transport", retry
		}
		return "wrong_hash", refusedForGood
	}
	switch code {
	case api.CodeDuplicate:
		// Already pending: an earlier attempt was admitted after all.
		return "", admittedEarlier
	case api.CodeNonceTooLow:
		if attempt > 0 {
			// An earlier attempt was admitted and has committed.
			return "", admittedEarlier
		}
		return api.CodeName(code), refusedForGood
	case api.CodeMempoolFull, api.CodeSenderLimit, api.CodeNonceGap, api.CodeStateUnavailable,
		api.CodeUnavailable, api.CodeTimeout, api.CodeInternal:
		return api.CodeName(code), retry
	}
	return api.CodeName(code), refusedForGood
}

// refusalReport returns the refusals by reason, with one message each.
func (l *loader) refusalReport() []Refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Refusal, 0, len(l.refusals))
	for r, n := range l.refusals {
		out = append(out, Refusal{Reason: r, Count: n, Example: l.samples[r]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out
}

// secondCounter counts events per second since a start, safely from many
// goroutines.
type secondCounter struct {
	counts []atomic.Int64
}

func newSecondCounter(seconds int) *secondCounter {
	return &secondCounter{counts: make([]atomic.Int64, seconds)}
}

func (s *secondCounter) add(since time.Duration, n int64) {
	if since < 0 {
		return
	}
	if i := int(since / time.Second); i < len(s.counts) {
		s.counts[i].Add(n)
	}
}

func (s *secondCounter) get(i int) int64 {
	if i < 0 || i >= len(s.counts) {
		return 0
	}
	return s.counts[i].Load()
}
