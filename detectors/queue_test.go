package detectors

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestTimersPopInDeadlineOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var q timers[int]
	var want []int64
	at := int64(0)
	for i := 0; i < 5000; i++ {
		// Mostly increasing deadlines, some out of order.
		at += r.Int64N(10)
		d := at
		if r.IntN(10) == 0 {
			d -= r.Int64N(100)
		}
		q.push(d, i)
		want = append(want, d)
	}
	slices.Sort(want)
	var got []int64
	q.popUntil(want[len(want)/2], false, func(at int64, _ int) { got = append(got, at) })
	for q.len() > 0 {
		got = append(got, q.pop().at)
	}
	if !slices.Equal(got, want) {
		t.Fatal("timers did not pop in deadline order")
	}
}

func TestTimersPopUntilBoundary(t *testing.T) {
	var q timers[string]
	q.push(10, "a")
	q.push(20, "b")
	var got []string
	q.popUntil(20, false, func(_ int64, v string) { got = append(got, v) })
	if !slices.Equal(got, []string{"a"}) {
		t.Fatalf("exclusive popUntil(20) = %v, want [a]", got)
	}
	q.popUntil(20, true, func(_ int64, v string) { got = append(got, v) })
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("inclusive popUntil(20) = %v, want [a b]", got)
	}
}

func TestFIFOGrowsAndKeepsOrder(t *testing.T) {
	var q fifo[int]
	for i := 0; i < 100; i++ {
		q.push(i)
		if i%3 == 0 {
			q.pop()
		}
	}
	prev := -1
	for q.len() > 0 {
		v := q.pop()
		if v <= prev {
			t.Fatalf("fifo out of order: %d after %d", v, prev)
		}
		prev = v
	}
}
