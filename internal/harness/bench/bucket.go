package bench

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Bucket is a token bucket shared by the submission workers: tokens
// accrue at Rate per second up to Burst, and each transfer takes one. A
// taker that finds the bucket empty reserves the next token and waits for
// it, so takers are served in the order they asked and the long-run rate
// never exceeds Rate, however many take at once. Safe for concurrent use.
type Bucket struct {
	rate  float64 // tokens per second
	burst float64

	mu     sync.Mutex
	tokens float64 // may go negative: tokens reserved ahead of time
	last   time.Time
}

// NewBucket returns a full bucket refilling at rate tokens per second and
// holding at most burst (at least 1). It starts full at now.
func NewBucket(rate float64, burst int, now time.Time) (*Bucket, error) {
	if rate <= 0 {
		return nil, fmt.Errorf("token bucket: rate %v must be positive", rate)
	}
	if burst < 1 {
		burst = 1
	}
	return &Bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}, nil
}

// NewPhasedBucket is NewBucket for one of many buckets started together:
// it starts holding phase (0 to 1) of a token, so its first token is due
// (1-phase)/rate after now. Giving n buckets the phases 0, 1/n, 2/n...
// spreads their tokens evenly instead of releasing them in lock-step.
func NewPhasedBucket(rate float64, burst int, now time.Time, phase float64) (*Bucket, error) {
	b, err := NewBucket(rate, burst, now)
	if err != nil {
		return nil, err
	}
	if phase < 0 || phase >= 1 {
		return nil, fmt.Errorf("token bucket: phase %v is outside [0, 1)", phase)
	}
	b.tokens = phase
	return b, nil
}

// Reserve takes one token at time now and returns how long the caller must
// wait before using it (0 when one was available).
func (b *Bucket) Reserve(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.After(b.last) {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
		b.last = now
	}
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// Wait takes one token, waiting until it is due or ctx ends (then it
// returns ctx's error; the reserved token is not given back, which only
// matters at shutdown).
func (b *Bucket) Wait(ctx context.Context) error {
	d := b.Reserve(time.Now())
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
