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

// TestJobOutlivesTheKeysThatNameIt: a key whose effects link to their
// job by template only (no job_id, so they do not touch the job) and
// whose last effect comes long after the job's last event (a late
// delivery) is judged at its release, a horizon after that effect; the
// job, idle since its success, is kept until then, so the duplicate's
// cause still sees the job's replay. It used to be released first, and
// the cause read "redelivery".
func TestJobOutlivesTheKeysThatNameIt(t *testing.T) {
	s := New(Options{Horizon: time.Hour, Rules: []Rule{{JobType: "SendReceipt", Effect: "email.sent", Within: time.Minute, Count: 1,
		Render: func(j *Job) (string, bool) { return "receipt/" + j.Key, j.Key != "" }}}})
	m := time.Minute
	ev := func(at time.Duration, id string, kind twicetype.Kind) *twicetype.Event {
		e := &twicetype.Event{ID: id, Time: int64(at), Kind: kind, JobID: "j-1", JobType: "SendReceipt", Queue: "emails", Key: "1"}
		if kind == twicetype.Effect {
			*e = twicetype.Event{ID: id, Time: int64(at), Kind: kind, Effect: "email.sent", EffectKey: "receipt/1"}
		}
		return e
	}
	for _, e := range []*twicetype.Event{
		ev(0, "e-1", twicetype.JobEnqueued),
		ev(1*m, "e-2", twicetype.JobStarted),
		ev(2*m, "e-3", twicetype.Effect),
		ev(4*m, "e-4", twicetype.JobDead),
		ev(5*m, "e-5", twicetype.JobEnqueued), // replayed by an operator
		ev(6*m, "e-6", twicetype.JobStarted),
		ev(7*m, "e-7", twicetype.Effect),
		ev(8*m, "e-8", twicetype.JobSucceeded),
		ev(48*m, "e-9", twicetype.Effect), // a late delivery, 40 minutes on
	} {
		s.Process(e)
	}
	// At 90m the job has been idle for more than the horizon, the key
	// not yet: the job must stay while the key names it.
	s.Process(&twicetype.Event{ID: "y", Time: int64(90 * m), Kind: twicetype.State, Entity: "other"})
	if jobs, keys, _ := s.Open(); jobs != 1 || keys != 1 {
		t.Fatalf("open jobs=%d keys=%d at 90m, want the job kept for its key", jobs, keys)
	}
	// Hours later both are past the horizon and released.
	s.Process(&twicetype.Event{ID: "x", Time: int64(5 * time.Hour), Kind: twicetype.State, Entity: "other"})
	if jobs, keys, _ := s.Open(); jobs != 0 || keys != 0 {
		t.Fatalf("open jobs=%d keys=%d at 5h, want both released", jobs, keys)
	}
	s.Finish(int64(5 * time.Hour))
	var causes []string
	for _, f := range s.Findings().Sorted() {
		if f.Detector == twicetype.DuplicateEffect {
			causes = append(causes, f.Subject+" "+f.Cause)
		}
	}
	if len(causes) != 1 || causes[0] != "receipt/1 replay" {
		t.Fatalf("duplicate-effect findings %q, want one on receipt/1 caused by the replay", causes)
	}
}
