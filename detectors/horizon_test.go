package detectors

import (
	"fmt"
	"testing"
	"time"

	"github.com/twicehq/twice/twicetype"
)

func effectAt(t time.Duration, id, key string) *twicetype.Event {
	return &twicetype.Event{
		ID: id, Time: int64(t), Kind: twicetype.Effect,
		Effect: "email.sent", EffectKey: key, Entity: "order:" + key,
	}
}

// TestHorizonReleasesIdleState checks both sides of the horizon: two
// effects of one key within it are a duplicate, two effects further apart
// are not linked, and the state of idle keys is released as event time
// moves on, so memory follows open state rather than input size.
func TestHorizonReleasesIdleState(t *testing.T) {
	s := New(Options{Horizon: 24 * time.Hour})
	h := time.Hour
	s.Process(effectAt(0, "e-1", "near"))
	s.Process(effectAt(1*h, "e-2", "far"))
	s.Process(effectAt(23*h, "e-3", "near")) // 23h after e-1: a duplicate
	s.Process(effectAt(26*h, "e-4", "far"))  // 25h after e-2: beyond the horizon
	for i := 0; i < 1000; i++ {
		s.Process(effectAt(30*h+time.Duration(i)*time.Minute, fmt.Sprintf("x-%d", i), fmt.Sprintf("k-%d", i)))
	}
	// By 30h+999m (~46.6h), "near" (last seen 23h) is still open; "far"
	// (26h) too, and keys idle for more than 24h are gone.
	s.Process(effectAt(100*h, "e-last", "last"))
	_, keys, entities := s.Open()
	if keys != 1 || entities != 1 {
		t.Fatalf("open keys=%d entities=%d at 100h, want 1 and 1 (only the key seen last)", keys, entities)
	}
	s.Finish(int64(100 * h))
	got := s.Findings().Sorted()
	if len(got) != 1 || got[0].Detector != twicetype.DuplicateEffect || got[0].Subject != "near" {
		t.Fatalf("findings = %+v, want one duplicate-effect on near", got)
	}
	if ev := got[0].Events; len(ev) != 2 || ev[0] != "e-1" || ev[1] != "e-3" {
		t.Fatalf("events = %v, want [e-1 e-3]", ev)
	}
}

// TestHorizonIsRaisedToTheLongestDeadline keeps a job whose lost-job
// deadline lies beyond a short horizon.
func TestHorizonIsRaisedToTheLongestDeadline(t *testing.T) {
	st := DefaultSettings()
	lost := st[twicetype.LostJob]
	lost.LostAfter = 2 * time.Hour
	st[twicetype.LostJob] = lost
	s := New(Options{Horizon: time.Minute, Detectors: st})
	s.Process(&twicetype.Event{ID: "e-1", Kind: twicetype.JobEnqueued, JobID: "j-1", Time: 0})
	s.Process(&twicetype.Event{ID: "e-2", Kind: twicetype.State, Entity: "x", Time: int64(3 * time.Hour)})
	got := s.Findings().Sorted()
	if len(got) != 1 || got[0].Detector != twicetype.LostJob || got[0].Cause != "never-started" {
		t.Fatalf("findings = %+v, want j-1 lost (never-started)", got)
	}
}
