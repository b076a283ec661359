package bench

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketServesBurstThenPaces(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b, err := NewBucket(100, 3, t0) // one token every 10 ms, 3 at once
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	for range 6 {
		waits = append(waits, b.Reserve(t0))
	}
	want := []time.Duration{0, 0, 0, 10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}
	if !slices.Equal(waits, want) {
		t.Fatalf("waits at one instant = %v, want %v", waits, want)
	}
	// 100 ms later the 3 reserved tokens are paid back and 7 accrued, but
	// the bucket holds at most 3.
	for i := range 3 {
		if w := b.Reserve(t0.Add(100 * time.Millisecond)); w != 0 {
			t.Fatalf("token %d after refill waits %v", i, w)
		}
	}
	if w := b.Reserve(t0.Add(100 * time.Millisecond)); w != 10*time.Millisecond {
		t.Fatalf("token beyond the burst waits %v, want 10ms", w)
	}
}

func TestBucketLongRunRateIsExact(t *testing.T) {
	t0 := time.Unix(0, 0)
	b, _ := NewBucket(1000, 1, t0)
	// Take tokens as each becomes due, for 10 simulated seconds.
	now, n := t0, 0
	for now.Before(t0.Add(10 * time.Second)) {
		now = now.Add(b.Reserve(now))
		n++
	}
	if n < 9999 || n > 10001 {
		t.Fatalf("%d tokens in 10 s at 1000/s", n)
	}
}

func TestBucketConcurrentTakersGetDistinctSlots(t *testing.T) {
	t0 := time.Unix(0, 0)
	b, _ := NewBucket(1000, 1, t0)
	const takers = 50
	waits := make([]time.Duration, takers)
	var wg sync.WaitGroup
	for i := range takers {
		wg.Add(1)
		go func() { defer wg.Done(); waits[i] = b.Reserve(t0) }()
	}
	wg.Wait()
	slices.Sort(waits)
	for i, w := range waits {
		if want := time.Duration(i) * time.Millisecond; w != want {
			t.Fatalf("sorted wait %d = %v, want %v (all: %v)", i, w, want, waits)
		}
	}
}

func TestBucketWaitEndsWithContext(t *testing.T) {
	b, _ := NewBucket(0.001, 1, time.Now()) // the second token is due in 1000 s
	if err := b.Wait(context.Background()); err != nil {
		t.Fatalf("first token: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Wait(ctx); err == nil {
		t.Fatal("Wait returned nil for a token due in 1000 s with a cancelled context")
	}
}

func TestNewBucketRefusesNonPositiveRate(t *testing.T) {
	if _, err := NewBucket(0, 1, time.Now()); err == nil {
		t.Fatal("rate 0 accepted")
	}
}

func TestPhasedBucketsSpreadTheirFirstTokens(t *testing.T) {
	t0 := time.Unix(0, 0)
	var firsts []time.Duration
	for i := range 4 {
		b, err := NewPhasedBucket(10, 1, t0, float64(i)/4) // one token per 100 ms each
		if err != nil {
			t.Fatal(err)
		}
		firsts = append(firsts, b.Reserve(t0))
	}
	want := []time.Duration{100 * time.Millisecond, 75 * time.Millisecond, 50 * time.Millisecond, 25 * time.Millisecond}
	if !slices.Equal(firsts, want) {
		t.Fatalf("first tokens due after %v, want %v", firsts, want)
	}
	if _, err := NewPhasedBucket(10, 1, t0, 1); err == nil {
		t.Fatal("phase 1 accepted")
	}
}
