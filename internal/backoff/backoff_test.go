package backoff

import (
	"context"
	"testing"
	"time"
)

// TestNextDoublesWithJitter: delays double up to the cap, each within
// [cur/2, cur], and Reset starts over.
func TestNextDoublesWithJitter(t *testing.T) {
	for _, r := range []float64{0, 0.5, 0.999} {
		b := New(100*time.Millisecond, time.Second)
		b.rand = func() float64 { return r }
		want := []time.Duration{100, 200, 400, 800, 1000, 1000}
		for i, w := range want {
			cur := w * time.Millisecond
			got := b.Next()
			if got < cur/2 || got > cur {
				t.Fatalf("rand %v, attempt %d: delay %v, want within [%v, %v]", r, i+1, got, cur/2, cur)
			}
			if exp := cur/2 + time.Duration(r*float64(cur-cur/2)); got != exp {
				t.Fatalf("rand %v, attempt %d: delay %v, want %v", r, i+1, got, exp)
			}
		}
		b.Reset()
		if got := b.Next(); got > 100*time.Millisecond {
			t.Fatalf("after Reset: delay %v, want at most 100ms", got)
		}
	}
}

// TestJitterSpreads: two retriers started together do not wait the same
// time (with the real random source).
func TestJitterSpreads(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[New(time.Second, time.Minute).Next()] = true
	}
	if len(seen) < 10 {
		t.Fatalf("20 first delays took %d distinct values: no jitter", len(seen))
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New(time.Hour, time.Hour).Wait(ctx); err != context.Canceled {
		t.Fatalf("Wait on a cancelled context: %v", err)
	}
}
