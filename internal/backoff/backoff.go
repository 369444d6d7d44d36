// Package backoff computes retry delays: exponential, capped, with full
// jitter, so that many twice processes (or partitions) retrying a service
// that came back do not hit it in step.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the delay state of one retried operation. The zero value is
// not usable; use New. It is not safe for concurrent use.
type Backoff struct {
	min, max time.Duration
	cur      time.Duration
	rand     func() float64
}

// New returns a Backoff whose delays start near min and double on each
// failure up to max.
func New(min, max time.Duration) *Backoff {
	if min <= 0 {
		min = 100 * time.Millisecond
	}
	if max < min {
		max = min
	}
	return &Backoff{min: min, max: max, cur: min, rand: rand.Float64}
}

// Next returns the delay before the next attempt: uniformly random in
// [cur/2, cur], where cur doubles from min to max on each call.
func (b *Backoff) Next() time.Duration {
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	half := d / 2
	return half + time.Duration(b.rand()*float64(d-half))
}

// Reset starts the delays from min again, after a success.
func (b *Backoff) Reset() { b.cur = b.min }

// Wait sleeps for Next, or until ctx ends; it returns ctx's error then.
func (b *Backoff) Wait(ctx context.Context) error {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
