package detectors

import (
	"testing"
	"time"

	"github.com/twicehq/twice/twicetype"
)

func jobAt(t time.Duration, id string, kind twicetype.Kind, jobID, queue string) *twicetype.Event {
	return &twicetype.Event{ID: id, Time: int64(t), Kind: kind, JobID: jobID, Queue: queue}
}

// viewOf returns the view of detector's finding in vs, and whether there
// is one.
func viewOf(vs []View, detector string) (View, bool) {
	for _, v := range vs {
		if v.Detector == detector {
			return v, true
		}
	}
	return View{}, false
}

// TestLiveViewShowsADuplicateAtOnce: the audit judges a key when it is
// released; a live view shows the duplicate as soon as the second effect
// is seen, and updates it with the third.
func TestLiveViewShowsADuplicateAtOnce(t *testing.T) {
	s := New(Options{Live: true})
	s.Process(effectAt(0, "e-1", "receipt/1"))
	if vs := s.Changes(); len(vs) != 0 {
		t.Fatalf("after one effect: changes %+v, want none", vs)
	}
	s.Process(effectAt(time.Second, "e-2", "receipt/1"))
	v, ok := viewOf(s.Changes(), twicetype.DuplicateEffect)
	if !ok || v.Finding == nil || v.Finding.Count != 2 || v.Finding.Subject != "receipt/1" {
		t.Fatalf("after two effects: view %+v, want duplicate-effect count 2", v)
	}
	if got := s.Findings().Sorted(); len(got) != 0 {
		t.Fatalf("judged findings = %+v, want none before release", got)
	}
	if vs := s.Changes(); len(vs) != 0 {
		t.Fatalf("no event since: changes %+v, want none", vs)
	}
	s.Process(effectAt(2*time.Second, "e-3", "receipt/1"))
	v, _ = viewOf(s.Changes(), twicetype.DuplicateEffect)
	if v.Finding == nil || v.Finding.Count != 3 || len(v.Finding.Events) != 3 {
		t.Fatalf("after three effects: view %+v, want count 3", v)
	}
	if v.Fingerprint != twicetype.Fingerprint(twicetype.DuplicateEffect, "receipt/1") {
		t.Fatalf("fingerprint %s is not the audit's", v.Fingerprint)
	}
}

// TestLiveViewOfDeadLettersResolvesOnReplay: a dead job makes its queue's
// dead-letter finding stand at once; replaying the job takes it back.
func TestLiveViewOfDeadLettersResolvesOnReplay(t *testing.T) {
	s := New(Options{Live: true})
	s.Process(jobAt(0, "a", twicetype.JobEnqueued, "j-1", "mail"))
	s.Process(jobAt(time.Second, "b", twicetype.JobDead, "j-1", "mail"))
	v, ok := viewOf(s.Changes(), twicetype.DeadLetter)
	if !ok || v.Finding == nil || v.Finding.Count != 1 || v.Finding.Subject != "mail" {
		t.Fatalf("after job.dead: view %+v, want dead-letter on mail, count 1", v)
	}
	s.Process(jobAt(2*time.Second, "c", twicetype.JobEnqueued, "j-1", "mail"))
	v, ok = viewOf(s.Changes(), twicetype.DeadLetter)
	if !ok || v.Finding != nil {
		t.Fatalf("after the replay: view %+v, want the finding resolved (nil)", v)
	}
	s.Process(jobAt(3*time.Second, "d", twicetype.JobDead, "j-1", "mail"))
	s.Finish(int64(3 * time.Second))
	v, ok = viewOf(s.Changes(), twicetype.DeadLetter)
	if !ok || v.Finding == nil || v.Finding.Count != 1 || v.Finding.Events[0] != "d" {
		t.Fatalf("dead again, finished: view %+v, want count 1 from event d", v)
	}
}

// TestWithoutLiveThereAreNoChanges keeps the audit free of the cost.
func TestWithoutLiveThereAreNoChanges(t *testing.T) {
	s := New(Options{})
	s.Process(effectAt(0, "e-1", "k"))
	s.Process(effectAt(1, "e-2", "k"))
	s.Finish(1)
	if vs := s.Changes(); vs != nil {
		t.Fatalf("changes %+v without Live", vs)
	}
}
