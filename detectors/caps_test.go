package detectors

import (
	"fmt"
	"testing"
	"time"

	"github.com/twicehq/twice/twicetype"
)

// TestCapsBoundStateAndCountEvictions: a key-cardinality explosion stays
// within the caps, every early release is counted, and a duplicate among
// the records still held is found.
func TestCapsBoundStateAndCountEvictions(t *testing.T) {
	s := New(Options{MaxJobs: 50, MaxKeys: 10, MaxEntities: 20})
	for i := 0; i < 1000; i++ {
		at := time.Duration(i) * time.Millisecond
		s.Process(effectAt(at, fmt.Sprintf("e-%d", i), fmt.Sprintf("k-%d", i)))
		s.Process(jobAt(at, fmt.Sprintf("j-%d", i), twicetype.JobEnqueued, fmt.Sprintf("job-%d", i), "q"))
		jobs, keys, entities := s.Open()
		if jobs > 50 || keys > 10 || entities > 20 {
			t.Fatalf("after %d: jobs=%d keys=%d entities=%d, above the caps", i, jobs, keys, entities)
		}
	}
	if got, want := s.Evicted(), int64((1000-50)+(1000-10)+(1000-20)); got != want {
		t.Fatalf("evicted %d, want %d", got, want)
	}
	// k-999 is held: a second effect on it is a duplicate.
	s.Process(effectAt(time.Second, "e-dup", "k-999"))
	s.Finish(int64(time.Second))
	var dup bool
	for _, f := range s.Findings().Sorted() {
		if f.Detector == twicetype.DuplicateEffect && f.Subject == "k-999" {
			dup = true
		}
	}
	if !dup {
		t.Fatal("duplicate of a key still held not found")
	}
}

// TestEvictionKeepsTheRecentlySeen: a key seen again recently survives
// the cap; the one idle longest goes.
func TestEvictionKeepsTheRecentlySeen(t *testing.T) {
	s := New(Options{MaxKeys: 2, Detectors: map[string]Settings{}})
	s.Process(effectAt(0, "a1", "a"))
	s.Process(effectAt(1, "b1", "b"))
	s.Process(effectAt(2, "a2", "a")) // a is seen again
	s.Process(effectAt(3, "c1", "c")) // evicts b, not a
	if _, ok := s.keys["a"]; !ok {
		t.Fatal("a, seen last at 2, was evicted before b, seen last at 1")
	}
	if _, ok := s.keys["b"]; ok {
		t.Fatal("b is still held")
	}
}
