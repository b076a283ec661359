package node

import "time"

// Clock is the node's source of time: block timestamps and consensus
// timers. Tests inject their own.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of time.Timer the driver uses.
type Timer interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer returns a stopped-or-running wrapper over time.Timer.
func (SystemClock) NewTimer(d time.Duration) Timer { return &sysTimer{t: time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (s *sysTimer) C() <-chan time.Time { return s.t.C }

// Reset reprograms the timer; since Go 1.23 a Reset timer never delivers a
// stale value, so no draining is needed.
func (s *sysTimer) Reset(d time.Duration) { s.t.Reset(d) }
func (s *sysTimer) Stop()                 { s.t.Stop() }
