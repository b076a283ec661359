package rpc

import "sync/atomic"

// byteBudget is a count of bytes held against a limit, with its high-water
// mark. It bounds memory by bytes where a count of messages would not: one
// answer can be a few bytes or megabytes.
type byteBudget struct {
	limit int64
	used  atomic.Int64
	peak  atomic.Int64
}

func newByteBudget(limit int64) *byteBudget { return &byteBudget{limit: limit} }

// acquire takes n bytes if they fit under the limit.
func (b *byteBudget) acquire(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			b.notePeak(u + n)
			return true
		}
	}
}

// force takes n bytes even past the limit: for the few bytes of an error
// answer or of batch framing, which are bounded by the call count.
func (b *byteBudget) force(n int64) { b.notePeak(b.used.Add(n)) }

// room reports whether n more bytes fit now.
func (b *byteBudget) room(n int64) bool { return b.used.Load()+n <= b.limit }

// release gives back n bytes.
func (b *byteBudget) release(n int64) { b.used.Add(-n) }

func (b *byteBudget) notePeak(v int64) { notePeak(&b.peak, v) }

// notePeak raises peak to v if v is higher.
func notePeak(peak *atomic.Int64, v int64) {
	for {
		p := peak.Load()
		if v <= p || peak.CompareAndSwap(p, v) {
			return
		}
	}
}
