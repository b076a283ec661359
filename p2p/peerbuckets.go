package p2p

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// peerBuckets is a token bucket per peer (transactions accepted, bytes
// served). It is safe for concurrent use and bounded to max peers: a bucket
// that has refilled is the same as a new one, so full buckets are dropped
// when the map is full, and while every bucket is in use a new peer gets
// nothing until one refills.
type peerBuckets struct {
	rate, burst float64
	max         int
	now         func() time.Time

	mu      sync.Mutex
	buckets map[peer.ID]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newPeerBuckets(rate, burst float64, max int) *peerBuckets {
	return &peerBuckets{rate: rate, burst: burst, max: max, now: time.Now, buckets: make(map[peer.ID]*bucket)}
}

// allow takes n tokens from p's bucket if it holds them all.
func (l *peerBuckets) allow(p peer.ID, n int) bool {
	return l.take(p, n, false)
}

// spend takes n tokens from p's bucket while it is not empty, so one item
// larger than the burst can still pass; the bucket then stays in debt until
// the rate pays it back.
func (l *peerBuckets) spend(p peer.ID, n int) bool {
	return l.take(p, n, true)
}

func (l *peerBuckets) take(p peer.ID, n int, debt bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[p]
	if !ok {
		if len(l.buckets) >= l.max {
			for id, old := range l.buckets {
				if old.tokens+now.Sub(old.at).Seconds()*l.rate >= l.burst {
					delete(l.buckets, id)
				}
			}
			if len(l.buckets) >= l.max {
				return false
			}
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[p] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if (debt && b.tokens <= 0) || (!debt && b.tokens < float64(n)) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// forget drops p's bucket.
func (l *peerBuckets) forget(p peer.ID) {
	l.mu.Lock()
	delete(l.buckets, p)
	l.mu.Unlock()
}
