package chaos

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
)

// pollEvery is how often the monitor asks every node for its status: the
// resolution of the recovery times it measures.
const pollEvery = 100 * time.Millisecond

// monitor follows every slot's latest committed height by polling its
// status, and compares the block hash each node reports for each height,
// so a fork is seen when it happens rather than only at the end.
type monitor struct {
	c     cluster
	slots int

	mu      sync.Mutex
	height  []uint64
	up      []bool // the last poll was answered
	hashes  map[uint64]seenHash
	forks   map[uint64]string // the first conflict seen at each height
	changed chan struct{}     // closed and replaced on every change
}

type seenHash struct {
	hash crypto.Hash
	node int
}

func newMonitor(c cluster) *monitor {
	n := c.Validators() + 1
	return &monitor{c: c, slots: n, height: make([]uint64, n), up: make([]bool, n),
		hashes: make(map[uint64]seenHash), forks: make(map[uint64]string), changed: make(chan struct{})}
}

// run polls until ctx ends; it owns one goroutine per slot and returns
// when they have all stopped.
func (m *monitor) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < m.slots; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(pollEvery)
			defer t.Stop()
			for {
				m.poll(ctx, i)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
}

func (m *monitor) poll(ctx context.Context, i int) {
	cl := m.c.Client(i)
	if cl == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := cl.Status(cctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if m.up[i] {
			m.up[i] = false
			m.notify()
		}
		return
	}
	h := uint64(st.LatestHeight)
	if h > 0 {
		if prev, ok := m.hashes[h]; !ok {
			m.hashes[h] = seenHash{st.LatestBlockHash, i}
		} else if _, seen := m.forks[h]; !seen && prev.hash != st.LatestBlockHash {
			m.forks[h] = fmt.Sprintf("node%d reported block %s, node%d reported %s", prev.node, prev.hash, i, st.LatestBlockHash)
		}
	}
	if !m.up[i] || m.height[i] != h {
		m.up[i], m.height[i] = true, h
		m.notify()
	}
}

func (m *monitor) notify() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// view is what the monitor knows at one moment.
type view struct {
	height []uint64
	up     []bool
}

// top is the highest height any of nodes reached.
func (v view) top(nodes []int) uint64 {
	var t uint64
	for _, i := range nodes {
		t = max(t, v.height[i])
	}
	return t
}

// all reports whether every one of nodes is up at height h or above.
func (v view) all(nodes []int, h uint64) bool {
	for _, i := range nodes {
		if !v.up[i] || v.height[i] < h {
			return false
		}
	}
	return true
}

func (m *monitor) view() view {
	m.mu.Lock()
	defer m.mu.Unlock()
	return view{height: append([]uint64(nil), m.height...), up: append([]bool(nil), m.up...)}
}

// waitFor waits until cond holds of the monitor's view, following its
// updates, for at most timeout. It returns how long it waited.
func (m *monitor) waitFor(ctx context.Context, timeout time.Duration, cond func(view) bool) (time.Duration, error) {
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		v := view{height: append([]uint64(nil), m.height...), up: append([]bool(nil), m.up...)}
		ch := m.changed
		m.mu.Unlock()
		if cond(v) {
			return time.Since(start), nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			return time.Since(start), fmt.Errorf("not within %s (heights %v, up %v)", timeout, v.height, v.up)
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		}
	}
}

// forksSeen returns, for each height at which two nodes reported
// different blocks, the first such pair.
func (m *monitor) forksSeen() map[uint64]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.forks)
}
